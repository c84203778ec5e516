import AsyncHTTPClient
import Environments
import Foundation
import Logging
import ServiceLifecycle

/// Stops environments past their profile's idle timeout or maximum lifetime, with the reason
/// recorded (`stop_reason` idle or max_lifetime). Idle means neither the proxies (any replica, via
/// `last_activity_at`) nor the server itself (kernel activity, from `/api/status`) saw anything.
/// Every replica runs one; a stop that another replica already made is a no-op.
struct IdleCuller: Service {
    let store: RouteStore
    let lifecycle: EnvironmentLifecycle
    let http: HTTPClient
    let interval: Duration
    let logger: Logger

    func run() async throws {
        await repeatUntilShutdown(every: interval) {
            do {
                try await cull(now: Date())
            } catch {
                logger.warning("culling idle environments failed; will retry", metadata: ["error": "\(String(reflecting: error))"])
            }
        }
    }

    /// One pass: decides for every ready environment and requests the stops.
    func cull(now: Date) async throws {
        for environment in try await store.running() {
            var lastActivity = environment.lastActivity
            let decide = {
                CullingPolicy.decide(
                    now: now, startedAt: environment.startedAt, lastActivity: lastActivity, idleTimeout: environment.idleTimeout,
                    maxLifetime: environment.maxLifetime
                )
            }
            guard var reason = decide() else { continue }
            if reason == .idle, let upstream = environment.upstream {
                // The proxy saw nothing; the server may still be busy (a kernel computing).
                let server = await ServerActivity.fetch(http: http, upstream: upstream, basePath: environment.basePath, secret: environment.token)
                if let seen = server?.lastActivity { lastActivity = max(lastActivity ?? seen, seen) }
                guard let confirmed = decide() else { continue }
                reason = confirmed
            }
            logger.info("stopping environment", metadata: ["environment": "\(environment.environmentID)", "reason": "\(reason.rawValue)"])
            lifecycle.requestStop(environment.environmentID, reason: reason)
        }
    }
}
