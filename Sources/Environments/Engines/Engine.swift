import Foundation

/// One host's way of running environments — the spawner seam, shaped like JupyterHub's `Spawner`:
/// start an environment from its spec, poll it, stop it, list what belongs to an installation, read
/// its resource use. The lifecycle, admission and reconcile talk to engines through this protocol
/// alone; everything a backend needs to get there (images, volumes, files, containers, sandboxes,
/// pods) stays inside the backend. Backends: ``DockerEngine`` (Docker or Podman through the Docker
/// Engine API) and ``ProcessEngine`` (sandboxed local processes). docs/ARCHITECTURE.md says how to
/// add one.
///
/// Environments are named by ``EnvironmentSpec/name``, unique per installation; every call after
/// ``start(_:)`` accepts that name or the id ``start(_:)`` returned.
public protocol Engine: Sendable {
    /// A name for records and logs, e.g. `podman@local`.
    var name: String { get }
    /// Starts the environment: prepares what it needs (its image on this host, its home, its
    /// files) and starts its server. Returns once the server process has been started, not once it
    /// answers: the lifecycle probes readiness the same way for every backend.
    /// - Returns: the engine's id for the environment.
    /// - Throws: ``EngineError``; a failed start leaves nothing running (its home stays).
    func start(_ spec: EnvironmentSpec) async throws -> String
    /// Where the environment is: starting, running (with the address of its server once known),
    /// exited (with why), or gone.
    func poll(_ environment: String) async throws -> EnvironmentStatus
    /// Stops the environment's server — it gets `timeout` to shut down (kernels save their state),
    /// then it is killed — and removes it. Its home stays. An environment that is not there is not
    /// an error.
    func stop(_ environment: String, timeout: Duration) async throws
    /// Deletes a home (a disposable one, once its environment stopped); a missing one is not an error.
    func deleteHome(_ home: String) async throws
    /// Every environment on this host carrying the installation's label, running or not.
    func list(installation: String) async throws -> [EnvironmentInstance]
    /// Resource use of a running environment.
    func stats(_ environment: String) async throws -> ContainerStats
    /// Checks that the engine answers, within a few seconds.
    func ping() async throws
}

extension Engine {
    /// A local engine with no service to ask is always there.
    public func ping() async throws {}
}

/// What to run for one environment, engine-neutral: the lifecycle derives it from the record and
/// its profile; each backend turns it into a container, a sandboxed process or a pod.
public struct EnvironmentSpec: Sendable, Equatable {
    /// A home that outlives the environment's server (a named volume, a directory, a claim).
    public struct Home: Sendable, Equatable {
        public var name: String
        /// Labels for backends that can label it.
        public var labels: [String: String]
        public init(name: String, labels: [String: String] = [:]) {
            self.name = name
            self.labels = labels
        }
    }

    /// Unique per installation (a container's name); labels carry who it is for.
    public var name: String
    /// The image for backends that run images; `nil` for a profile without one (the process engine
    /// runs its own virtualenv; a container engine refuses such a spec).
    public var image: String?
    /// The program to run; `nil` runs the backend's Jupyter server command under ``basePath``.
    public var command: [String]?
    /// The URL path the server is served under.
    public var basePath: String
    public var environment: [String: String]
    /// Labels, among them ``Labels/installation`` (what ``Engine/list(installation:)`` finds).
    public var labels: [String: String]
    public var memoryBytes: Int64
    /// CPU limit in billionths of a core.
    public var nanoCPUs: Int64
    public var pidsLimit: Int64
    public var home: Home
    /// A directory of course materials on the host, mounted read-only at
    /// ``CourseMaterials/mountPath`` and copied into the home once.
    public var materials: String?
    /// GPUs of the host by id, given to this environment alone; empty for none.
    public var gpuDevices: [String]
    /// Files put into the environment before its program starts (root-owned, not for secrets).
    public var files: [ContainerSpec.File]

    public init(
        name: String, image: String?, command: [String]?, basePath: String, environment: [String: String] = [:], labels: [String: String] = [:],
        memoryBytes: Int64, nanoCPUs: Int64, pidsLimit: Int64 = 1024, home: Home, materials: String? = nil, gpuDevices: [String] = [],
        files: [ContainerSpec.File] = []
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
        self.home = home
        self.materials = materials
        self.gpuDevices = gpuDevices
        self.files = files
    }
}

/// An environment's state as its engine reports it.
public enum EnvironmentStatus: Sendable, Equatable {
    /// Created; its server has not begun to run.
    case starting
    /// Its server runs; `upstream` is where the portal reaches it (`host:port` or `unix:/path`),
    /// once the engine knows.
    case running(upstream: String?)
    /// Its server ended: the exit code when known, whether it ran out of memory, its last lines of output.
    case exited(code: Int?, outOfMemory: Bool, log: String)
    /// The engine has no such environment.
    case gone
}

/// One environment an engine holds, as ``Engine/list(installation:)`` finds it.
public struct EnvironmentInstance: Sendable, Equatable {
    /// The engine's id for it.
    public var id: String
    /// ``EnvironmentSpec/name``.
    public var name: String
    public var labels: [String: String]
    public var running: Bool

    public init(id: String, name: String, labels: [String: String], running: Bool) {
        self.id = id
        self.name = name
        self.labels = labels
        self.running = running
    }
}

/// A running environment's resource use.
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
