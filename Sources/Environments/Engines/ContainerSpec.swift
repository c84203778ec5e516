import Foundation

/// What a container (or a process sandbox) runs: the container-level description an ``Engine`` derives
/// from an ``EnvironmentSpec`` — its image resolved, its home and materials as mounts, its command
/// with any seeding step. The Docker Engine API backend sends it as a create request; the process
/// engine keeps it in its state files.
public struct ContainerSpec: Sendable, Equatable {
    /// A volume mounted into the container.
    public struct Mount: Sendable, Equatable {
        /// A named volume, or an absolute host path (a bind mount).
        public var volume: String
        public var path: String
        public var readOnly: Bool
        public init(volume: String, path: String, readOnly: Bool = false) {
            self.volume = volume
            self.path = path
            self.readOnly = readOnly
        }
    }

    /// A file put into the environment before it starts (a container's filesystem, or bound
    /// read-only into a process sandbox), e.g. the Jupyter configuration every server gets. It
    /// belongs to root, so the server can read it (with a world-readable ``mode``) but not change it;
    /// directories above it that do not exist are created (root, 0755). Not for secrets: those go in
    /// ``ContainerSpec/environment``.
    public struct File: Sendable, Equatable {
        /// The absolute path inside the environment, e.g. `/etc/portal/jupyter/jupyter_server_config.py`.
        public var path: String
        public var contents: Data
        /// Permission bits, e.g. `0o644`.
        public var mode: UInt16
        public init(path: String, contents: Data, mode: UInt16 = 0o644) {
            self.path = path
            self.contents = contents
            self.mode = mode
        }
    }

    public var name: String
    /// The image (container engines; ignored by the process engine).
    public var image: String
    /// The program to run; `nil` runs the engine's Jupyter server command under ``basePath``.
    public var command: [String]?
    /// The URL path the server is served under.
    public var basePath: String
    public var environment: [String: String]
    public var labels: [String: String]
    public var memoryBytes: Int64
    /// CPU limit in billionths of a core.
    public var nanoCPUs: Int64
    public var pidsLimit: Int64
    /// The uid (or uid:gid) to run as.
    public var user: String
    public var mounts: [Mount]
    /// The port the server listens on inside the container; published on the host's loopback.
    public var port: Int
    /// GPUs of the host by id, given to this container alone; empty for none.
    public var gpuDevices: [String]
    /// Files put into the environment before its program starts.
    public var files: [File]

    public init(
        name: String, image: String, command: [String]?, basePath: String = "/", environment: [String: String] = [:], labels: [String: String] = [:], memoryBytes: Int64,
        nanoCPUs: Int64, pidsLimit: Int64 = 1024, user: String = "1000:100", mounts: [Mount] = [], port: Int = 8888, gpuDevices: [String] = [],
        files: [File] = []
    ) {
        self.name = name
        self.image = image
        self.command = command
        self.basePath = basePath
        self.environment = environment
        self.labels = labels
        self.memoryBytes = memoryBytes
        self.nanoCPUs = nanoCPUs
        self.pidsLimit = pidsLimit
        self.user = user
        self.mounts = mounts
        self.port = port
        self.gpuDevices = gpuDevices
        self.files = files
    }
}

extension ContainerSpec.File {
    /// ``path`` below `/` (`etc/portal/jupyter/jupyter_server_config.py`).
    /// - Throws: ``EngineError`` unless the path is absolute, with no empty, `.` or `..` part.
    public func relativePath() throws -> String {
        let relative = path.dropFirst()
        guard path.hasPrefix("/"), !relative.isEmpty, !path.utf8.contains(0),
            relative.split(separator: "/", omittingEmptySubsequences: false).allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." })
        else {
            throw EngineError(.failed, "The environment file path \(path.debugDescription) must be absolute, with no empty, . or .. parts.")
        }
        return String(relative)
    }
}

/// A container's state as the engine reports it.
public struct ContainerInfo: Sendable, Equatable {
    public var id: String
    public var name: String
    public var labels: [String: String]
    /// `created`, `running`, `exited`, … as the engine says.
    public var state: String
    public var running: Bool
    public var exitCode: Int?
    public var oomKilled: Bool
    /// Where the server's port is published on the host (`127.0.0.1`, port), once running.
    public var published: (host: String, port: Int)?
    /// A unix socket the server listens on (the process engine), once running.
    public var socketPath: String?

    /// Where the portal reaches the server: `host:port`, or `unix:/path/to/socket`.
    public var upstream: String? {
        if let socketPath { return "unix:" + socketPath }
        return published.map { "\($0.host):\($0.port)" }
    }

    public init(
        id: String, name: String, labels: [String: String], state: String, running: Bool, exitCode: Int? = nil, oomKilled: Bool = false,
        published: (host: String, port: Int)? = nil, socketPath: String? = nil
    ) {
        self.id = id
        self.name = name
        self.labels = labels
        self.state = state
        self.running = running
        self.exitCode = exitCode
        self.oomKilled = oomKilled
        self.published = published
        self.socketPath = socketPath
    }

    public static func == (lhs: ContainerInfo, rhs: ContainerInfo) -> Bool {
        lhs.id == rhs.id && lhs.name == rhs.name && lhs.labels == rhs.labels && lhs.state == rhs.state && lhs.running == rhs.running
            && lhs.exitCode == rhs.exitCode && lhs.oomKilled == rhs.oomKilled && lhs.published?.host == rhs.published?.host
            && lhs.published?.port == rhs.published?.port && lhs.socketPath == rhs.socketPath
    }
}

extension ContainerSpec {
    /// Where every environment's home is mounted.
    public static let homePath = "/home/jovyan"

    /// The container for `spec`: its home at ``homePath``, its course materials read-only at
    /// ``CourseMaterials/mountPath``.
    public init(_ spec: EnvironmentSpec, image: String, command: [String]?) {
        var mounts = [Mount(volume: spec.home.name, path: Self.homePath)]
        if let materials = spec.materials {
            mounts.append(Mount(volume: materials, path: CourseMaterials.mountPath, readOnly: true))
        }
        self.init(
            name: spec.name, image: image, command: command, basePath: spec.basePath, environment: spec.environment, labels: spec.labels,
            memoryBytes: spec.memoryBytes, nanoCPUs: spec.nanoCPUs, pidsLimit: spec.pidsLimit, mounts: mounts, gpuDevices: spec.gpuDevices, files: spec.files
        )
    }
}
