import Foundation

extension ProcessEngine {
    /// Starts the environment as a sandboxed `jupyter server`: creates its home (a directory with a
    /// uid of its own), writes its files, copies course materials into the home once, and spawns
    /// the server. The spec's image is not used: every environment runs the engine's virtualenv.
    public func start(_ spec: EnvironmentSpec) async throws -> String {
        try ensureHome(spec.home.name)
        let id = try createSandbox(ContainerSpec(spec, image: "", command: spec.command))
        do {
            try startSandbox(id)
        } catch {
            do {
                try await removeSandbox(id, timeout: .seconds(10))
            } catch let removal {
                throw EngineError((error as? EngineError)?.kind ?? .failed, "\(error) (and removing the sandbox that did not start failed: \(removal))")
            }
            throw error
        }
        return id
    }

    public func poll(_ environment: String) async throws -> EnvironmentStatus {
        guard let info = try inspectSandbox(environment) else { return .gone }
        if info.running { return .running(upstream: info.upstream) }
        if info.state == "created" { return .starting }
        return .exited(code: info.exitCode, outOfMemory: info.oomKilled, log: sandboxLogs(environment, lines: 20))
    }

    public func stop(_ environment: String, timeout: Duration) async throws {
        try await removeSandbox(environment, timeout: timeout)
    }

    public func list(installation: String) async throws -> [EnvironmentInstance] {
        try listSandboxes(labels: [Labels.installation: installation]).map {
            EnvironmentInstance(id: $0.id, name: $0.name, labels: $0.labels, running: $0.running)
        }
    }
}
