import Foundation
import Logging

extension EnvironmentLifecycle {
    /// What reconciling found and did.
    public struct Reconciliation: Sendable, Equatable {
        public var adopted: [Int64] = []
        public var restarted: [Int64] = []
        public var vanished: [Int64] = []
        public var removedContainers: [String] = []
    }

    /// Brings the records and the engine into agreement, on portal start: environments whose
    /// container runs are adopted (a start in progress is resumed), those whose container vanished
    /// are marked stopped, requested ones that never got a container are started, and containers of
    /// this installation that no live record knows are removed.
    @discardableResult
    public func reconcile() async throws -> Reconciliation {
        var result = Reconciliation()
        let containers = try await engine.list(labels: installationLabels)
        let byName = Dictionary(containers.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        var claimed = Set<String>()
        for record in try await store.live(engine: engine.name) {
            claimed.insert(record.containerName)
            let container = byName[record.containerName]
            switch (record.state, container) {
            case (.requested, nil):
                submit.yield(.start(record))
                result.restarted.append(record.id)
            case (.stopping, _):
                submit.yield(.stop(record.id, .shutdown))
            case (_, let container?) where container.running:
                if record.state == .starting || record.state == .requested {
                    submit.yield(.resume(record))
                }
                result.adopted.append(record.id)
            case (_, let container):
                if let container { try? await engine.remove(container.id) }
                _ = try await store.update(record.id, EnvironmentChange(.stopped, message: "The environment had stopped while the portal was away", stopReason: .vanished))
                result.vanished.append(record.id)
            }
        }
        for container in containers where !claimed.contains(container.name) {
            try await engine.remove(container.id)
            result.removedContainers.append(container.name)
        }
        logger.notice(
            "reconciled environments",
            metadata: [
                "engine": "\(engine.name)", "adopted": "\(result.adopted.count)", "restarted": "\(result.restarted.count)",
                "vanished": "\(result.vanished.count)", "removed": "\(result.removedContainers.count)",
            ]
        )
        return result
    }

    /// Continues waiting for a start another portal process began (it stopped before the server answered).
    func resume(_ record: EnvironmentRecord) async {
        do {
            let upstream = try await waitUntilReady(record, containerID: record.containerID ?? record.containerName, deadline: .now + startTimeout)
            _ = try await store.update(record.id, EnvironmentChange(.ready, message: "Your environment is ready", upstream: upstream))
        } catch {
            if Task.isCancelled { return }  // shutting down: the next reconcile resumes it again
            await cleanUp(record.id, containerName: record.containerName)
            _ = try? await store.update(record.id, EnvironmentChange(.failed, message: Self.studentMessage(for: error, timeout: startTimeout), stopReason: .failed))
        }
    }
}
