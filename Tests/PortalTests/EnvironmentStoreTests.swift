import Environments
import Foundation
import Logging
import PostgresNIO
@testable import Portal
import TestSupport
import Testing

@Suite("Profiles and environments in PostgreSQL", .enabled(if: TestEnvironment.hasDatabase))
struct EnvironmentStoreTests {
    static let box = try! SecretBox(source: .value("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="))

    func migrated(_ body: @Sendable (PostgresClient) async throws -> Void) async throws {
        let database = try await TestDatabase.create()
        try await database.withClient { client in
            try await MigrationRunner(migrations: try Migration.load(from: TestPaths.migrations), logger: Logger(label: "test")).run(on: client)
            try await body(client)
        }
    }

    /// A host of the pool with room for anything the tests start.
    static func addHost(_ client: PostgresClient, name: String = "local", kind: Environments.Host.Kind = .docker, endpoint: String = "unix:///unused") async throws {
        try await HostRepository(client: client).add(Environments.Host(name: name, kind: kind, endpoint: endpoint, capacity: Capacity(cpu: 64, memoryBytes: 1 << 40)))
    }

    /// A user and a course, as a launch would have created them.
    static func seed(_ client: PostgresClient) async throws -> (Int64, Int64) {
        var user: Int64 = 0
        var course: Int64 = 0
        for try await id in try await client.query("INSERT INTO users (consumer_key, lti_user_id, slug) VALUES ('vle', 'u1', 'slugu1') RETURNING id").decode(Int64.self) { user = id }
        for try await id in try await client.query("INSERT INTO courses (consumer_key, context_id) VALUES ('vle', 'c1') RETURNING id").decode(Int64.self) { course = id }
        return (user, course)
    }

    @Test func profilesAreVersionedOnlyWhenTheyChange() async throws {
        try await migrated { client in
            let repository = ProfileRepository(client: client)
            var profile = Profile(slug: "tm351", displayName: "TM351", image: "localhost/portal-jupyter:1")
            #expect(try await repository.apply(profile, source: "a.yaml") == .created)
            #expect(try await repository.apply(profile, source: "a.yaml") == .unchanged(1))
            profile.memoryBytes = 2 << 30
            #expect(try await repository.apply(profile, source: "a.yaml") == .updated(2))
            let current = try await repository.current()
            #expect(current.count == 1 && current[0].version == 2 && current[0].profile == profile)
            try await repository.map(consumerKey: "", contextID: "c1", profile: "tm351")
            try await repository.map(consumerKey: "", contextID: "c1", profile: "tm351")
            #expect(try await repository.mappings() == [CourseMapping(consumerKey: "", contextID: "c1", profileSlug: "tm351")])
            #expect(try await repository.unmap(consumerKey: "", contextID: "c1"))
            #expect(try await !repository.unmap(consumerKey: "", contextID: "c1"))
        }
    }

    /// Fifty simultaneous claims for one student in one course: one environment, created once.
    @Test func simultaneousClaimsJoinOneEnvironment() async throws {
        try await migrated { client in
            let (user, course) = try await Self.seed(client)
            let profile = Profile(slug: "p", displayName: "P", image: "img")
            _ = try await ProfileRepository(client: client).apply(profile, source: "test")
            let store = EnvironmentRepository(client: client, box: Self.box, installationID: "0123456789abcdef")
            try await Self.addHost(client)
            let claim = EnvironmentClaim(userID: user, courseID: course, profile: profile, profileVersion: 1)
            let results = try await withThrowingTaskGroup(of: (Int64, Bool).self) { group in
                for _ in 0..<50 { group.addTask { let (record, created) = try await store.claim(claim); return (record.id, created) } }
                var all = [(Int64, Bool)]()
                for try await result in group { all.append(result) }
                return all
            }
            #expect(Set(results.map(\.0)).count == 1)
            #expect(results.filter(\.1).count == 1)
            let record = try #require(try await store.find(results[0].0))
            #expect(record.state == .requested)
            #expect(record.basePath == "/user/slugu1/\(record.courseSlug)/")
            #expect(record.homeVolume == "portal-home-\(record.courseSlug)-slugu1")
            #expect(record.containerName.hasPrefix("portal-01234567-"))
            #expect(record.token.count >= 40)
            // The token is sealed at rest.
            let plain = try await TestDatabase.count(client, "SELECT count(*) FROM environments WHERE position(convert_to('\(record.token)', 'UTF8') in token_sealed) > 0")
            #expect(plain == 0)

            // The state machine holds in the database.
            #expect(try await store.update(record.id, EnvironmentChange(.starting, message: "a")) != nil)
            #expect(try await store.update(record.id, EnvironmentChange(.starting, message: "b", upstream: "127.0.0.1:1")) != nil)
            #expect(try await store.update(record.id, EnvironmentChange(.ready))?.upstream == "127.0.0.1:1")
            #expect(try await store.update(record.id, EnvironmentChange(.starting)) == nil)
            #expect(try await store.update(record.id, EnvironmentChange(.stopping, stopReason: .student)) != nil)
            #expect(try await store.update(record.id, EnvironmentChange(.stopped)) != nil)
            let events = try await TestDatabase.count(client, "SELECT count(*) FROM environment_events WHERE environment_id = \(record.id)")
            #expect(events == 6)
            // Once stopped, the slot is free: a new claim creates a new environment.
            let (next, created) = try await store.claim(claim)
            #expect(created && next.id != record.id)
        }
    }

    /// A state change and its event are one write: when the event cannot be recorded, the state
    /// does not move either.
    @Test func aStateChangeIsRecordedWithItsEventOrNotAtAll() async throws {
        try await migrated { client in
            let (store, record, _) = try await StoredStateTests.claimed(client)
            try await client.query("ALTER TABLE environment_events ADD CONSTRAINT test_refuses_starting CHECK (state <> 'starting')")
            await #expect(throws: PSQLError.self) { try await store.update(record.id, EnvironmentChange(.starting, message: "Starting")) }
            let after = try #require(try await store.find(record.id))
            #expect(after.state == .requested && after.message == "Waiting to start")
            #expect(try await TestDatabase.count(client, "SELECT count(*) FROM environment_events WHERE environment_id = \(record.id)") == 1)

            try await client.query("ALTER TABLE environment_events DROP CONSTRAINT test_refuses_starting")
            #expect(try await store.update(record.id, EnvironmentChange(.starting, message: "Starting"))?.state == .starting)
            let events = try await TestDatabase.count(
                client, "SELECT count(*) FROM environment_events WHERE environment_id = \(record.id) AND state = 'starting' AND message = 'Starting'"
            )
            #expect(events == 1)
        }
    }

    /// A claim records the new environment and its first event in the same transaction.
    @Test func aClaimIsRecordedWithItsEventOrNotAtAll() async throws {
        try await migrated { client in
            let (store, claim) = try await StoredStateTests.claimable(client)
            try await client.query("ALTER TABLE environment_events ADD CONSTRAINT test_refuses_requested CHECK (state <> 'requested')")
            await #expect(throws: PostgresTransactionError.self) { try await store.claim(claim) }
            #expect(try await TestDatabase.count(client, "SELECT count(*) FROM environments") == 0)

            try await client.query("ALTER TABLE environment_events DROP CONSTRAINT test_refuses_requested")
            let (record, created) = try await store.claim(claim)
            #expect(created)
            let events = try await TestDatabase.count(
                client, "SELECT count(*) FROM environment_events WHERE environment_id = \(record.id) AND state = 'requested' AND message = 'Waiting to start'"
            )
            #expect(events == 1)
        }
    }
}
