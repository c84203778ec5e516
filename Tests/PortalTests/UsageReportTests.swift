import Environments
import Foundation
import Logging
import PostgresNIO
@testable import Portal
import TestSupport
import Testing

/// `portal report usage` over real records: groups, refused starts, cost to the cent, RFC 4180.
@Suite("Usage reports", .enabled(if: TestEnvironment.hasDatabase))
struct UsageReportTests {
    /// Three runs of 20 minutes at 1.00 an hour (0.3333… each, 0.33 rounded) and a refusal, in one
    /// course with a comma in its label, on two hosts; the report's totals are the sums of its rows.
    @Test func groupsAddUpToTheCentInCSVAndJSON() async throws {
        let database = try await TestDatabase.create()
        try await database.withClient { client in
            try await MigrationRunner(migrations: try Migration.load(from: TestPaths.migrations), logger: Logger(label: "test")).run(on: client)
            for name in ["host-a", "host-b"] { try await EnvironmentStoreTests.addHost(client, name: name) }
            let profile = Profile(slug: "p", displayName: "P", image: "img", cpu: 1, memoryBytes: 1 << 30, maxLifetimeSeconds: 3600)
            _ = try await ProfileRepository(client: client).apply(profile, source: "test")
            let users = try await AdmissionStoreTests.users(client, count: 4)
            let course = try await AdmissionStoreTests.course(client, contextID: "TM351-25J")
            try await client.query("UPDATE courses SET label = 'TM351, \"data\"' WHERE id = \(course)")
            var admission = PortalConfiguration.AdmissionConfiguration()
            admission.rateCards = [RateCard(name: "flat", currency: "GBP", cpuCoreHour: 1)]
            admission.courses = [.init(contextID: "TM351-25J", maxRunning: 3)]
            let repository = AdmissionStoreTests.repository(client, admission)
            for user in users.prefix(3) {
                _ = try await repository.claim(EnvironmentClaim(userID: user, courseID: course, profile: profile, profileVersion: 1))
            }
            await #expect(throws: AdmissionRefusal.self) {
                try await repository.claim(EnvironmentClaim(userID: users[3], courseID: course, profile: profile, profileVersion: 1))
            }
            try await client.query(
                "UPDATE environments SET state = 'stopped', starting_at = requested_at, stopped_at = requested_at + interval '20 minutes', stop_reason = 'idle'"
            )
            let today = Calendar(identifier: .gregorian).startOfDay(for: Date()).addingTimeInterval(-86_400)
            let report = try await UsageReport.load(client, from: today, to: today.addingTimeInterval(3 * 86_400), by: .course)
            #expect(
                report.csv() == """
                    consumer,context_id,course_label,currency,runs,refused,cpu_core_hours,memory_gib_hours,gpu_hours,cost\r
                    vle,TM351-25J,"TM351, ""data\""",GBP,3,1,1,1,0,0.99\r
                    TOTAL,,,GBP,3,1,1,1,0,0.99\r

                    """
            )
            let byHost = try await UsageReport.load(client, from: today, to: today.addingTimeInterval(3 * 86_400), by: .host)
            #expect(byHost.rows.map(\.key) == [["host-a"], ["host-b"]])
            #expect(byHost.rows.map(\.cost).reduce(0, +) == Decimal(string: "0.99"))
            #expect(byHost.totals.map(\.cost) == [Decimal(string: "0.99")!])
            let json = try #require(try JSONSerialization.jsonObject(with: try report.json()) as? [String: Any])
            let rows = try #require(json["rows"] as? [[String: Any]])
            #expect(rows.first?["cost"] as? String == "0.99" && rows.first?["context_id"] as? String == "TM351-25J")
            // Another period has nothing.
            let empty = try await UsageReport.load(client, from: today.addingTimeInterval(-30 * 86_400), to: today.addingTimeInterval(-29 * 86_400), by: .user)
            #expect(empty.rows.isEmpty && empty.csv().hasPrefix("consumer,lti_user_id,user,currency"))
        }
    }
}
