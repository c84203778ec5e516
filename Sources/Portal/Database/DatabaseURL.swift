import Foundation
import NIOSSL
import PostgresNIO

/// Turns a `postgres://user:password@host:port/database?sslmode=…` URL into postgres-nio settings.
/// `?host=/path/to/socket/dir` selects a unix socket. `sslmode` is `disable`, `prefer` (default) or
/// `require`.
enum DatabaseURL {
    static func configuration(_ text: String) throws -> PostgresClient.Configuration {
        guard let components = URLComponents(string: text), ["postgres", "postgresql"].contains(components.scheme ?? "") else {
            throw DatabaseURLError(reason: "not a postgres:// URL")
        }
        let query = Dictionary((components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { _, last in last })
        let user = components.user.flatMap { $0.removingPercentEncoding } ?? query["user"] ?? "postgres"
        let password = components.password.flatMap { $0.removingPercentEncoding } ?? query["password"]
        var database = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        database = database.removingPercentEncoding ?? database
        let databaseName: String? = database.isEmpty ? nil : database
        if let socketDirectory = query["host"], socketDirectory.hasPrefix("/") {
            let port = components.port ?? 5432
            return PostgresClient.Configuration(
                unixSocketPath: "\(socketDirectory)/.s.PGSQL.\(port)", username: user, password: password, database: databaseName
            )
        }
        guard let host = components.host, !host.isEmpty else { throw DatabaseURLError(reason: "the URL has no host") }
        let tls: PostgresClient.Configuration.TLS
        switch query["sslmode"] ?? "prefer" {
        case "disable": tls = .disable
        case "prefer", "allow": tls = .prefer(.makeClientConfiguration())
        case "require", "verify-ca", "verify-full": tls = .require(.makeClientConfiguration())
        case let other: throw DatabaseURLError(reason: "sslmode \(other) is not one of disable, prefer, require")
        }
        return PostgresClient.Configuration(host: host, port: components.port ?? 5432, username: user, password: password, database: databaseName, tls: tls)
    }
}

/// A database URL that cannot be used. The URL itself is never included: it may hold a password.
struct DatabaseURLError: Error, CustomStringConvertible {
    var reason: String
    var description: String { "The database URL cannot be used: \(reason)." }
}
