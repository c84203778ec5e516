import Foundation
import Logging
import PostgresNIO
@testable import Portal
import TestSupport
import Testing

/// A fresh, empty database on the test server (PORTAL_TEST_DATABASE_URL) for one test.
struct TestDatabase {
    let name: String
    let url: String

    static func create() async throws -> TestDatabase {
        guard let admin = TestEnvironment.databaseURL else {
            throw MissingComponent("PORTAL_TEST_DATABASE_URL is not set: run the tests with scripts/test.sh")
        }
        let name = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased()
        _ = try await withClient(url: admin) { client in
            try await client.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"))
        }
        var components = try #require(URLComponents(string: admin))
        components.path = "/" + name
        return TestDatabase(name: name, url: try #require(components.string))
    }

    /// Runs `body` with a running client for `url`.
    static func withClient<T: Sendable>(url: String, _ body: @Sendable (PostgresClient) async throws -> T) async throws -> T {
        let client = PostgresClient(configuration: try DatabaseURL.configuration(url))
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            return try await body(client)
        }
    }

    func withClient<T: Sendable>(_ body: @Sendable (PostgresClient) async throws -> T) async throws -> T {
        try await Self.withClient(url: url, body)
    }

    /// The number of rows `sql` returns as a count.
    static func count(_ client: PostgresClient, _ sql: String) async throws -> Int {
        for try await (count) in try await client.query(PostgresQuery(unsafeSQL: sql)).decode(Int.self) { return count }
        return -1
    }
}

