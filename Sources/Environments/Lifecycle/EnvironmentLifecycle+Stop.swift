import Logging

extension EnvironmentLifecycle {
    /// Stops the environment: the server gets ``stopTimeout`` to shut down, it is removed, a
    /// disposable home is deleted.
    func stop(_ id: Int64, reason: StopReason) async {
        let logger = self.logger.with(environment: id)
        let record: EnvironmentRecord
        do {
            // `nil`: it is not live (already stopped, or never started).
            guard let moved = try await self.record(id, EnvironmentChange(.stopping, message: "Stopping", stopReason: reason)) else { return }
            record = moved
        } catch {
            logger.error("could not record that the environment is stopping, so it was not stopped", metadata: ["reason": "\(reason.rawValue)", "error": "\(error)"])
            return
        }
        do {
            let engine = try await engines.engine(for: record.engine)
            try await engine.stop(record.containerName, timeout: stopTimeout)
            if record.profile.persistence == .disposable {
                try await engine.deleteHome(record.homeVolume)
            }
        } catch {
            logger.error("stopping failed", metadata: ["error": "\(error)"])
            await settle(
                id,
                EnvironmentChange(
                    .failed, message: "Your environment could not be stopped cleanly. If you cannot start it again, please tell your course team.",
                    stopReason: reason, detail: "stopping failed: \(error)"
                ),
                consequence: "it stays stopping; the next reconcile stops it again"
            )
            return
        }
        await settle(id, EnvironmentChange(.stopped, message: reason.explanation, stopReason: reason), consequence: "it stays stopping; the next reconcile stops it again")
    }
}
