import Foundation

/// One machine of the pool that runs environments: an engine endpoint with a capacity and labels.
/// Operators declare hosts in the configuration file or with `portal host add`; the portal keeps
/// their health and placement reads it.
public struct Host: Sendable, Equatable {
    /// How the portal drives the host.
    public enum Kind: String, Sendable, Codable, CaseIterable {
        /// A Docker Engine API (Docker or Podman) over a unix socket or TCP.
        case docker
        /// The sandboxed local-process engine (only on the portal's own machine).
        case process
    }

    /// Whether the host answers its engine's API, as last checked.
    public enum Health: String, Sendable, Codable, CaseIterable {
        /// Not checked yet (a new host); placement accepts it.
        case unknown
        case up
        /// Not answering: no new environments; past `lost_after`, its environments are marked lost.
        case down
    }

    /// Client certificate and CA for an engine reached over TCP with TLS (paths, never the keys).
    public struct TLS: Sendable, Equatable, Codable {
        public var caFile: String
        public var certificateFile: String
        public var keyFile: String

        public init(caFile: String, certificateFile: String, keyFile: String) {
            self.caFile = caFile
            self.certificateFile = certificateFile
            self.keyFile = keyFile
        }
    }

    /// A stable name: lower-case letters, digits and '-'.
    public var name: String
    public var kind: Kind
    /// `unix:///run/podman/podman.sock`, `tcp://10.0.0.5:2375`; unused for `process`.
    public var endpoint: String
    /// The address the host publishes environment ports on, where the portal reaches them.
    public var publishAddress: String
    public var tls: TLS?
    public var capacity: Capacity
    public var labels: [String: String]
    /// An operator asked for no new environments here; running ones carry on.
    public var draining: Bool
    public var health: Health

    public init(
        name: String, kind: Kind = .docker, endpoint: String, publishAddress: String? = nil, tls: TLS? = nil, capacity: Capacity,
        labels: [String: String] = [:], draining: Bool = false, health: Health = .unknown
    ) {
        self.name = name
        self.kind = kind
        self.endpoint = endpoint
        self.publishAddress = publishAddress ?? Self.defaultPublishAddress(endpoint: endpoint)
        self.tls = tls
        self.capacity = capacity
        self.labels = labels
        self.draining = draining
        self.health = health
    }

    /// Whether placement may put a new environment here.
    public var acceptsEnvironments: Bool { !draining && health != .down }

    /// The host part of a `tcp://` endpoint, or loopback for a local socket.
    public static func defaultPublishAddress(endpoint: String) -> String {
        for scheme in ["tcp://", "http://", "https://"] where endpoint.hasPrefix(scheme) {
            let rest = endpoint.dropFirst(scheme.count)
            let authority = rest.split(separator: "/", maxSplits: 1).first.map(String.init) ?? ""
            if authority.hasPrefix("["), let end = authority.firstIndex(of: "]") {
                return String(authority[authority.index(after: authority.startIndex)..<end])
            }
            return authority.split(separator: ":").first.map(String.init) ?? "127.0.0.1"
        }
        return "127.0.0.1"
    }

    /// Whether `name` is a valid host name for the pool.
    public static func isValidName(_ name: String) -> Bool {
        name.count <= 63 && name.first.map { $0.isASCII && ($0.isLowercase || $0.isNumber) } == true
            && name.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") }
    }
}

/// What a host offers, or what an environment asks for.
public struct Capacity: Sendable, Equatable {
    /// CPU cores (fractional).
    public var cpu: Double
    public var memoryBytes: Int64
    /// GPUs by id; each is given to one environment at a time.
    public var gpus: [GPU]

    public init(cpu: Double, memoryBytes: Int64, gpus: [GPU] = []) {
        self.cpu = cpu
        self.memoryBytes = memoryBytes
        self.gpus = gpus
    }
}

/// One GPU of a host: its id as the engine names it (`0`, or a UUID) and its model.
public struct GPU: Sendable, Equatable, Hashable, Codable {
    public var id: String
    public var model: String

    public init(id: String, model: String) {
        self.id = id
        self.model = model
    }
}
