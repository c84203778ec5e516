import Logging
import ServiceLifecycle

extension EnvironmentProxy {
    /// What runs beside the proxy: route updates, activity records, the idle culler, and closing
    /// upstream connections at shutdown.
    func services(_ configuration: PortalConfiguration.ProxyConfiguration, environments: EnvironmentsRuntime) -> [any Service] {
        [
            listener, UpstreamPoolService(pool: pool),
            ActivityService(routes: routes, store: listener.store, interval: configuration.activityInterval, logger: listener.logger),
            IdleCuller(store: listener.store, lifecycle: environments.lifecycle, http: environments.http, interval: configuration.cullInterval, logger: listener.logger),
        ]
    }
}

/// Closes idle upstream connections when the portal stops.
struct UpstreamPoolService: Service {
    let pool: UpstreamPool

    func run() async throws {
        try? await gracefulShutdown()
        pool.closeAll()
    }
}
