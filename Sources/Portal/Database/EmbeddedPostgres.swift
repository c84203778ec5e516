import Crypto
import Environments
import Foundation
import Logging
import PostgresNIO

/// What went wrong with the embedded PostgreSQL cluster, with what to do about it.
struct EmbeddedPostgresError: Error, CustomStringConvertible {
    var description: String
}

/// The portal's private PostgreSQL cluster under `<data_dir>/postgres`: created with initdb on
/// first use, started with pg_ctl listening on a unix socket only, reused when already running, and
/// stopped by whoever started it. PostgreSQL refuses to run as root, so a root portal runs the
/// cluster as the unprivileged system user ``systemUser``.
struct EmbeddedPostgres: Sendable {
    static let systemUser = "portal-postgres"
    static let superuser = "portal"
    static let databaseName = "portal"

    let clusterDirectory: String
    let socketDirectory: String
    let logFile: String
    let binDirectory: String
    /// The user the cluster runs as (when the portal runs as root), else `nil`.
    let osUser: String?
    let logger: Logger

    init(dataDirectory: String, binDirectory configured: String?, logger: Logger) throws {
        clusterDirectory = dataDirectory + "/postgres"
        logFile = dataDirectory + "/postgres.log"
        let preferred = dataDirectory + "/run"
        // A unix socket path must fit in sun_path (108 bytes) with ".s.PGSQL.5432".
        if preferred.utf8.count + 15 < 100 {
            socketDirectory = preferred
        } else {
            let digest = SHA256.hash(data: Data(dataDirectory.utf8)).prefix(6).map { String(format: "%02x", $0) }.joined()
            socketDirectory = "/tmp/portal-pg-\(digest)"
        }
        guard let bin = configured ?? Self.findBinDirectory() else {
            throw EmbeddedPostgresError(
                description: "No PostgreSQL server programs (initdb, pg_ctl) were found. Install them (apt-get install postgresql) or set embedded_postgres.bin_dir, or give database.url."
            )
        }
        binDirectory = bin
        osUser = geteuid() == 0 ? Self.systemUser : nil
        self.logger = logger
    }

    /// The connection settings for the cluster's `portal` database.
    var clientConfiguration: PostgresClient.Configuration {
        PostgresClient.Configuration(unixSocketPath: socketDirectory + "/.s.PGSQL.5432", username: Self.superuser, password: nil, database: Self.databaseName)
    }

    /// Creates the cluster if needed and starts it if it is not running.
    /// - Returns: whether this call started it.
    func start() throws -> Bool {
        try prepareDirectories()
        if !FileManager.default.fileExists(atPath: clusterDirectory + "/PG_VERSION") {
            logger.info("initialising embedded PostgreSQL", metadata: ["dir": "\(clusterDirectory)"])
            let result = try Subprocess.run(
                [binDirectory + "/initdb", "-D", clusterDirectory, "-U", Self.superuser, "-A", "trust", "-E", "UTF8", "--no-locale"],
                asUser: osUser
            )
            guard result.status == 0 else {
                throw EmbeddedPostgresError(description: "initdb failed for \(clusterDirectory):\n\(result.output)")
            }
        }
        if try isRunning() {
            logger.info("embedded PostgreSQL already running", metadata: ["dir": "\(clusterDirectory)"])
            return false
        }
        let options = "-c listen_addresses='' -c unix_socket_directories='\(socketDirectory)' -c unix_socket_permissions=0700"
        let result = try Subprocess.run(
            [binDirectory + "/pg_ctl", "-D", clusterDirectory, "-l", logFile, "-w", "-t", "60", "-o", options, "start"],
            asUser: osUser
        )
        guard result.status == 0 else {
            let log = (try? String(contentsOfFile: logFile, encoding: .utf8)).map { String($0.suffix(2000)) } ?? ""
            throw EmbeddedPostgresError(description: "The embedded PostgreSQL did not start (pg_ctl exit \(result.status)):\n\(result.output)\n\(log)")
        }
        logger.info("embedded PostgreSQL started", metadata: ["socket": "\(socketDirectory)"])
        return true
    }

    /// Whether the cluster's postmaster is running.
    func isRunning() throws -> Bool {
        try Subprocess.run([binDirectory + "/pg_ctl", "-D", clusterDirectory, "status"], asUser: osUser).status == 0
    }

    /// Stops the cluster (fast shutdown: open sessions are ended, data is flushed).
    func stop() {
        do {
            let result = try Subprocess.run([binDirectory + "/pg_ctl", "-D", clusterDirectory, "-m", "fast", "-w", "-t", "60", "stop"], asUser: osUser)
            if result.status == 0 {
                logger.info("embedded PostgreSQL stopped")
            } else {
                logger.error("stopping the embedded PostgreSQL failed", metadata: ["output": "\(result.output)"])
            }
        } catch {
            logger.error("stopping the embedded PostgreSQL failed", metadata: ["error": "\(error)"])
        }
    }

    /// Creates the `portal` database if it does not exist yet.
    func ensureDatabase() async throws {
        var configuration = clientConfiguration
        configuration.database = "postgres"
        let client = PostgresClient(configuration: configuration)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            let rows = try await client.query("SELECT 1 FROM pg_database WHERE datname = \(Self.databaseName)")
            var exists = false
            for try await _ in rows { exists = true }
            if !exists {
                try await client.query("CREATE DATABASE portal")
            }
        }
    }

    private func prepareDirectories() throws {
        let manager = FileManager.default
        for directory in [clusterDirectory, socketDirectory] {
            try manager.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        guard let user = osUser else { return }
        try ensureSystemUser(user)
        for path in [clusterDirectory, socketDirectory] {
            let result = try Subprocess.run(["/bin/chown", "-R", "\(user):\(user)", path])
            guard result.status == 0 else { throw EmbeddedPostgresError(description: "cannot hand \(path) to \(user): \(result.output)") }
        }
        if !manager.fileExists(atPath: logFile) { _ = manager.createFile(atPath: logFile, contents: nil) }
        _ = try Subprocess.run(["/bin/chown", "\(user):\(user)", logFile])
        let reachable = try Subprocess.run(["/usr/bin/test", "-w", clusterDirectory], asUser: user)
        guard reachable.status == 0 else {
            throw EmbeddedPostgresError(
                description: "The unprivileged user \(user) cannot reach \(clusterDirectory): a parent directory is private (for example under /root). Choose a data_dir under /var/lib or /srv."
            )
        }
    }

    private func ensureSystemUser(_ user: String) throws {
        if try Subprocess.run(["/usr/bin/id", "-u", user]).status == 0 { return }
        let result = try Subprocess.run([
            "/usr/sbin/useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", user,
        ])
        guard result.status == 0 else {
            throw EmbeddedPostgresError(description: "cannot create the system user \(user) for the embedded PostgreSQL: \(result.output)")
        }
    }

    static func findBinDirectory() -> String? {
        let base = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: base)) ?? []).compactMap(Int.init).sorted(by: >)
        for version in versions where FileManager.default.isExecutableFile(atPath: "\(base)/\(version)/bin/initdb") {
            return "\(base)/\(version)/bin"
        }
        if let initdb = Subprocess.which("initdb") {
            return URL(fileURLWithPath: initdb).resolvingSymlinksInPath().deletingLastPathComponent().path
        }
        return nil
    }
}
