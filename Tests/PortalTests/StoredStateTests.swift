import Environments
import Foundation
import LTI
import Logging
import NIOCore
import NIOFoundationCompat
import PostgresNIO
@testable import Portal
import TestSupport
import Testing

/// Domain states in the database and in Swift: one definition of "live" that both sides agree on,
/// CHECK constraints that list exactly the cases the Swift enums have, and stores that refuse a
/// value they do not know (a newer portal's, or a hand edit) instead of guessing a default.
@Suite("Typed states in PostgreSQL", .enabled(if: TestEnvironment.hasDatabase))
struct StoredStateTests {
    let environments = EnvironmentStoreTests()

    /// A store and a claim for a fresh student and course, with a profile and a host to place it on.
    static func claimable(_ client: PostgresClient) async throws -> (store: EnvironmentRepository, claim: EnvironmentClaim) {
        let (user, course) = try await EnvironmentStoreTests.seed(client)
        let profile = Profile(slug: "p", displayName: "P", image: "img")
        _ = try await ProfileRepository(client: client).apply(profile, source: "test")
        try await EnvironmentStoreTests.addHost(client)
        let store = EnvironmentRepository(client: client, box: EnvironmentStoreTests.box, installationID: "0123456789abcdef")
        return (store, EnvironmentClaim(userID: user, courseID: course, profile: profile, profileVersion: 1))
    }

    /// A claimed (`requested`) environment of a fresh student and course.
    static func claimed(_ client: PostgresClient) async throws -> (store: EnvironmentRepository, record: EnvironmentRecord, claim: EnvironmentClaim) {
        let (store, claim) = try await claimable(client)
        let (record, _) = try await store.claim(claim)
        return (store, record, claim)
    }

    /// Lets `table.column` hold anything, as a newer portal's migration might.
    static func dropCheck(_ client: PostgresClient, _ table: String, _ column: String) async throws {
        try await client.query(PostgresQuery(unsafeSQL: "ALTER TABLE \(table) DROP CONSTRAINT \(table)_\(column)_check"))
    }

    /// The values the CHECK constraint on `table.column` allows.
    static func allowed(_ client: PostgresClient, _ table: String, _ column: String) async throws -> Set<String> {
        let name = "\(table)_\(column)_check"
        let rows = try await client.query("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = \(name)")
        for try await definition in rows.decode(String.self) {
            let literals = definition.split(separator: "'", omittingEmptySubsequences: false).enumerated().filter { $0.offset % 2 == 1 }
            return Set(literals.map { String($0.element) })
        }
        throw MissingComponent("no constraint \(name)")
    }

    /// For every state of the Swift enum, `portal_is_live` answers what `isLive` does; the partial
    /// indexes are defined on the function, and the claim's lookup still uses the one-live index.
    @Test func swiftAndSQLAgreeOnWhatIsLive() async throws {
        try await environments.migrated { client in
            for state in EnvironmentState.allCases {
                let rows = try await client.query("SELECT portal_is_live(\(state.rawValue))")
                var answer: Bool?
                for try await live in rows.decode(Bool.self) { answer = live }
                #expect(answer == state.isLive, "portal_is_live('\(state.rawValue)') says \(String(describing: answer)), EnvironmentState.isLive says \(state.isLive)")
            }
            for index in ["environments_one_live", "environments_live"] {
                let rows = try await client.query("SELECT indexdef FROM pg_indexes WHERE indexname = \(index)")
                var definition = ""
                for try await text in rows.decode(String.self) { definition = text }
                #expect(definition.contains("WHERE portal_is_live(state)"), "\(index): \(definition)")
            }
            let plan = try await client.withConnection { connection in
                try await connection.query("SET enable_seqscan = off", logger: Logger(label: "test"))
                var lines = [String]()
                let rows = try await connection.query(
                    "EXPLAIN SELECT id FROM environments WHERE user_id = 1 AND course_id = 1 AND portal_is_live(state)", logger: Logger(label: "test")
                )
                for try await line in rows.decode(String.self) { lines.append(line) }
                return lines.joined(separator: "\n")
            }
            #expect(plan.contains("environments_one_live"), "\(plan)")
        }
    }

    /// Each CHECK constraint on a column a store reads as an enum allows exactly the enum's cases.
    @Test func theDatabaseAllowsExactlyTheCasesSwiftKnows() async throws {
        try await environments.migrated { client in
            let columns: [(table: String, column: String, cases: [String])] = [
                ("environments", "state", EnvironmentState.allCases.map(\.rawValue)),
                ("enrolments", "role", Roles.PortalRole.allCases.map(\.rawValue)),
                ("hosts", "kind", Environments.Host.Kind.allCases.map(\.rawValue)),
                ("hosts", "health", Environments.Host.Health.allCases.map(\.rawValue)),
                ("sessions", "scope", SessionCache.Scope.allCases.map(\.rawValue)),
                ("handover_codes", "scope", SessionCache.Scope.allCases.map(\.rawValue)),
                ("spend_alerts", "level", SpendAlertLevel.allCases.map(\.rawValue)),
            ]
            for (table, column, cases) in columns {
                let allowed = try await Self.allowed(client, table, column)
                #expect(allowed == Set(cases), "\(table).\(column)")
            }
        }
    }

