import Logging
import ServiceLifecycle
import Synchronization

/// Writes the activity the proxy saw to `environments.last_activity_at` every ``interval``, one
/// statement for all environments that were used since the last write, so the idle culler (on any
/// replica) sees it without a database write per request.
struct ActivityService: Service {
    let routes: RouteTable
    let store: RouteStore
    let interval: Duration
    let logger: Logger

    func run() async throws {
        var written = [Int64: Int64]()
        while !Task.isCancelledOrShuttingDown {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            written = await flush(after: written)
        }
    }

    /// Writes what changed since `written`; returns what is now written.
    func flush(after written: [Int64: Int64]) async -> [Int64: Int64] {
        var changed = [(environmentID: Int64, at: Int64)]()
        var next = [Int64: Int64]()
        for route in routes.all {
            let seen = route.lastActivity.load(ordering: .relaxed)
            next[route.environmentID] = seen
            if seen > written[route.environmentID, default: 0] { changed.append((route.environmentID, seen)) }
        }
        do {
            try await store.recordActivity(changed)
            return next
        } catch {
            logger.warning("recording environment activity failed; will retry", metadata: ["error": "\(String(reflecting: error))"])
            return written
        }
    }
}
