import Environments
import Foundation
import Logging
import PostgresNIO
@testable import Portal
import TestSupport
import Testing

/// Admission in real PostgreSQL: caps that hold under simultaneous claims from two clients (two
/// replicas), placement over the hosts table, and prices, reservations and spend to the cent.
@Suite("Admission in PostgreSQL", .enabled(if: TestEnvironment.hasDatabase))
struct AdmissionStoreTests {
    static func users(_ client: PostgresClient, count: Int) async throws -> [Int64] {
        var ids = [Int64]()
        let rows = try await client.query(
            "INSERT INTO users (consumer_key, lti_user_id, slug) SELECT 'vle', 'student' || n, 'slug' || n FROM generate_series(1, \(count)) n RETURNING id"
        )
        for try await id in rows.decode(Int64.self) { ids.append(id) }
        return ids
    }

    static func course(_ client: PostgresClient, contextID: String = "c1") async throws -> Int64 {
        for try await id in try await client.query("INSERT INTO courses (consumer_key, context_id) VALUES ('vle', \(contextID)) RETURNING id").decode(Int64.self) {
            return id
        }
        throw MissingComponent("no course")
    }

    static func repository(_ client: PostgresClient, _ admission: PortalConfiguration.AdmissionConfiguration, placement: Placement.Strategy = .leastLoaded) -> EnvironmentRepository {
        var repository = EnvironmentRepository(client: client, box: EnvironmentStoreTests.box, installationID: "0123456789abcdef")
        repository.rules = AdmissionRules(configuration: admission, placement: Placement(strategy: placement))
        return repository
    }

    static let profile = Profile(slug: "p", displayName: "P", image: "img", cpu: 0.5, memoryBytes: 256 << 20, maxLifetimeSeconds: 7200)

    /// 200 students at once through two clients, course cap 10: exactly 10 environments, 190 refusals recorded.
    @Test func twoHundredSimultaneousClaimsNeverPassTheCourseCap() async throws {
        let database = try await TestDatabase.create()
        try await database.withClient { client in
            try await MigrationRunner(migrations: try Migration.load(from: TestPaths.migrations), logger: Logger(label: "test")).run(on: client)
            try await EnvironmentStoreTests.addHost(client)
            _ = try await ProfileRepository(client: client).apply(Self.profile, source: "test")
            let users = try await Self.users(client, count: 200)
            let course = try await Self.course(client)
            var configured = PortalConfiguration.AdmissionConfiguration()
            configured.courses = [.init(contextID: "c1", maxRunning: 10)]
            let admission = configured
            try await TestDatabase.withClient(url: database.url) { second in
                let replicas = [Self.repository(client, admission), Self.repository(second, admission)]
                let outcomes = try await withThrowingTaskGroup(of: AdmissionRefusal.Reason?.self) { group in
                    for (index, user) in users.enumerated() {
                        group.addTask {
                            do {
                                let claim = EnvironmentClaim(userID: user, courseID: course, profile: Self.profile, profileVersion: 1)
                                _ = try await replicas[index % 2].claim(claim)
                                return nil
                            } catch let refusal as AdmissionRefusal {
                                return refusal.reason
                            }
                        }
                    }
                    var all = [AdmissionRefusal.Reason?]()
                    for try await outcome in group { all.append(outcome) }
                    return all
                }
                #expect(outcomes.filter { $0 == nil }.count == 10)
                #expect(outcomes.filter { $0 == .courseCap }.count == 190)
            }
            #expect(try await TestDatabase.count(client, "SELECT count(*) FROM environments WHERE state = 'requested'") == 10)
            #expect(try await TestDatabase.count(client, "SELECT count(*) FROM admission_refusals WHERE reason = 'course_cap'") == 190)
        }
    }

    /// Two hosts of two cores: environments spread, a drained host gets none, a full pool refuses.
    @Test func placementSpreadsSkipsDrainedHostsAndRefusesWhenFull() async throws {
        let database = try await TestDatabase.create()
        try await database.withClient { client in
            try await MigrationRunner(migrations: try Migration.load(from: TestPaths.migrations), logger: Logger(label: "test")).run(on: client)
            let hosts = HostRepository(client: client)
            for name in ["host-a", "host-b"] {
                try await hosts.add(Environments.Host(name: name, endpoint: "tcp://10.0.0.1:2375", capacity: Capacity(cpu: 1, memoryBytes: 1 << 30)))
            }
            _ = try await ProfileRepository(client: client).apply(Self.profile, source: "test")
            let users = try await Self.users(client, count: 5)
            let course = try await Self.course(client)
            let repository = Self.repository(client, .init())
            func claim(_ user: Int64) async throws -> String {
                try await repository.claim(EnvironmentClaim(userID: user, courseID: course, profile: Self.profile, profileVersion: 1)).record.engine
            }
            #expect(try await claim(users[0]) == "host-a")
            #expect(try await claim(users[1]) == "host-b")
            try await hosts.setDraining("host-b", true)
            #expect(try await claim(users[2]) == "host-a")
            await #expect(throws: AdmissionRefusal.self) { try await claim(users[3]) }  // host-a full, host-b draining
            let loads = try await hosts.loads()
            #expect(loads.map(\.environments) == [2, 1] && loads.map(\.usedCPU) == [1, 0.5])
            await #expect(throws: HostError.self) { try await hosts.remove("host-b") }
            #expect(try await TestDatabase.count(client, "SELECT count(*) FROM admission_refusals WHERE reason = 'no_capacity'") == 1)
        }
    }

