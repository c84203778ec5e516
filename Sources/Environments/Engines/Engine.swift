import Foundation

/// One host's way of running environments: a container engine behind the Docker Engine API, or the
/// sandboxed local-process engine. The lifecycle drives every engine through this protocol alone.
public protocol Engine: Sendable {
    /// A name for records and logs, e.g. `podman@local`.
    var name: String { get }
    /// Whether the engine runs images (containers) or host programs (the process engine).
    var runsImages: Bool { get }
    /// Whether `image` is present on the host (never pulled: images come from the portal's own build).
    func imageExists(_ image: String) async throws -> Bool
    /// Creates the named volume if it does not exist.
    func ensureVolume(_ name: String, labels: [String: String]) async throws
    /// Removes the named volume; a missing one is not an error.
    func removeVolume(_ name: String) async throws
    /// Creates a container; returns its id.
    func create(_ spec: ContainerSpec) async throws -> String
    /// Starts a created container.
    func start(_ id: String) async throws
    /// The container's state, or `nil` when it does not exist.
    func inspect(_ id: String) async throws -> ContainerInfo?
    /// Asks the container to stop, killing it after `timeout`.
    func stop(_ id: String, timeout: Duration) async throws
    /// Removes the container; a missing one is not an error.
    func remove(_ id: String) async throws
    /// Every container (running or not) carrying all of `labels`.
    func list(labels: [String: String]) async throws -> [ContainerInfo]
    /// Resource use of a running container.
    func stats(_ id: String) async throws -> ContainerStats
    /// The last `lines` lines the container printed.
    func logs(_ id: String, lines: Int) async throws -> String
    /// Copies `image` from `source` (another host's engine) onto this host.
    func loadImage(_ image: String, from source: any Engine) async throws
    /// Checks that the engine answers, within a few seconds.
    func ping() async throws
}

extension Engine {
    /// A local engine with no service to ask is always there.
    public func ping() async throws {}

    public func loadImage(_ image: String, from source: any Engine) async throws {
        throw EngineError(.imageMissing, "The image \(image) is not on \(name), which cannot load images from other hosts.")
    }
}

/// What to run: the engine-neutral description of one environment's container.
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

/// A running container's resource use.
public struct ContainerStats: Sendable, Equatable {
    public var memoryBytes: Int64
    public var memoryLimitBytes: Int64
    /// Total CPU time used, in nanoseconds.
    public var cpuNanoseconds: Int64
    public var pids: Int

    public init(memoryBytes: Int64, memoryLimitBytes: Int64, cpuNanoseconds: Int64, pids: Int) {
        self.memoryBytes = memoryBytes
        self.memoryLimitBytes = memoryLimitBytes
        self.cpuNanoseconds = cpuNanoseconds
        self.pids = pids
    }
}

/// What an engine could not do, with a message an operator can act on.
public struct EngineError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The engine cannot be reached at all.
        case unreachable
        /// The image is not on the host.
        case imageMissing
        /// The thing does not exist.
        case notFound
        /// A name is taken.
        case conflict
        /// Anything else the engine refused.
        case failed
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
