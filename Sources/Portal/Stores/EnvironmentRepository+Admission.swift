import Environments
import Foundation
import Logging
import NIOCore
import NIOFoundationCompat
import PostgresNIO

extension EnvironmentRepository {
    /// The advisory lock every admission holds for its transaction: one decision at a time across
    /// every replica, so caps and budgets hold whatever the burst.
    static let admissionLock: Int64 = 0x706F_7274_616C  // "portal"

    /// The live environment of the claim's (student, course), or a new one if admission allows.
    /// Under the admission lock, in one transaction: join a live one; otherwise read the counts,
    /// the hosts' loads and the course's spend, decide, and record the new environment (placed,
    /// priced, its cost reserved) with its first event, or the refusal.
    func claim(_ claim: EnvironmentClaim) async throws -> (record: EnvironmentRecord, created: Bool) {
        // A double click or a relaunch joins the live environment without waiting for the lock.
        if let live = try await records(
            "WHERE e.user_id = \(claim.userID) AND e.course_id = \(claim.courseID) AND portal_is_live(e.state)"
        ).first {
            return (live, false)
        }
        let sealed = ByteBuffer(data: try box.seal(SessionToken.generate()))
        let logger = self.logger
        let outcome: Result<(Int64, Bool), AdmissionRefusal> = try await client.withTransaction(logger: logger) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.admissionLock))", logger: logger)
            if let id = try await Self.live(claim, on: connection, logger: logger) { return .success((id, false)) }
            let (consumerKey, contextID) = try await Self.course(claim.courseID, on: connection, logger: logger)
            let admission = rules.admission(consumerKey: consumerKey, contextID: contextID, profile: claim.profile)
            let now = Date()
            let window = admission.spendCap?.window(containing: now)
            let snapshot = try await Self.snapshot(claim, window: window, on: connection, logger: logger)
            let decision = admission.decide(claim.profile, snapshot, at: now)
            if let cap = admission.spendCap, let window {
                try await Self.alertIfDue(decision, snapshot: snapshot, cap: cap, window: window, courseID: claim.courseID, contextID: contextID, on: connection, logger: logger)
            }
            switch decision {
            case .failure(let refusal):
                try await connection.query(
                    """
                    INSERT INTO admission_refusals (user_id, course_id, profile_slug, profile_version, reason, message)
                    VALUES (\(claim.userID), \(claim.courseID), \(claim.profile.slug), \(claim.profileVersion), \(refusal.reason.rawValue), \(refusal.message))
                    """,
                    logger: logger
                )
                return .failure(refusal)
            case .success(let admitted):
                return .success((try await insert(claim, admitted, sealed: sealed, on: connection), true))
            }
        }
        let (id, created) = try outcome.get()
        guard let record = try await find(id) else {
            throw EnvironmentRepositoryError(description: "the environment for user \(claim.userID) in course \(claim.courseID) could not be claimed")
        }
        return (record, created)
    }

    /// Records the course's budget alert for the period when this decision reaches it: a warning
    /// when what is committed passes the warning share, `spent` when a launch is refused for the
    /// budget. Each is recorded (and logged) once per period, whichever replica gets there first.
    private static func alertIfDue(
        _ decision: Result<Admitted, AdmissionRefusal>, snapshot: AdmissionSnapshot, cap: SpendCap, window: DateInterval, courseID: Int64, contextID: String,
        on connection: PostgresConnection, logger: Logger
    ) async throws {
        let level: SpendAlertLevel
        let committed: Decimal
        switch decision {
        case .success(let admitted) where snapshot.courseCommitted + admitted.reservation >= cap.amount * cap.warnAt:
            (level, committed) = (.warning, snapshot.courseCommitted + admitted.reservation)
        case .failure(let refusal) where refusal.reason == .spendCap:
            (level, committed) = (.spent, snapshot.courseCommitted)
        default:
            return
        }
        let rows = try await connection.query(
            """
            INSERT INTO spend_alerts (course_id, period_start, level, committed, amount, currency)
            VALUES (\(courseID), \(window.start), \(level.rawValue), \(committed), \(cap.amount), \(cap.currency))
            ON CONFLICT DO NOTHING RETURNING level
            """,
            logger: logger
        )
        for try await _ in rows {
            let metadata: Logger.Metadata = [
                "course": "\(contextID)", "committed": "\(Money.format(committed, cap.currency))", "budget": "\(Money.format(cap.amount, cap.currency))",
                "period": "\(cap.describe(window))",
            ]
            if level == .warning {
                logger.warning("a course has committed most of its compute budget", metadata: metadata)
            } else {
                logger.error("a course's compute budget is spent: its launches are refused", metadata: metadata)
            }
        }
    }

    private static func live(_ claim: EnvironmentClaim, on connection: PostgresConnection, logger: Logger) async throws -> Int64? {
        let rows = try await connection.query(
            """
            SELECT id FROM environments WHERE user_id = \(claim.userID) AND course_id = \(claim.courseID) AND portal_is_live(state)
            """,
            logger: logger
        )
        for try await id in rows.decode(Int64.self) { return id }
        return nil
    }

    private static func course(_ id: Int64, on connection: PostgresConnection, logger: Logger) async throws -> (String, String) {
        let rows = try await connection.query("SELECT consumer_key, context_id FROM courses WHERE id = \(id)", logger: logger)
        for try await row in rows.decode((String, String).self) { return row }
        throw EnvironmentRepositoryError(description: "there is no course \(id)")
    }

    private static func snapshot(_ claim: EnvironmentClaim, window: DateInterval?, on connection: PostgresConnection, logger: Logger) async throws -> AdmissionSnapshot {
        var snapshot = AdmissionSnapshot(hosts: try await HostRepository.loads(on: connection, logger: logger))
        let counts = try await connection.query(
            """
            SELECT count(*), count(*) FILTER (WHERE course_id = \(claim.courseID)), count(*) FILTER (WHERE profile_slug = \(claim.profile.slug))
            FROM environments WHERE portal_is_live(state)
            """,
            logger: logger
        )
        for try await (live, course, profile) in counts.decode((Int64, Int64, Int64).self) {
            (snapshot.live, snapshot.liveInCourse, snapshot.liveOfProfile) = (Int(live), Int(course), Int(profile))
        }
        if let window {
            let spend = try await connection.query(
                """
                SELECT COALESCE(sum(CASE WHEN portal_is_live(state) THEN greatest(reserved_cost, cost) ELSE cost END), 0)
                FROM usage_sessions WHERE course_id = \(claim.courseID) AND requested_at >= \(window.start) AND requested_at < \(window.end)
                """,
                logger: logger
            )
            for try await committed in spend.decode(Decimal.self) { snapshot.courseCommitted = committed }
        }
        return snapshot
    }

    /// Records the admitted environment, `requested`, and its first event, in one statement.
    private func insert(_ claim: EnvironmentClaim, _ admitted: Admitted, sealed: ByteBuffer, on connection: PostgresConnection) async throws -> Int64 {
        let prefix = String(installationID.prefix(8))
        let profile = claim.profile
        let card = admitted.rateCard
        let cpu = Decimal(string: String(profile.cpu)) ?? Decimal(profile.cpu)
        let rows = try await connection.query(
            """
            WITH created AS (
                INSERT INTO environments (user_id, course_id, profile_slug, profile_version, engine, state, message, container_name,
                                          token_sealed, home_volume, base_path, cpu, memory_bytes, gpus, gpu_ids, max_lifetime_seconds,
                                          rate_card, currency, rate_cpu_core_hour, rate_memory_gib_hour, rate_gpu_hour, hourly_cost, reserved_cost)
                SELECT \(claim.userID), \(claim.courseID), \(profile.slug), \(claim.profileVersion), \(admitted.host), \(EnvironmentState.requested.rawValue),
                       'Waiting to start', 'portal-' || \(prefix) || '-' || c.slug || '-' || u.slug || '-' || substr(md5(random()::text), 1, 6),
                       \(sealed),
                       CASE WHEN \(profile.persistence == .persistent) THEN 'portal-home-' || c.slug || '-' || u.slug
                            ELSE 'portal-tmp-' || c.slug || '-' || u.slug || '-' || substr(md5(random()::text), 1, 6) END,
                       '/user/' || u.slug || '/' || c.slug || '/',
                       \(cpu), \(profile.memoryBytes), \(profile.gpus), \(admitted.gpuIDs), \(profile.maxLifetimeSeconds),
                       \(card?.name), \(card?.currency), \(card?.cpuCoreHour), \(card?.memoryGiBHour), \(card?.gpuHour), \(admitted.hourlyCost), \(admitted.reservation)
                FROM users u, courses c WHERE u.id = \(claim.userID) AND c.id = \(claim.courseID)
                RETURNING id, state, message
            )
            INSERT INTO environment_events (environment_id, state, message) SELECT id, state, message FROM created
            RETURNING environment_id
            """,
            logger: logger
        )
        for try await id in rows.decode(Int64.self) { return id }
        throw EnvironmentRepositoryError(description: "the environment for user \(claim.userID) in course \(claim.courseID) could not be recorded")
    }
}
