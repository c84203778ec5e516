import ArgumentParser
import Foundation

/// `portal migrate`: applies the SQL migrations and exits.
struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Apply the database migrations (Migrations/NNNN_name.sql) that have not been applied yet.",
        discussion: """
            Each file runs in its own transaction and is recorded with its SHA-256 in schema_migrations, \
            under an advisory lock so that concurrent portals take turns. A file changed after it was \
            applied stops the command with a message. `portal serve` migrates on start as well.
            """
    )

    @OptionGroup var options: ConfigOptions

    func run() async throws {
        try await reportingErrors {
            let (configuration, logger) = try options.load()
            let resources = try ResourceDirectories(configuration: configuration)
            // Not withDatabase: this command reports what the migration itself applied.
            let applied = try await Database.with(configuration, logger: logger) { database in
                try await database.migrate(directory: resources.migrations, logger: logger)
            }
            print(applied.isEmpty ? "The database is up to date." : "Applied: \(applied.joined(separator: ", "))")
        }
    }
}
