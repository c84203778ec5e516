import Logging
import PostgresNIO
import ServiceLifecycle

/// Keeps a ``RouteTable`` current: listens on `portal_environments` (every replica hears every
/// change, see migration 0004), reloads one route per notification, and reloads everything after
/// each (re)connection so that nothing missed while disconnected stays stale.
struct RouteListener: Service {
    static let channel = "portal_environments"

    let client: PostgresClient
    let store: RouteStore
    let table: RouteTable
    let logger: Logger

    func run() async throws {
        try await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await client.withConnection { connection in
                        try await connection.listen(on: Self.channel) { notifications in
                            table.replaceAll(try await store.live())
                            logger.debug("routes loaded", metadata: ["routes": "\(table.all.count)"])
                            for try await notification in notifications {
                                guard let id = Int64(notification.payload) else { continue }
                                try await refresh(id)
                            }
                        }
                    }
                } catch where Task.isCancelled {
                    return
                } catch {
                    logger.warning("route updates interrupted; reconnecting", metadata: ["error": "\(String(reflecting: error))"])
                }
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// Reloads one environment's route (also used by the request path when it finds no route).
    func refresh(_ id: Int64) async throws {
        guard let (basePath, route) = try await store.environment(id) else { return }
        table.update(environmentID: id, basePath: basePath, route: route)
    }
}
