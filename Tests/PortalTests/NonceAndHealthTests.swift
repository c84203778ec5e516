import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import PostgresNIO
@testable import Portal
import TestSupport
import Testing

@Suite("PostgreSQL nonce store and health", .enabled(if: TestEnvironment.hasDatabase))
struct NonceAndHealthTests {
    func migrated(_ body: @Sendable (PostgresClient) async throws -> Void) async throws {
        let database = try await TestDatabase.create()
        try await database.withClient { client in
            try await MigrationRunner(migrations: try Migration.load(from: TestPaths.migrations), logger: Logger(label: "test")).run(on: client)
            try await body(client)
        }
    }

    @Test func noncesAreSingleUsePerConsumerUntilTheyExpireAndArePurged() async throws {
        try await migrated { client in
            let store = PostgresNonceStore(client: client)
            let later = Date().addingTimeInterval(300)
            #expect(try await store.use(nonce: "n1", consumerKey: "a", expiresAt: later))
            #expect(try await !store.use(nonce: "n1", consumerKey: "a", expiresAt: later))
            #expect(try await store.use(nonce: "n1", consumerKey: "b", expiresAt: later))
            // An expired nonce that the purge has not reached yet may be used again.
            let past = Date().addingTimeInterval(-1)
            #expect(try await store.use(nonce: "old", consumerKey: "a", expiresAt: past))
            #expect(try await store.use(nonce: "old", consumerKey: "a", expiresAt: later))
            #expect(try await !store.use(nonce: "old", consumerKey: "a", expiresAt: later))
            #expect(try await store.use(nonce: "gone", consumerKey: "a", expiresAt: past))
            #expect(try await store.purge() == 1)
            let left = try await TestDatabase.count(client, "SELECT count(*) FROM lti_nonces")
            #expect(left == 3)
        }
    }

    /// Fifty replicas' worth of concurrent attempts at one nonce: exactly one wins.
    @Test func concurrentUsesOfOneNonceLetExactlyOneThrough() async throws {
        try await migrated { client in
            let store = PostgresNonceStore(client: client)
            let expiry = Date().addingTimeInterval(300)
            let wins = try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<50 { group.addTask { try await store.use(nonce: "race", consumerKey: "a", expiresAt: expiry) } }
                var count = 0
                for try await won in group where won { count += 1 }
                return count
            }
            #expect(wins == 1)
        }
    }

    @Test func healthIs503WhenTheDatabaseDoesNotAnswer() async throws {
        let port = try PortalProcess.freePort()
        var configuration = PostgresClient.Configuration(host: "127.0.0.1", port: port, username: "nobody", password: nil, database: "none", tls: .disable)
        configuration.options.connectTimeout = .seconds(1)
        let deadClient = PostgresClient(configuration: configuration)
        let router = Router(context: PortalRequestContext.self)
        HealthController(client: deadClient).register(with: router)
        let app = Application(router: router, services: [deadClient])
        try await app.test(.live) { client in
            let response = try await client.execute(uri: "/healthz", method: .get)
            #expect(response.status == .serviceUnavailable)
            #expect(String(buffer: response.body).contains("unavailable"))
        }
    }
}
