import ArgumentParser
import Environments
import Foundation
import Logging
import PostgresNIO

/// The `portal` command line.
@main
struct PortalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "portal",
        abstract: "Course environment portal: LTI launches from the VLE into ready Jupyter environments.",
        discussion: """
            Every subcommand reads the same YAML configuration file (--config, or $PORTAL_CONFIG, \
            default ./portal.yaml). Without database.url the portal runs its own PostgreSQL cluster \
            under data_dir.
            """,
        subcommands: [
            ServeCommand.self, MigrateCommand.self, ConsumerCommand.self, ProfileCommand.self, CourseCommand.self, HostCommand.self, ReportCommand.self, LaunchLinkCommand.self,
        ]
    )
}

/// The `--config` option shared by every subcommand.
struct ConfigOptions: ParsableArguments {
    @Option(name: .long, help: "The configuration file (default: $PORTAL_CONFIG or ./portal.yaml).")
    var config: String?

    /// Loads the configuration and sets up logging; prints the file, key and reason and exits on error.
    func load() throws -> (PortalConfiguration, Logger) {
        let path = config ?? ProcessInfo.processInfo.environment["PORTAL_CONFIG"] ?? "portal.yaml"
        let configuration: PortalConfiguration
        do {
            configuration = try PortalConfiguration.load(path: path)
        } catch {
            throw CLIError("configuration error: \(error)")
        }
        PortalLogging.bootstrap(format: configuration.logFormat, level: configuration.logLevel)
        var logger = Logger(label: "portal")
        logger.logLevel = configuration.logLevel
        return (configuration, logger)
    }
}

extension ConfigOptions {
    /// Loads the configuration, opens the database (starting the embedded cluster if needed, and
    /// stopping it afterwards if this command started it), brings its schema up to date, and runs
    /// `body`: what every database command of the CLI does.
    func withDatabase<T: Sendable>(_ body: @Sendable (Database, PortalConfiguration, Logger) async throws -> T) async throws -> T {
        let (configuration, logger) = try load()
        let resources = try ResourceDirectories(configuration: configuration)
        return try await Database.with(configuration, logger: logger) { database in
            try await database.migrate(directory: resources.migrations, logger: logger)
            return try await body(database, configuration, logger)
        }
    }
}

/// An error for the command line: its message is printed and the exit status is 1.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Runs `body`; database errors are turned into their full server message (postgres-nio's own
/// description is deliberately generic), everything else is printed by ArgumentParser as it is.
func reportingErrors<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as PSQLError {
        throw CLIError("database error: \(String(reflecting: error))")
    }
}
