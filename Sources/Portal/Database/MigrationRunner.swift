import Crypto
import Foundation
import Logging
import PostgresNIO

/// A numbered SQL migration file, `NNNN_name.sql`.
struct Migration: Sendable {
    var version: Int
    var name: String
    var sql: String
    /// SHA-256 of the file's bytes, hex.
    var checksum: String

    /// Loads every `NNNN_name.sql` in `directory`, in version order.
    static func load(from directory: String) throws -> [Migration] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw MigrationError.missingDirectory(directory)
        }
        var migrations = [Migration]()
        for file in names where file.hasSuffix(".sql") {
            let stem = file.dropLast(4)
            guard let underscore = stem.firstIndex(of: "_"), let version = Int(stem[..<underscore]) else {
                throw MigrationError.badFileName(file)
            }
            let data = try Data(contentsOf: URL(fileURLWithPath: directory + "/" + file))
            guard let sql = String(data: data, encoding: .utf8) else { throw MigrationError.badFileName(file) }
            if let clash = migrations.first(where: { $0.version == version }) {
                throw MigrationError.duplicateVersion(version, clash.name, String(stem))
            }
            let checksum = SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
            migrations.append(Migration(version: version, name: String(stem), sql: sql, checksum: checksum))
        }
        return migrations.sorted { $0.version < $1.version }
    }
}

/// What stops migrations, each with a message an operator can act on.
enum MigrationError: Error, CustomStringConvertible {
    case missingDirectory(String)
    case badFileName(String)
    case duplicateVersion(Int, String, String)
    case changedAfterApply(name: String, applied: String, now: String)
    case unknownApplied(version: Int, name: String)
    case failed(name: String, statement: String, error: String)

    var description: String {
        switch self {
        case .missingDirectory(let path):
            "The migrations directory \(path) cannot be read; set migrations_dir in the configuration."
        case .badFileName(let file):
            "The migration file \(file) is not named NNNN_name.sql (UTF-8)."
        case .duplicateVersion(let version, let first, let second):
            "Two migration files share version \(version): \(first) and \(second)."
        case .changedAfterApply(let name, let applied, let now):
            "The migration \(name) was changed after it was applied (checksum \(applied.prefix(12)) in the database, \(now.prefix(12)) on disk). Restore the original file and add a new migration for the change."
        case .unknownApplied(let version, let name):
            "The database has migration \(version) (\(name)) applied, which this portal does not have; it was migrated by a newer portal. Run the newer version."
        case .failed(let name, let statement, let error):
            "The migration \(name) failed and was rolled back: \(error)\nIn statement: \(statement.prefix(300))"
        }
    }
}

/// Applies migrations in order, each in its own transaction together with its record in
/// `schema_migrations`, under a session advisory lock so that portals starting at once take turns.
struct MigrationRunner: Sendable {
    /// The advisory lock key ("portal" in ASCII).
    static let lockKey: Int64 = 0x706F_7274_616C

    var migrations: [Migration]
    var logger: Logger

    /// Applies what is missing.
    /// - Returns: the names of the migrations applied now.
    @discardableResult
    func run(on client: PostgresClient) async throws -> [String] {
        try await client.withConnection { connection in
            try await connection.query("SELECT pg_advisory_lock(\(Self.lockKey))", logger: logger)
            do {
                let applied = try await apply(on: connection)
                try await connection.query("SELECT pg_advisory_unlock(\(Self.lockKey))", logger: logger)
                return applied
            } catch {
                _ = try? await connection.query("SELECT pg_advisory_unlock(\(Self.lockKey))", logger: logger)
                throw error
            }
        }
    }

    private func apply(on connection: PostgresConnection) async throws -> [String] {
        try await connection.query(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version integer PRIMARY KEY,
                name text NOT NULL,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """,
            logger: logger
        )
        var applied = [Int: (name: String, checksum: String)]()
        for try await (version, name, checksum) in try await connection.query(
            "SELECT version, name, checksum FROM schema_migrations", logger: logger
        ).decode((Int, String, String).self) {
            applied[version] = (name, checksum)
        }
        let known = Dictionary(uniqueKeysWithValues: migrations.map { ($0.version, $0) })
        for (version, record) in applied.sorted(by: { $0.key < $1.key }) {
            guard let migration = known[version] else { throw MigrationError.unknownApplied(version: version, name: record.name) }
            guard migration.checksum == record.checksum else {
                throw MigrationError.changedAfterApply(name: migration.name, applied: record.checksum, now: migration.checksum)
            }
        }
        var done = [String]()
        for migration in migrations where applied[migration.version] == nil {
            try await connection.query("BEGIN", logger: logger)
            var current = ""
            do {
                for statement in SQLScript.statements(in: migration.sql) {
                    current = statement
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                current = "INSERT INTO schema_migrations"
                try await connection.query(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES (\(migration.version), \(migration.name), \(migration.checksum))",
                    logger: logger
                )
                try await connection.query("COMMIT", logger: logger)
            } catch {
                _ = try? await connection.query("ROLLBACK", logger: logger)
                throw MigrationError.failed(name: migration.name, statement: current, error: String(reflecting: error))
            }
            logger.info("applied migration", metadata: ["migration": "\(migration.name)"])
            done.append(migration.name)
        }
        return done
    }
}
