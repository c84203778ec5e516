import Environments
import Foundation
import Logging
import NIOCore
import NIOFoundationCompat
import PostgresNIO

/// ``EnvironmentStore`` in PostgreSQL. Claims are admitted under one advisory lock (see
/// `EnvironmentRepository+Admission.swift`), and the partial unique index `environments_one_live`
/// keeps one live environment per student and course (live is `portal_is_live(state)`, Migrations/0007);
/// every state change is checked against the state machine and logged in `environment_events` in
/// the same statement. Tokens are sealed at rest.
struct EnvironmentRepository: EnvironmentStore {
    let client: PostgresClient
    let box: SecretBox
    let installationID: String
    /// Caps, budgets, prices and placement for new environments.
    var rules = AdmissionRules()
    var logger = Logger(label: "portal.environments")

    static let columns = """
        e.id, u.slug, c.slug, pv.spec::text, e.profile_version, e.engine, e.state, e.message, e.container_id, e.container_name,
        e.upstream, e.token_sealed, e.home_volume, e.base_path, e.requested_at, e.ready_at, e.gpu_ids
        """

    @discardableResult
    func update(_ id: Int64, _ change: EnvironmentChange) async throws -> EnvironmentRecord? {
        let allowed = EnvironmentState.allCases.filter { $0.canMove(to: change.state) || ($0 == change.state && $0 == .starting) }.map(\.rawValue)
        let stamp: String
        switch change.state {
        case .requested: stamp = "requested_at"
        case .starting: stamp = "starting_at"
        case .ready: stamp = "ready_at"
        case .stopping: stamp = "stopping_at"
        case .stopped: stamp = "stopped_at"
        case .failed: stamp = "failed_at"
        }
        // The change and its event in one statement: both are written, or neither.
        let rows = try await client.query(
            """
            WITH moved AS (
                UPDATE environments SET state = \(change.state.rawValue), message = COALESCE(\(change.message), message),
                    container_id = COALESCE(\(change.containerID), container_id), upstream = COALESCE(\(change.upstream), upstream),
                    stop_reason = COALESCE(\(change.stopReason?.rawValue), stop_reason),
                    start_ms = COALESCE(\(change.timings?.start), start_ms), portal_ms = COALESCE(\(change.timings?.portal), portal_ms),
                    \(unescaped: stamp) = COALESCE(\(unescaped: stamp), now())
                WHERE id = \(id) AND state = ANY(\(allowed))
                RETURNING id, state
            )
            INSERT INTO environment_events (environment_id, state, message, detail) SELECT id, state, \(change.message)::text, \(change.detail)::text FROM moved
            RETURNING environment_id
            """
        )
        var updated = false
        for try await _ in rows { updated = true }
        guard updated else { return nil }
        return try await find(id)
    }

    func find(_ id: Int64) async throws -> EnvironmentRecord? {
        try await records("WHERE e.id = \(id)").first
    }

    func live(engine: String) async throws -> [EnvironmentRecord] {
        try await records(
            "WHERE e.engine = \(engine) AND portal_is_live(e.state)"
        )
    }

    /// The newest environment of a user in a course, live or not.
    func latest(userID: Int64, courseID: Int64) async throws -> EnvironmentRecord? {
        try await records("WHERE e.user_id = \(userID) AND e.course_id = \(courseID) ORDER BY e.id DESC LIMIT 1").first
    }

    func records(_ condition: PostgresQuery) async throws -> [EnvironmentRecord] {
        var query = PostgresQuery(unsafeSQL: """
            SELECT \(Self.columns) FROM environments e
            JOIN users u ON u.id = e.user_id JOIN courses c ON c.id = e.course_id
            JOIN profile_versions pv ON pv.slug = e.profile_slug AND pv.version = e.profile_version
            """)
        query.sql += " " + condition.sql
        query.binds = condition.binds
        var result = [EnvironmentRecord]()
        let rows = try await client.query(query)
        for try await row in rows {
            let (id, userSlug, courseSlug, spec, version, engine, state, message, containerID, containerName) =
                try row.decode((Int64, String, String, String, Int, String, String, String?, String?, String).self)
            let columns = Array(row.makeRandomAccess())
            let upstream = try columns[10].decode(String?.self)
            let sealed = try columns[11].decode(ByteBuffer.self)
            let homeVolume = try columns[12].decode(String.self)
            let basePath = try columns[13].decode(String.self)
            let requestedAt = try columns[14].decode(Date.self)
            let readyAt = try columns[15].decode(Date?.self)
            let gpuIDs = try columns[16].decode([String].self)
            let profile = try JSONDecoder().decode(Profile.self, from: Data(spec.utf8))
            result.append(
                EnvironmentRecord(
                    id: id, userSlug: userSlug, courseSlug: courseSlug, profile: profile, profileVersion: version, engine: engine,
                    state: try EnvironmentState.stored(state, table: "environments", column: "state"), message: message, containerID: containerID, containerName: containerName,
                    upstream: upstream, token: try box.open(Data(buffer: sealed)), homeVolume: homeVolume, basePath: basePath,
                    requestedAt: requestedAt, readyAt: readyAt, gpuIDs: gpuIDs
                )
            )
        }
        return result
    }
}

struct EnvironmentRepositoryError: Error, CustomStringConvertible {
    var description: String
}
