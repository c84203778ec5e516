import ArgumentParser
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import UnixSignals

/// `portal serve`: runs the HTTP server (and, without database.url, the embedded PostgreSQL).
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the portal: migrate the database, then serve HTTP until SIGTERM or SIGINT."
    )

    @OptionGroup var options: ConfigOptions

    func run() async throws {
        try await reportingErrors {
            let (configuration, logger) = try options.load()
            let resources = try ResourceDirectories(configuration: configuration)
            let lock = try DataDirectoryLock(directory: configuration.dataDirectory, embedded: configuration.isEmbedded)
            defer { lock.release() }
            let database = try await Database.open(configuration, logger: logger)
            do {
                let app = try await PortalApplication.build(configuration, database: database, resources: resources, logger: logger) { _ in
                    logger.notice(
                        "portal serving",
                        metadata: ["listen": "\(configuration.listenHost):\(configuration.listenPort)", "public_url": "\(configuration.publicURL)"]
                    )
                }
                try await Self.run(app, configuration: configuration, logger: logger)
            } catch {
                if database.embedded != nil { database.embedded?.stop() }
                throw error
            }
        }
    }
}

extension ServeCommand {
    /// Runs the application until SIGTERM or SIGINT, then shuts down within a bound: connections
    /// get `http.drain_timeout` to finish what they are doing (then they are closed), and the
    /// services (the embedded PostgreSQL last) have ``PortalConfiguration/HTTPConfiguration/shutdownMargin``
    /// more before they are cancelled, which also stops them.
    static func run(_ app: some Service, configuration: PortalConfiguration, logger: Logger) async throws {
        var group = ServiceGroupConfiguration(services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        group.maximumGracefulShutdownDuration = configuration.http.drainTimeout + PortalConfiguration.HTTPConfiguration.shutdownMargin
        try await ServiceGroup(configuration: group).run()
    }
}

extension PortalConfiguration {
    var isEmbedded: Bool {
        if case .embedded = database { return true }
        return false
    }
}

/// An exclusive lock on the data directory, so that two `portal serve` processes never share one
/// embedded database cluster (replicas need an external database).
struct DataDirectoryLock {
    private let descriptor: Int32?

    init(directory: String, embedded: Bool) throws {
        guard embedded else {
            descriptor = nil
            return
        }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let fd = open(directory + "/portal.lock", O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw CLIError("cannot create \(directory)/portal.lock: \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw CLIError(
                "another portal is already serving from \(directory); replicas must share an external database (database.url), not a data directory"
            )
        }
        descriptor = fd
    }

    func release() {
        if let descriptor { close(descriptor) }
    }
}
