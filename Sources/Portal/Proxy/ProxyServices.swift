import Logging
import ServiceLifecycle

extension EnvironmentProxy {
    /// What runs beside the proxy: route updates, activity records, closing upstream connections at
    /// shutdown, and — when this portal runs environments — the idle culler.
    func services(_ configuration: PortalConfiguration.ProxyConfiguration, environments: EnvironmentsRuntime?) -> [any Service] {
        var services: [any Service] = [
            listener, UpstreamPoolService(pool: pool),
            ActivityService(routes: routes, store: listener.store, interval: configuration.activityInterval, logger: listener.logger),
        ]
        if let environments {
            services.append(
                IdleCuller(store: listener.store, lifecycle: environments.lifecycle, http: environments.http, interval: configuration.cullInterval, logger: listener.logger)
            )
        }
        return services
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
