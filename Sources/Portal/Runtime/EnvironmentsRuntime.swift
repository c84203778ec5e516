import AsyncHTTPClient
import Environments
import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle

/// Everything that runs environments in a serving portal: the pool of hosts and their engines, the
/// lifecycle, the records and the profile catalog. Absent when `environments.engine` is `none`.
struct EnvironmentsRuntime: Sendable {
    let lifecycle: EnvironmentLifecycle
    let repository: EnvironmentRepository
    let hosts: HostRepository
    let engines: HostEngines
    let settings: PortalConfiguration.EnvironmentsConfiguration
    let catalog: ProfileCatalogCache
    let http: HTTPClient
    let installationID: String

    /// Builds the runtime. `client` must be running; the database must be migrated.
    static func make(
        _ configuration: PortalConfiguration, resources: ResourceDirectories, client: PostgresClient, startupClient: PostgresClient, box: SecretBox, logger: Logger
    ) async throws -> EnvironmentsRuntime? {
        let settings = configuration.environments
        guard settings.engine != .none else { return nil }
        let jupyter = try resources.jupyter()
        let installationID = try await Self.installationID(startupClient)
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: HostEngines.clientConfiguration)
        let hosts = HostRepository(client: client)
        let engines: HostEngines
        do {
            var processEngine: (any Engine)?
            if settings.engine == .process {
                processEngine = try ProcessEngine(root: configuration.dataDirectory + "/process-engine", venv: settings.venv, logger: logger)
            }
            engines = HostEngines(hosts: hosts, http: http, processEngine: processEngine)
            try await HostRepository(client: startupClient).syncConfigured(settings.poolHosts)
        } catch {
            try? await http.shutdown()
            throw error
        }
        var repository = EnvironmentRepository(client: client, box: box, installationID: installationID)
        repository.rules = AdmissionRules(configuration: configuration.admission, placement: Placement(strategy: settings.placement))
        repository.logger = logger
        let lifecycle = EnvironmentLifecycle(
            engines: engines, store: repository, http: http, installationID: installationID, logger: logger, jupyter: jupyter,
            startTimeout: settings.startTimeout, stopTimeout: settings.stopTimeout,
            materials: CourseMaterials(cacheDirectory: configuration.dataDirectory + "/materials")
        )
        let catalog = ProfileCatalogCache(profiles: ProfileRepository(client: client), configured: settings, logger: logger)
        return EnvironmentsRuntime(
            lifecycle: lifecycle, repository: repository, hosts: hosts, engines: engines, settings: settings, catalog: catalog, http: http,
            installationID: installationID
        )
    }

    static func installationID(_ client: PostgresClient) async throws -> String {
        for try await id in try await client.query("SELECT id FROM installation LIMIT 1").decode(String.self) { return id }
        throw EnvironmentRepositoryError(description: "the installation table is empty; run portal migrate")
    }

    /// Applies every profile in `directory` (at start, or from `portal profile apply`).
    static func applyProfiles(from path: String, client: PostgresClient, logger: Logger) async throws -> [(String, ProfileRepository.Applied)] {
        let profiles = try ProfileLoader.load(path: path)
        let repository = ProfileRepository(client: client)
        var result = [(String, ProfileRepository.Applied)]()
        for profile in profiles {
            let applied = try await repository.apply(profile, source: path)
            result.append((profile.slug, applied))
            if case .unchanged = applied { continue }
            logger.info("profile applied", metadata: ["profile": "\(profile.slug)", "result": "\(applied)"])
        }
        return result
    }

    /// The services to run beside the HTTP server: the lifecycle (reconciling first), the catalog
    /// refresh, and the HTTP client's shutdown.
    var services: [any Service] {
        [
            HTTPClientService(client: http, engines: engines), catalog, LifecycleService(lifecycle: lifecycle),
            HostMonitor(hosts: hosts, engines: engines, lifecycle: lifecycle, interval: settings.healthInterval, lostAfter: settings.lostAfter, logger: Logger(label: "portal.hosts")),
            SpendMonitor(
                alerts: SpendAlerts(client: repository.client), rules: repository.rules, lifecycle: lifecycle, interval: repository.rules.configuration.checkInterval,
                logger: Logger(label: "portal.spend")
            ),
        ]
    }
}

/// Reconciles, then runs the lifecycle's jobs until shutdown, when starts still in progress are
/// interrupted (the next reconcile resumes them) so that the portal stops promptly.
struct LifecycleService: Service {
    let lifecycle: EnvironmentLifecycle

    func run() async throws {
        do {
            try await lifecycle.reconcile()
        } catch {
            lifecycle.logError("reconciling environments failed; running environments may be unknown to this portal", error)
        }
        await cancelWhenGracefulShutdown {
            await lifecycle.run()
        }
    }
}

/// Shuts the shared HTTP client (and the hosts' TLS clients) down when the portal stops.
struct HTTPClientService: Service {
    let client: HTTPClient
    let engines: HostEngines

    func run() async throws {
        try? await gracefulShutdown()
        await engines.shutdown()
        try await client.shutdown()
    }
}

extension EnvironmentLifecycle {
    func logError(_ message: String, _ error: any Error) {
        Logger(label: "portal.environments").error("\(message)", metadata: ["error": "\(error)"])
    }
}
