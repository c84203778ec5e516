import Environments
import Foundation
import Logging

/// Everything `portal serve` needs, read from one YAML file with environment-variable overrides.
/// Every key is documented in the README ("Configuration").
struct PortalConfiguration: Sendable {
    /// One LTI 1.1 consumer declared in the file.
    struct ConsumerEntry: Sendable {
        var key: String
        var name: String
        var secret: String
    }

    /// Where the database is: an external server, or the portal's own embedded cluster.
    enum DatabaseLocation: Sendable {
        case external(url: String)
        case embedded
    }

    var file: String
    var listenHost: String
    var listenPort: Int
    var publicURL: PublicURL
    var dataDirectory: String
    var database: DatabaseLocation
    var databasePoolSize: Int
    var secretKey: SecretKeySource
    var sessionLifetime: Duration
    var timestampWindow: Duration
    var noncePurgeInterval: Duration
    var consumers: [ConsumerEntry]
    var trustedProxies: [IPAddressRange]
    var logLevel: Logger.Level
    var logFormat: LogFormat
    var embeddedPostgresBinDirectory: String?
    var templatesDirectory: String?
    var migrationsDirectory: String?

    /// Where the key that encrypts secrets at rest comes from.
    enum SecretKeySource: Sendable {
        /// Base64 of 32 bytes, from the environment or the file.
        case value(String)
        /// A file holding base64 of 32 bytes; created on first use if it does not exist.
        case file(String)
    }

    enum LogFormat: String, Sendable {
        case text, json
    }
}
