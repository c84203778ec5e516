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
    /// `lti.refusal_records_per_client` and `lti.refusal_records_per_minute`.
    var refusalLimits = LaunchStore.RefusalLimits()
    /// Where `Jupyter/` (the configuration every environment's server gets) is; found like templates when unset.
    var jupyterDirectory: String? = nil
    var environments: EnvironmentsConfiguration = .init()
    var proxy: ProxyConfiguration = .init()
    var admission: AdmissionConfiguration = .init()
    var security: SecurityConfiguration = .init()
    var http: HTTPConfiguration = .init()

    /// The `environments` section: which engine runs environments and how courses get profiles.
    struct EnvironmentsConfiguration: Sendable {
        enum EngineKind: String, Sendable {
            /// No environments: launches end on the landing page.
            case none
            /// A Docker Engine API (Docker or Podman) at `endpoint`.
            case docker
            /// Sandboxed local processes (bubblewrap) from the virtualenv `venv`.
            case process
        }

        struct Mapping: Sendable {
            var consumerKey: String
            var contextID: String
            var profile: String
        }

        var engine: EngineKind = .none
        var endpoint = "unix:///run/podman/podman.sock"
        var venv = "/opt/portal/jupyter-venv"
        var profilesDirectory: String?
        var defaultProfile: String?
        var startTimeout: Duration = .seconds(120)
        var stopTimeout: Duration = .seconds(10)
        var courseMappings: [Mapping] = []
        /// The pool (`hosts`); empty for the one engine above, as the host `local`.
        var hosts: [Host] = []
        var placement: Placement.Strategy = .leastLoaded
        /// How often every host's engine is asked whether it is up.
        var healthInterval: Duration = .seconds(10)
        /// How long a host may stay down before its environments are marked lost.
        var lostAfter: Duration = .seconds(60)

        /// The hosts environments run on: those declared, or the one engine as `local` with this
        /// machine's processors and memory as its capacity.
        var poolHosts: [Host] {
            guard hosts.isEmpty else { return hosts }
            let machine = Capacity(cpu: Double(ProcessInfo.processInfo.activeProcessorCount), memoryBytes: Int64(ProcessInfo.processInfo.physicalMemory))
            switch engine {
            case .none: return []
            case .process: return [Host(name: "local", kind: .process, endpoint: "process", capacity: machine)]
            case .docker: return [Host(name: "local", endpoint: endpoint, capacity: machine)]
            }
        }
    }

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
