import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle

/// The portal's PostgreSQL: either the external server named by `database.url`, or the embedded
/// cluster under the data directory, which is started here when needed.
struct Database: Sendable {
    let client: PostgresClient
    /// The settings `client` was made with, for short-lived clients such as the start-up one.
    let clientConfiguration: PostgresClient.Configuration
    /// The embedded cluster, when there is no external database.
    let embedded: EmbeddedPostgres?
    /// Whether this process started the embedded cluster (and so should stop it).
    let startedEmbedded: Bool

    /// Connects per `configuration`, starting the embedded cluster first if there is no database URL.
    static func open(_ configuration: PortalConfiguration, logger: Logger) async throws -> Database {
        var clientConfiguration: PostgresClient.Configuration
        var embedded: EmbeddedPostgres?
        var started = false
        switch configuration.database {
        case .external(let url):
            clientConfiguration = try DatabaseURL.configuration(url)
        case .embedded:
            let cluster = try EmbeddedPostgres(dataDirectory: configuration.dataDirectory, binDirectory: configuration.embeddedPostgresBinDirectory, logger: logger)
            started = try cluster.start()
            do {
                try await cluster.ensureDatabase()
            } catch {
                if started { cluster.stop() }
                throw error
            }
            clientConfiguration = cluster.clientConfiguration
            embedded = cluster
        }
        clientConfiguration.options.maximumConnections = configuration.databasePoolSize
        let client = PostgresClient(configuration: clientConfiguration, backgroundLogger: logger)
        return Database(client: client, clientConfiguration: clientConfiguration, embedded: embedded, startedEmbedded: started)
    }

    /// Runs `body` with the connection pool running, then shuts the pool down and stops the embedded
    /// cluster if this call started it. For CLI commands.
    static func with<T: Sendable>(_ configuration: PortalConfiguration, logger: Logger, _ body: @Sendable (Database) async throws -> T) async throws -> T {
        let database = try await open(configuration, logger: logger)
        defer { if database.startedEmbedded { database.embedded?.stop() } }
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await database.client.run() }
            defer { group.cancelAll() }
            return try await body(database)
        }
    }

    /// Runs `body` with a short-lived client of its own (for start-up work before the service group
    /// runs the main pool).
    func withTemporaryClient<T: Sendable>(logger: Logger, _ body: @Sendable (PostgresClient) async throws -> T) async throws -> T {
        let temporary = PostgresClient(configuration: clientConfiguration, backgroundLogger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await temporary.run() }
            defer { group.cancelAll() }
            return try await body(temporary)
        }
    }

    /// Applies the migrations in `directory`.
    @discardableResult
    func migrate(directory: String, logger: Logger) async throws -> [String] {
        try await Self.migrate(client, directory: directory, logger: logger)
    }

    /// Applies the migrations in `directory` through `client`.
    @discardableResult
    static func migrate(_ client: PostgresClient, directory: String, logger: Logger) async throws -> [String] {
        try await MigrationRunner(migrations: Migration.load(from: directory), logger: logger).run(on: client)
    }
}

/// Keeps the embedded cluster for as long as the service group runs and stops it at shutdown.
/// Register it before the database client so that it stops after the client has closed.
struct EmbeddedPostgresService: Service {
    let cluster: EmbeddedPostgres

    func run() async throws {
        try? await gracefulShutdown()
        cluster.stop()
    }
}