    /// An environment in a state this portal does not know is an error that says where, for the
    /// lifecycle's store and the proxy's alike — never a `failed` (or any other) guess.
    @Test func anUnknownEnvironmentStateIsAnErrorNamingTheTableColumnAndValue() async throws {
        try await environments.migrated { client in
            let (store, record, claim) = try await Self.claimed(client)
            try await Self.dropCheck(client, "environments", "state")
            try await client.query("UPDATE environments SET state = 'hibernating' WHERE id = \(record.id)")
            let expected = UnknownStoredValue(table: "environments", column: "state", value: "hibernating", known: EnvironmentState.allCases.map(\.rawValue))
            await #expect(throws: expected) { try await store.find(record.id) }
            await #expect(throws: expected) { try await store.latest(userID: claim.userID, courseID: claim.courseID) }
            await #expect(throws: expected) { try await RouteStore(client: client, box: EnvironmentStoreTests.box).environment(record.id) }
            #expect(expected.description.contains("\"hibernating\" in environments.state"))
            #expect(expected.description.contains("requested, starting, ready, stopping, stopped, failed"))
        }
    }

    /// A session with a role this portal does not know is refused, not taken for a learner.
    @Test func anUnknownRoleIsAnError() async throws {
        try await environments.migrated { client in
            let (user, course) = try await EnvironmentStoreTests.seed(client)
            var launch: Int64 = 0
            for try await id in try await client.query("INSERT INTO launches (outcome, user_id, course_id) VALUES ('accepted', \(user), \(course)) RETURNING id").decode(Int64.self) {
                launch = id
            }
            let token = SessionToken.generate()
            let hash = ByteBuffer(data: SessionToken.hash(token))
            try await client.query(
                "INSERT INTO sessions (token_hash, user_id, course_id, launch_id, role, expires_at) VALUES (\(hash), \(user), \(course), \(launch), 'observer', now() + interval '1 hour')"
            )
            let expected = UnknownStoredValue(table: "sessions", column: "role", value: "observer", known: ["learner", "course_staff", "admin"])
            await #expect(throws: expected) { try await SessionStore(client: client).find(token: token) }
            try await client.query("UPDATE sessions SET role = 'course_staff'")
            #expect(try await SessionStore(client: client).find(token: token)?.role == .courseStaff)
        }
    }

    /// A host's kind or health this portal does not know stops the pool's reads with where it is.
    @Test func anUnknownHostKindOrHealthIsAnError() async throws {
        try await environments.migrated { client in
            try await EnvironmentStoreTests.addHost(client)
            let hosts = HostRepository(client: client)
            try await Self.dropCheck(client, "hosts", "health")
            try await client.query("UPDATE hosts SET health = 'degraded'")
            await #expect(throws: UnknownStoredValue(table: "hosts", column: "health", value: "degraded", known: ["unknown", "up", "down"])) {
                try await hosts.loads()
            }
            await #expect(throws: UnknownStoredValue(table: "hosts", column: "health", value: "degraded", known: ["unknown", "up", "down"])) {
                try await hosts.recordHealth("local", up: true, message: nil)
            }
            #expect(try await hosts.find("local")?.health == .up)
            try await Self.dropCheck(client, "hosts", "kind")
            try await client.query("UPDATE hosts SET kind = 'kubernetes'")
            await #expect(throws: UnknownStoredValue(table: "hosts", column: "kind", value: "kubernetes", known: ["docker", "process"])) {
                try await hosts.loads()
            }
        }
    }

    /// A spend alert's level this portal does not know is an error, not a warning.
    @Test func anUnknownSpendAlertLevelIsAnError() async throws {
        try await environments.migrated { client in
            let (_, course) = try await EnvironmentStoreTests.seed(client)
            try await Self.dropCheck(client, "spend_alerts", "level")
            let start = Date(timeIntervalSince1970: 1_700_000_000)
            try await client.query(
                "INSERT INTO spend_alerts (course_id, period_start, level, committed, amount, currency) VALUES (\(course), \(start), 'overspent', 1, 1, 'GBP')"
            )
            await #expect(throws: UnknownStoredValue(table: "spend_alerts", column: "level", value: "overspent", known: ["warning", "spent"])) {
                try await SpendAlerts(client: client).latest(courseID: course, periodStart: start)
            }
        }
    }

    /// Migration 0007 on a database with environments: the indexes are recreated on the function
    /// and still allow one live environment per student and course, and any number of ended ones.
    @Test func theLiveIndexesAreRecreatedOnAnExistingDatabase() async throws {
        let database = try await TestDatabase.create()
        try await database.withClient { client in
            let all = try Migration.load(from: TestPaths.migrations)
            let upTo6 = all.filter { $0.version <= 6 }
            try await MigrationRunner(migrations: upTo6, logger: Logger(label: "test")).run(on: client)
            let (user, course) = try await EnvironmentStoreTests.seed(client)
            _ = try await ProfileRepository(client: client).apply(Profile(slug: "p", displayName: "P", image: "img"), source: "test")
            let insert: @Sendable (String) async throws -> Void = { state in
                try await client.query(
                    """
                    INSERT INTO environments (user_id, course_id, profile_slug, profile_version, engine, state, container_name, token_sealed, home_volume, base_path)
                    VALUES (\(user), \(course), 'p', 1, 'local', \(state), 'n', '\\x00'::bytea, 'h', '/user/slugu1/c/')
                    """
                )
            }
            try await insert("ready")
            try await insert("stopped")
            #expect(try await MigrationRunner(migrations: all.filter { $0.version <= 7 }, logger: Logger(label: "test")).run(on: client) == ["0007_live_defined_once"])
            try await insert("failed")
            await #expect(throws: PSQLError.self) { try await insert("starting") }
            let live = try await TestDatabase.count(client, "SELECT count(*) FROM environments WHERE portal_is_live(state)")
            #expect(live == 1)
        }
    }
}
