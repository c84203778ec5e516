import Environments
import Foundation
import NIOCore
import NIOFoundationCompat
import PostgresNIO

/// Reads the proxy's routes from `environments` and writes back the activity the proxy saw.
struct RouteStore: Sendable {
    let client: PostgresClient
    let box: SecretBox

    /// Every live environment's route.
    func live() async throws -> [ProxyRoute] {
        try await routes("WHERE portal_is_live(e.state)").compactMap(\.route)
    }

    /// One environment's base path and, while it is live, its route.
    /// - Throws: ``UnknownStoredValue`` when its state is one this portal does not know.
    func environment(_ id: Int64) async throws -> (basePath: String, route: ProxyRoute?)? {
        try await routes("WHERE e.id = \(id)").first
    }

    /// The live environment mounted at `basePath`, if any.
    func live(basePath: String) async throws -> ProxyRoute? {
        try await routes("WHERE e.base_path = \(basePath) AND portal_is_live(e.state)").first?.route
    }

    /// Records activity per environment: only ever moves `last_activity_at` forward.
    func recordActivity(_ activity: [(environmentID: Int64, at: Int64)]) async throws {
        guard !activity.isEmpty else { return }
        let ids = activity.map(\.environmentID)
        let times = activity.map { Double($0.at) }
        try await client.query(
            """
            UPDATE environments e SET last_activity_at = to_timestamp(a.at)
            FROM unnest(\(ids)::bigint[], \(times)::float8[]) AS a(id, at)
            WHERE e.id = a.id AND (e.last_activity_at IS NULL OR e.last_activity_at < to_timestamp(a.at))
            """
        )
    }

    /// A running environment as the idle culler sees it.
    struct Running: Sendable {
        var environmentID: Int64
        var upstream: String?
        var token: String
        var basePath: String
        var startedAt: Date
        var lastActivity: Date?
        var idleTimeout: TimeInterval
        var maxLifetime: TimeInterval
    }

    /// Every ready environment with its profile's idle timeout and maximum lifetime.
    func running() async throws -> [Running] {
        let rows = try await client.query(
            """
            SELECT e.id, e.upstream, e.token_sealed, e.base_path, COALESCE(e.ready_at, e.requested_at), e.last_activity_at,
                   (pv.spec->>'idleTimeoutSeconds')::float8, (pv.spec->>'maxLifetimeSeconds')::float8
            FROM environments e JOIN profile_versions pv ON pv.slug = e.profile_slug AND pv.version = e.profile_version
            WHERE e.state = \(EnvironmentState.ready.rawValue)
            """
        )
        var result = [Running]()
        for try await (id, upstream, sealed, basePath, started, activity, idle, lifetime) in rows.decode(
            (Int64, String?, ByteBuffer, String, Date, Date?, Double, Double).self
        ) {
            result.append(
                Running(
                    environmentID: id, upstream: upstream, token: try box.open(Data(buffer: sealed)), basePath: basePath, startedAt: started,
                    lastActivity: activity, idleTimeout: idle, maxLifetime: lifetime
                )
            )
        }
        return result
    }

    private func routes(_ condition: PostgresQuery) async throws -> [(basePath: String, route: ProxyRoute?)] {
        var query = PostgresQuery(unsafeSQL: """
            SELECT e.id, e.user_id, e.course_id, e.base_path, e.state, e.upstream, e.token_sealed,
                   COALESCE(extract(epoch FROM e.last_activity_at), 0)::bigint
            FROM environments e
            """)
        query.sql += " " + condition.sql
        query.binds = condition.binds
        var result = [(basePath: String, route: ProxyRoute?)]()
        for try await (id, userID, courseID, basePath, stored, upstream, sealed, activity) in try await client.query(query)
            .decode((Int64, Int64, Int64, String, String, String?, ByteBuffer, Int64).self)
        {
            let state = try EnvironmentState.stored(stored, table: "environments", column: "state")
            guard state.isLive else {
                result.append((basePath, nil))
                continue
            }
            let route = ProxyRoute(
                environmentID: id, userID: userID, courseID: courseID, basePath: basePath, state: state,
                upstream: upstream.flatMap(UpstreamAddress.init), token: try box.open(Data(buffer: sealed)), lastActivity: activity
            )
            result.append((basePath, route))
        }
        return result
    }
}
