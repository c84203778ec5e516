import Foundation
import Logging
import PostgresNIO
@testable import Portal
import TestSupport
import Testing

@Suite("Migrations", .enabled(if: TestEnvironment.hasDatabase))
struct MigrationTests {
    let logger = Logger(label: "migration-test")

    /// A private copy of the migrations directory, to edit.
    func copyOfMigrations() throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("migrations-\(UUID().uuidString)").path
        try FileManager.default.copyItem(atPath: TestPaths.migrations, toPath: directory)
        return directory
    }

    @Test func aFreshDatabaseIsMigratedAndAReRunChangesNothing() async throws {
        let database = try await TestDatabase.create()
        try await database.withClient { client in
            let runner = MigrationRunner(migrations: try Migration.load(from: TestPaths.migrations), logger: logger)
            let first = try await runner.run(on: client)
            #expect(first == runner.migrations.map(\.name))
            #expect(try await TestDatabase.count(client, "SELECT count(*) FROM information_schema.tables WHERE table_name IN ('users','courses','enrolments','launches','sessions','lti_nonces','consumers')") == 7)
            let second = try await runner.run(on: client)
            #expect(second.isEmpty)
            #expect(try await TestDatabase.count(client, "SELECT count(*) FROM schema_migrations") == runner.migrations.count)
        }
    }

    @Test func aChangedAppliedFileIsRefused() async throws {
        let database = try await TestDatabase.create()
        let directory = try copyOfMigrations()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await database.withClient { client in
            try await MigrationRunner(migrations: try Migration.load(from: directory), logger: logger).run(on: client)
            let file = directory + "/0001_foundation.sql"
            let original = try String(contentsOfFile: file, encoding: .utf8)
            try (original + "\n-- an innocent-looking edit\n").write(toFile: file, atomically: true, encoding: .utf8)
            do {
                try await MigrationRunner(migrations: try Migration.load(from: directory), logger: logger).run(on: client)
                Issue.record("a changed migration was accepted")
            } catch let error as MigrationError {
                guard case .changedAfterApply(let name, _, _) = error else {
                    Issue.record("unexpected \(error)")
                    return
                }
                #expect(name == "0001_foundation")
                #expect(error.description.contains("was changed after it was applied"))
            }
            // The advisory lock was released: a corrected run goes through.
            try original.write(toFile: file, atomically: true, encoding: .utf8)
            #expect(try await MigrationRunner(migrations: try Migration.load(from: directory), logger: logger).run(on: client).isEmpty)
        }
    }

    @Test func aFailingMigrationIsRolledBackWhole() async throws {
        let database = try await TestDatabase.create()
        let directory = try copyOfMigrations()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "CREATE TABLE half_done (x int);\nSELECT no_such_function();\n".write(toFile: directory + "/0999_broken.sql", atomically: true, encoding: .utf8)
        try await database.withClient { client in
            await #expect(throws: MigrationError.self) {
                try await MigrationRunner(migrations: try Migration.load(from: directory), logger: logger).run(on: client)
            }
            let halfDone = try await TestDatabase.count(client, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'half_done'")
            let broken = try await TestDatabase.count(client, "SELECT count(*) FROM schema_migrations WHERE version = 999")
            let foundation = try await TestDatabase.count(client, "SELECT count(*) FROM schema_migrations WHERE version = 1")
            #expect(halfDone == 0 && broken == 0 && foundation == 1)
        }
    }

    @Test func aDatabaseFromANewerPortalIsRefused() async throws {
        let database = try await TestDatabase.create()
        try await database.withClient { client in
            try await MigrationRunner(migrations: try Migration.load(from: TestPaths.migrations), logger: logger).run(on: client)
            try await client.query("INSERT INTO schema_migrations (version, name, checksum) VALUES (9999, '9999_future', 'abc')")
            await #expect(throws: MigrationError.self) {
                try await MigrationRunner(migrations: try Migration.load(from: TestPaths.migrations), logger: logger).run(on: client)
            }
        }
    }

    /// Four runners at once, each on its own connection pool (as four portals would be): exactly
    /// one applies each migration, none fails.
    @Test func concurrentRunnersTakeTurns() async throws {
        let database = try await TestDatabase.create()
        let migrations = try Migration.load(from: TestPaths.migrations)
        let results = try await withThrowingTaskGroup(of: [String].self) { group in
            for _ in 0..<4 {
                group.addTask {
                    try await database.withClient { client in
                        try await MigrationRunner(migrations: migrations, logger: logger).run(on: client)
                    }
                }
            }
            var all = [[String]]()
            for try await result in group { all.append(result) }
            return all
        }
        #expect(results.filter { !$0.isEmpty }.count == 1)
        #expect(results.flatMap { $0 } == migrations.map(\.name))
        try await database.withClient { client in
            let recorded = try await TestDatabase.count(client, "SELECT count(*) FROM schema_migrations")
            #expect(recorded == migrations.count)
        }
    }
}