    /// A rate card prices each run; the reservation and the metered cost match it to the cent, and
    /// the launch whose reservation would pass the course's budget is refused.
    @Test func reservationsMeteringAndTheBudget() async throws {
        let database = try await TestDatabase.create()
        try await database.withClient { client in
            try await MigrationRunner(migrations: try Migration.load(from: TestPaths.migrations), logger: Logger(label: "test")).run(on: client)
            try await EnvironmentStoreTests.addHost(client)
            // 1.5 cores × 0.04 + 3 GiB × 0.005 = 0.075 an hour; a 2-hour maximum lifetime reserves 0.15.
            let profile = Profile(slug: "priced", displayName: "Priced", image: "img", cpu: 1.5, memoryBytes: 3 << 30, maxLifetimeSeconds: 7200)
            _ = try await ProfileRepository(client: client).apply(profile, source: "test")
            let users = try await Self.users(client, count: 3)
            let course = try await Self.course(client)
            var admission = PortalConfiguration.AdmissionConfiguration()
            admission.rateCards = [RateCard(name: "standard", currency: "GBP", cpuCoreHour: Decimal(string: "0.04")!, memoryGiBHour: Decimal(string: "0.005")!)]
            admission.courses = [.init(contextID: "c1", budget: SpendCap(amount: Decimal(string: "0.30")!, currency: "GBP", contact: "the TM351 team"))]
            let repository = Self.repository(client, admission)
            func claim(_ user: Int64) async throws -> EnvironmentRecord {
                try await repository.claim(EnvironmentClaim(userID: user, courseID: course, profile: profile, profileVersion: 1)).record
            }
            let first = try await claim(users[0])
            let priced = try await client.query("SELECT rate_card, currency, hourly_cost::text, reserved_cost::text FROM environments WHERE id = \(first.id)")
            for try await (card, currency, hourly, reserved) in priced.decode((String, String, String, String).self) {
                #expect(card == "standard" && currency == "GBP")
                #expect(Decimal(string: hourly) == Decimal(string: "0.075") && Decimal(string: reserved) == Decimal(string: "0.15"))
            }
            // The first run lasted exactly 90 minutes: 0.1125.
            try await client.query(
                """
                UPDATE environments SET state = 'stopped', starting_at = now() - interval '2 hours', stopped_at = now() - interval '30 minutes'
                WHERE id = \(first.id)
                """
            )
            for try await cost in try await client.query("SELECT cost::text FROM usage_sessions WHERE environment_id = \(first.id)").decode(String.self) {
                #expect(Decimal(string: cost) == Decimal(string: "0.1125"))
            }
            // 0.1125 spent + 0.15 reserved = 0.2625 ≤ 0.30; one more reservation would make 0.4125.
            _ = try await claim(users[1])
            do {
                _ = try await claim(users[2])
                Issue.record("the launch past the budget was admitted")
            } catch let refusal as AdmissionRefusal {
                #expect(refusal.reason == .spendCap && refusal.message.contains("the TM351 team"))
            }
            #expect(try await TestDatabase.count(client, "SELECT count(*) FROM admission_refusals WHERE reason = 'spend_cap'") == 1)

            // Alerts: the second start took the course past 80 % (0.2625 of 0.30), the refusal spent it.
            #expect(try await TestDatabase.count(client, "SELECT count(*) FROM spend_alerts WHERE level = 'warning' AND committed = 0.2625") == 1)
            let cap = try #require(admission.courses.first?.budget)
            let window = try #require(cap.window(containing: Date()))
            let alerts = SpendAlerts(client: client)
            let alert = try #require(try await alerts.latest(courseID: course, periodStart: window.start))
            #expect(alert.spent && alert.notice(period: cap.describe(window)).contains("is spent (0.26 GBP of 0.30 GBP)"))
            // stop_after_grace: the live environment is due for stopping once the grace has passed.
            let live = try await alerts.overBudget(contextID: "c1", consumerKey: nil, periodStart: window.start, grace: .zero)
            #expect(live.count == 1)
            #expect(try await alerts.overBudget(contextID: "c1", consumerKey: nil, periodStart: window.start, grace: .seconds(3600)).isEmpty)
        }
    }
}
