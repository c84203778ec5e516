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
    /// this installation that no live record knows are removed. Hosts that cannot be reached are
    /// left alone (the host monitor deals with them).
    @discardableResult
    public func reconcile() async throws -> Reconciliation {
        var result = Reconciliation()
        for (host, engine) in try await engines.all() {
            do {
                try await reconcile(host: host, engine: engine, into: &result)
            } catch let error as EngineError where error.kind == .unreachable {
                logger.warning("host not reconciled: its engine does not answer", metadata: ["host": "\(host)", "error": "\(error)"])
            }
        }
        return result
    }

    /// Reconciles one host, e.g. one whose engine answers again after being down: containers of
    /// environments marked lost meanwhile are removed.
    @discardableResult
    public func reconcile(host: String) async throws -> Reconciliation {
        var result = Reconciliation()
        try await reconcile(host: host, engine: engines.engine(for: host), into: &result)
        return result
    }

    func reconcile(host: String, engine: any Engine, into result: inout Reconciliation) async throws {
        let containers = try await engine.list(installation: installationID)
        let byName = Dictionary(containers.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        var claimed = Set<String>()
        for record in try await store.live(engine: host) {
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
                if let container {
                    do {
                        try await engine.stop(container.id, timeout: stopTimeout)
                    } catch {
                        logger.with(environment: record.id).warning(
                            "could not remove the stopped server of a vanished environment", metadata: ["container": "\(container.name)", "error": "\(error)"]
                        )
                    }
                }
                try await self.record(record.id, EnvironmentChange(.stopped, message: "The environment had stopped while the portal was away", stopReason: .vanished))
                result.vanished.append(record.id)
            }
        }
        for container in containers where !claimed.contains(container.name) {
            try await engine.stop(container.id, timeout: stopTimeout)
            result.removedContainers.append(container.name)
        }
        logger.notice(
            "reconciled environments",
            metadata: [
                "host": "\(host)", "adopted": "\(result.adopted.count)", "restarted": "\(result.restarted.count)",
                "vanished": "\(result.vanished.count)", "removed": "\(result.removedContainers.count)",
            ]
        )
    }

    /// Continues waiting for a start another portal process began (it stopped before the server answered).
    func resume(_ record: EnvironmentRecord) async {
        do {
            let engine = try await engines.engine(for: record.engine)
            let upstream = try await waitUntilReady(record, on: engine, environment: record.containerID ?? record.containerName, deadline: .now + startTimeout)
            if try await self.record(record.id, EnvironmentChange(.ready, message: "Your environment is ready", upstream: upstream)) == nil {
                await cleanUp(record, because: "it was stopped while starting")
            }
        } catch {
            if Task.isCancelled { return }  // shutting down: the next reconcile resumes it again
            await fail(record, error)
        }
    }
}
