import Environments
import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// The profile catalog in memory, refreshed from PostgreSQL every few seconds (so every replica
/// sees `portal profile apply` and `portal course map` within that time) and at once when a launch
/// names a profile it does not know yet.
final class ProfileCatalogCache: Service, Sendable {
    let profiles: ProfileRepository
    let configured: PortalConfiguration.EnvironmentsConfiguration
    let interval: Duration
    let logger: Logger
    private let catalog = Mutex(ProfileCatalog())

    init(profiles: ProfileRepository, configured: PortalConfiguration.EnvironmentsConfiguration, interval: Duration = .seconds(5), logger: Logger) {
        self.profiles = profiles
        self.configured = configured
        self.interval = interval
        self.logger = logger
    }

    /// Reloads profiles and mappings. Mappings from the configuration file come first; database
    /// mappings (`portal course map`) override them.
    func refresh() async throws {
        let current = try await profiles.current()
        var mappings = [ProfileCatalog.CourseKey: String]()
        for mapping in configured.courseMappings {
            mappings[.init(consumerKey: mapping.consumerKey, contextID: mapping.contextID)] = mapping.profile
        }
        for mapping in try await profiles.mappings() {
            mappings[.init(consumerKey: mapping.consumerKey, contextID: mapping.contextID)] = mapping.profileSlug
        }
        let fresh = ProfileCatalog(profiles: current.map { ($0.profile, $0.version) }, mappings: mappings, defaultProfile: configured.defaultProfile)
        catalog.withLock { $0 = fresh }
    }

    /// Picks the profile for a launch; refreshes once before answering "unknown" or "none".
    func resolve(requested: String?, consumerKey: String, contextID: String, contextLabel: String?) async throws -> ProfileCatalog.Resolution {
        let first = catalog.withLock { $0.resolve(requested: requested, consumerKey: consumerKey, contextID: contextID, contextLabel: contextLabel) }
        if case .profile = first { return first }
        try await refresh()
        return catalog.withLock { $0.resolve(requested: requested, consumerKey: consumerKey, contextID: contextID, contextLabel: contextLabel) }
    }

    func run() async throws {
        while !Task.isCancelledOrShuttingDown {
            do {
                try await refresh()
            } catch {
                logger.warning("refreshing profiles failed", metadata: ["error": "\(String(reflecting: error))"])
            }
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: self.interval) }
            } catch {
                return
            }
        }
    }
}
