import ServiceLifecycle

extension EnvironmentProxy {
    /// What runs beside the proxy: route updates, and closing upstream connections at shutdown.
    var services: [any Service] {
        [listener, UpstreamPoolService(pool: pool)]
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
