import Environments
import HummingbirdCore
import Foundation
import Hummingbird
import LTI
import Logging
import NIOCore
import PostgresNIO
import ServiceLifecycle

/// Assembles the portal's HTTP application from its configuration and database.
enum PortalApplication {
    /// The pieces a running portal is made of, built once at start.
    struct Parts: Sendable {
        var validator: LaunchValidator
        var launches: LaunchStore
        var sessions: SessionStore
        var pages: Pages
        var resolver: LaunchURLResolver
        var environments: EnvironmentsRuntime?
        var proxy: EnvironmentProxy
        var handover: HomeController.Handover
        /// The security headers of portal pages, and the frame rule proxied responses share.
        var securityHeaders: SecurityHeaders
    }

    static func parts(
        _ configuration: PortalConfiguration, client: PostgresClient, box: SecretBox, templates: String, environments: EnvironmentsRuntime?
    ) async throws -> Parts {
        let consumers = ConsumerStore(configured: configuration.consumers, client: client, box: box)
        let window = configuration.timestampWindow.components.seconds
        let pages = try await Pages.load(from: templates)
        let resolver = LaunchURLResolver(publicURL: configuration.publicURL, trustedProxies: configuration.trustedProxies)
        let securityHeaders = SecurityHeaders(security: configuration.security, styleSources: pages.styleSources)
        // The proxy serves whatever environments the database knows, whether or not this portal runs
        // an engine itself (a replica that only proxies, or a test with a stand-in server).
        let routes = RouteTable()
        let proxy = EnvironmentProxy(
            routes: routes,
            listener: RouteListener(client: client, store: RouteStore(client: client, box: box), table: routes, logger: Logger(label: "portal.proxy")),
            sessions: SessionCache(client: client, ttl: configuration.proxy.sessionCacheLifetime), pool: UpstreamPool(), pages: pages,
            resolver: resolver, handovers: HandoverStore(client: client), environmentsURL: configuration.proxy.environmentsURL,
            sessionLifetime: configuration.sessionLifetime, securityHeaders: securityHeaders
        )
        return Parts(
            validator: LaunchValidator(consumers: consumers, nonces: PostgresNonceStore(client: client), timestampWindow: TimeInterval(window)),
            launches: LaunchStore(client: client, sessionLifetime: configuration.sessionLifetime, refusalLimits: configuration.refusalLimits),
            sessions: SessionStore(client: client),
            pages: pages,
            resolver: resolver,
            environments: environments,
            proxy: proxy,
            handover: HomeController.Handover(
                store: HandoverStore(client: client), marker: LaunchMarker(box: box), publicURL: configuration.publicURL, resolver: resolver,
                sessionLifetime: configuration.sessionLifetime, environmentsURL: configuration.proxy.environmentsURL
            ),
            securityHeaders: securityHeaders
        )
    }

    /// The router with every route and middleware.
    static func router(_ configuration: PortalConfiguration, parts: Parts, client: PostgresClient) -> Router<PortalRequestContext> {
        let router = Router(context: PortalRequestContext.self)
        router.add(middleware: SecurityHeadersMiddleware(headers: parts.securityHeaders))
        router.add(middleware: AccessLogMiddleware())
        router.add(middleware: ErrorPageMiddleware(pages: parts.pages))
        LaunchController(
            validator: parts.validator,
            store: parts.launches,
            resolver: parts.resolver,
            pages: parts.pages,
            publicURL: configuration.publicURL,
            sessionLifetime: configuration.sessionLifetime,
            environments: parts.environments,
            marker: parts.handover.marker
        ).register(with: router)
        HomeController(sessions: parts.sessions, pages: parts.pages, environments: parts.environments, handover: parts.handover).register(with: router)
        HealthController(client: client).register(with: router)
        return router
    }

    /// How every browser connection is limited (the `http` section) and what it answers itself.
    static func connectionSettings(_ configuration: PortalConfiguration, parts: Parts) -> BrowserConnectionHandler.Settings {
        let http = configuration.http
        return BrowserConnectionHandler.Settings(
            limits: RequestLimits(maxHeaderBytes: http.maxHeaderBytes, maxHeaderCount: http.maxHeaderCount, maxTargetBytes: http.maxTargetBytes),
            deadlines: ConnectionDeadlines.Settings(
                headerTimeout: TimeAmount(http.headerTimeout), bodyTimeout: TimeAmount(http.bodyTimeout), keepAliveTimeout: TimeAmount(http.keepAliveTimeout),
                drainTimeout: TimeAmount(http.drainTimeout)
            ),
            pages: parts.pages,
            securityHeaders: parts.securityHeaders
        )
    }

    /// The whole application: HTTP server, database pool, purging, environments and (when embedded)
    /// the database cluster's lifetime. The database is migrated (and the profiles directory applied)
    /// first, through a short-lived client.
    static func build(
        _ configuration: PortalConfiguration,
        database: Database,
        resources: ResourceDirectories,
        logger: Logger,
        onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
    ) async throws -> some ApplicationProtocol {
        let box = try SecretBox(source: configuration.secretKey)
        let environments = try await database.withTemporaryClient(logger: logger) { startup in
            let applied = try await Database.migrate(startup, directory: resources.migrations, logger: logger)
            if !applied.isEmpty { logger.info("database migrated", metadata: ["applied": "\(applied.joined(separator: ", "))"]) }
            if let directory = configuration.environments.profilesDirectory {
                _ = try await EnvironmentsRuntime.applyProfiles(from: directory, client: startup, logger: logger)
            }
            return try await EnvironmentsRuntime.make(
                configuration, resources: resources, client: database.client, startupClient: startup, box: box, logger: logger
            )
        }
        let parts = try await parts(configuration, client: database.client, box: box, templates: resources.templates, environments: environments)
        var services: [any Service] = []
        if let cluster = database.embedded {
            services.append(EmbeddedPostgresService(cluster: cluster))
        }
        services.append(database.client)
        services.append(PurgeService(client: database.client, interval: configuration.noncePurgeInterval, logger: logger))
        services.append(contentsOf: environments?.services ?? [])
        services.append(contentsOf: parts.proxy.services(configuration.proxy, environments: environments))
        return Application(
            responder: PortalResponder(proxy: parts.proxy, next: router(configuration, parts: parts, client: database.client).buildResponder()),
            server: HTTPServerBuilder { responder in
                PortalChannel(responder: responder, proxy: parts.proxy, connection: connectionSettings(configuration, parts: parts))
            },
            configuration: .init(address: .hostname(configuration.listenHost, port: configuration.listenPort), serverName: nil),
            services: services,
            onServerRunning: onServerRunning,
            logger: logger
        )
    }
}
