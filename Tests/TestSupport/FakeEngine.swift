import Environments
import Foundation
import Synchronization

/// An ``Engine`` that runs nothing: each environment is an entry in memory that behaves as the test
/// says. For the lifecycle's fast tests; the real engines have their own integration tests.
public final class FakeEngine: Engine {
    /// What a started environment does.
    public enum Behaviour: Sendable {
        /// Runs at once, its server reachable at `fake:<name>`.
        case runs
        /// Stays created, never running.
        case hangs
        /// Exits while starting.
        case exits(code: Int, outOfMemory: Bool, log: String)
        /// The start itself fails with this error.
        case refuses(EngineError)
    }

    struct Instance {
        var id: String
        var spec: EnvironmentSpec?
        var labels: [String: String]
        var status: EnvironmentStatus
    }

    public let name: String
    private let state: Mutex<(instances: [String: Instance], behaviour: [String: Behaviour], stopError: EngineError?, deletedHomes: [String], started: [String])>

    public init(name: String = "fake") {
        self.name = name
        state = Mutex((instances: [:], behaviour: [:], stopError: nil, deletedHomes: [], started: []))
    }

    /// Makes environments whose name starts with `prefix` (all of them for "") behave as `behaviour`.
    public func behave(_ behaviour: Behaviour, forNamesStartingWith prefix: String = "") {
        state.withLock { $0.behaviour[prefix] = behaviour }
    }

    /// Makes ``stop(_:timeout:)`` fail with `error` (or succeed again, for `nil`).
    public func failStops(with error: EngineError?) {
        state.withLock { $0.stopError = error }
    }

    /// Puts an environment on the engine as if another portal process had started it.
    public func adopt(name: String, labels: [String: String], running: Bool) {
        state.withLock {
            $0.instances[name] = Instance(id: "id-" + name, spec: nil, labels: labels, status: running ? .running(upstream: "fake:" + name) : .exited(code: 0, outOfMemory: false, log: ""))
        }
    }

    /// Makes a started environment's server exit.
    public func exit(_ name: String, code: Int, log: String = "") {
        state.withLock { $0.instances[name]?.status = .exited(code: code, outOfMemory: false, log: log) }
    }

    /// The spec the environment was started from.
    public func spec(of name: String) -> EnvironmentSpec? { state.withLock { $0.instances[name]?.spec } }
    /// The names of the environments the engine holds.
    public var names: Set<String> { state.withLock { Set($0.instances.keys) } }
    /// The homes deleted, in order.
    public var deletedHomes: [String] { state.withLock { $0.deletedHomes } }
    /// The names started, in order.
    public var started: [String] { state.withLock { $0.started } }

    public func start(_ spec: EnvironmentSpec) async throws -> String {
        try state.withLock { state in
            let behaviour = state.behaviour.filter { spec.name.hasPrefix($0.key) }.max { $0.key.count < $1.key.count }?.value ?? .runs
            guard state.instances[spec.name] == nil else { throw EngineError(.conflict, "\(name): \(spec.name) exists already") }
            let status: EnvironmentStatus
            switch behaviour {
            case .runs: status = .running(upstream: "fake:" + spec.name)
            case .hangs: status = .starting
            case .exits(let code, let oom, let log): status = .exited(code: code, outOfMemory: oom, log: log)
            case .refuses(let error): throw error
            }
            state.started.append(spec.name)
            state.instances[spec.name] = Instance(id: "id-" + spec.name, spec: spec, labels: spec.labels, status: status)
            return "id-" + spec.name
        }
    }

    private func key(_ environment: String, in instances: [String: Instance]) -> String? {
        instances[environment] != nil ? environment : instances.first { $0.value.id == environment }?.key
    }

    public func poll(_ environment: String) async throws -> EnvironmentStatus {
        state.withLock { state in key(environment, in: state.instances).flatMap { state.instances[$0]?.status } ?? .gone }
    }

    public func stop(_ environment: String, timeout: Duration) async throws {
        try state.withLock { state in
            if let error = state.stopError { throw error }
            if let key = key(environment, in: state.instances) { state.instances[key] = nil }
        }
    }

    public func deleteHome(_ home: String) async throws {
        state.withLock { $0.deletedHomes.append(home) }
    }

    public func list(installation: String) async throws -> [EnvironmentInstance] {
        state.withLock { state in
            state.instances.filter { $0.value.labels[Labels.installation] == installation }.map {
                if case .running = $0.value.status {
                    return EnvironmentInstance(id: $0.value.id, name: $0.key, labels: $0.value.labels, running: true)
                }
                return EnvironmentInstance(id: $0.value.id, name: $0.key, labels: $0.value.labels, running: false)
            }
        }
    }

    public func stats(_ environment: String) async throws -> ContainerStats {
        ContainerStats(memoryBytes: 0, memoryLimitBytes: 0, cpuNanoseconds: 0, pids: 0)
    }
}

/// A ``ReadinessProbe`` that finds every server ready except those the test keeps silent.
public final class FakeProbe: ReadinessProbe {
    private let silent = Mutex<Set<String>>([])

    public init() {}

    /// Makes the server at `upstream` never answer (or answer again, with `false`).
    public func silence(_ upstream: String, _ silenced: Bool = true) {
        silent.withLock { if silenced { $0.insert(upstream) } else { $0.remove(upstream) } }
    }

    public func isReady(upstream: String, basePath: String, secret: String) async -> Bool {
        !silent.withLock { $0.contains(upstream) }
    }
}
