import Logging

/// How the lifecycle retries a store call that failed — the database restarting, a failover, a
/// dropped connection — before it gives up and logs the failure with the environment's id.
public struct StoreRetry: Sendable {
    /// The pauses between attempts; their count is the number of retries.
    public var delays: [Duration]

    public init(delays: [Duration]) {
        self.delays = delays
    }

    /// Six retries over about 16 seconds.
    public static let standard = StoreRetry(delays: [.milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2), .seconds(4), .seconds(8)])
}

extension EnvironmentLifecycle {
    /// Records `change` like ``EnvironmentStore/update(_:_:)``, retrying a failing store. A retry
    /// that finds the change already made (the first attempt committed, its answer was lost)
    /// returns the record as the first attempt would have.
    /// - Returns: the updated record, or `nil` when the state machine did not allow the change.
    /// - Throws: the store's last error once the retries are spent, or `CancellationError`.
    @discardableResult
    func record(_ id: Int64, _ change: EnvironmentChange) async throws -> EnvironmentRecord? {
        var attempt = 0
        while true {
            do {
                let updated = try await store.update(id, change)
                if updated == nil, attempt > 0, let current = try await store.find(id), current.state == change.state {
                    return current
                }
                return updated
            } catch {
                guard attempt < retry.delays.count, !Task.isCancelled else { throw error }
                logger.with(environment: id).warning(
                    "recording the environment's state failed; retrying",
                    metadata: ["state": "\(change.state.rawValue)", "attempt": "\(attempt + 1)", "error": "\(error)"]
                )
                try await Task.sleep(for: retry.delays[attempt])
                attempt += 1
            }
        }
    }

    /// Records `change` (retrying); a failure that outlasts the retries is logged as an error with
    /// `consequence` — what is left for the next reconcile or the operator.
    func settle(_ id: Int64, _ change: EnvironmentChange, consequence: String) async {
        do {
            try await record(id, change)
        } catch {
            logger.with(environment: id).error(
                "could not record the environment's state: \(consequence)", metadata: ["state": "\(change.state.rawValue)", "error": "\(error)"]
            )
        }
    }
}
