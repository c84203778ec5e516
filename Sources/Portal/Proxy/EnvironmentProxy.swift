import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1

/// Forwards `/user/<user slug>/<course slug>/…` to that environment's server, after checking on
/// every request (WebSocket upgrades included, see ``WebSocketSplice``) that the browser's session
/// belongs to the environment's owner. Routes and sessions come from memory; the database is asked
/// only when a path has no serving route yet.
struct EnvironmentProxy: Sendable {
    /// Why a request is not forwarded.
    enum Refusal: Error {
        /// No valid session for this origin.
        case noSession
        /// A session, but not the owner's.
        case forbidden
        /// The owner's path, but nothing is running there.
        case notRunning
        /// The environment is starting (or stopping).
        case starting
        /// The server did not answer.
        case upstreamDown
        /// A change (or a WebSocket) asked for by a page of another origin (``OriginPolicy``).
        case crossOrigin

        /// The status a browser, a script or a WebSocket client gets.
        var status: HTTPResponse.Status {
            switch self {
            case .noSession, .forbidden, .crossOrigin: .forbidden
            case .notRunning: .notFound
            case .starting: .serviceUnavailable
            case .upstreamDown: .badGateway
            }
        }

        /// What a script is told.
        var detail: String {
            switch self {
            case .noSession: "No portal session: open the activity from your course page."
            case .forbidden: "This environment is not yours."
            case .notRunning: "Your environment is not running; launch it again from your course."
            case .starting: "Your environment is starting."
            case .upstreamDown: "Your environment is not answering."
            case .crossOrigin:
                "This request came from a page of another site, so the portal did not pass it to your environment. Work in your environment's own tab."
            }
        }

        /// The page a browser gets; `nil` while starting (the browser goes to the progress page).
        var page: PageModel.Unavailable? {
            switch self {
            case .noSession:
                PageModel.Unavailable(
                    heading: "Please start from your course",
                    message: "Open this activity from your course page in the VLE; you will be signed in and taken to your environment."
                )
            case .forbidden:
                PageModel.Unavailable(
                    heading: "This is not your environment", message: "Open the activity from your own course page in the VLE to reach your environment."
                )
            case .notRunning:
                PageModel.Unavailable(
                    heading: "Your environment has stopped",
                    message: "Environments stop after a while without use. Open the activity from your course page again to start it; your files are kept."
                )
            case .starting:
                nil
            case .crossOrigin:
                PageModel.Unavailable(
                    heading: "Blocked a request from another site",
                    message: "A page of another site tried to act in your environment, so the portal stopped it. Nothing was changed. Open the activity from your course page to carry on."
                )
            case .upstreamDown:
                PageModel.Unavailable(
                    heading: "Your environment is not answering",
                    message: "It may be busy or restarting. Wait a moment and reload this page; if it keeps happening, stop it from the progress page and launch it again.",
                    progress: true
                )
            }
        }
    }

    let routes: RouteTable
    let listener: RouteListener
    let sessions: SessionCache
    let pool: UpstreamPool
    let pages: Pages
    let resolver: LaunchURLResolver
    let handovers: HandoverStore
    /// The separate origin that serves environments, if any (`proxy.environments_url`).
    let environmentsURL: PublicURL?
    let sessionLifetime: Duration
    /// The portal pages' security headers (for the proxy's own pages and documents) and the frame
    /// rule proxied responses share.
    let securityHeaders: SecurityHeaders
    /// What the portal changes in every response from an environment's server.
    var responsePolicy: ProxyResponsePolicy { ProxyResponsePolicy(securityHeaders: securityHeaders) }

    /// Which sessions count for environments, and the cookie carrying them: the portal's own on a
    /// single origin, the environment origin's otherwise.
    var scope: SessionCache.Scope { environmentsURL == nil ? .portal : .environments }
    var cookieName: String { environmentsURL == nil ? SessionCookie.name : SessionCookie.environmentName }
    /// The portal's cookies, removed from every forwarded request.
    static let portalCookies: Set<String> = [SessionCookie.name, SessionCookie.environmentName]

    /// The route and address to forward to, or why not (``ProxyAccess``), looking the session and
    /// the route up in the database when memory does not have them.
    func authorize(path: Substring, token: String?, originAllowed: Bool) async throws -> (ProxyRoute, UpstreamAddress) {
        guard originAllowed else { throw Refusal.crossOrigin }
        var session: SessionCache.Entry?
        if let token { session = try await sessions.session(token: token, scope: scope) }
        var route = session == nil ? nil : routes.route(forPath: path)
        if session != nil, route?.isServing != true, let prefix = ProxyRoute.prefix(of: path) {
            // Not known here yet (another replica started it a moment ago) or not ready when last heard of.
            let basePath = prefix.hasSuffix("/") ? String(prefix) : prefix + "/"
            if route != nil || !routes.recentlyMissing(basePath) {
                route = try await listener.store.live(basePath: basePath)
                if let route {
                    routes.update(environmentID: route.environmentID, basePath: basePath, route: route)
                } else {
                    routes.noteMissing(basePath)
                }
            }
        }
        switch ProxyAccess.decide(originAllowed: true, session: session, route: route, pathOwner: ProxyAccess.pathOwner(path)) {
        case .allow(let route, let address): return (route, address)
        case .refuse(let refusal): throw refusal
        }
    }

    /// Forwards an HTTP request (not an upgrade: those never reach the router when allowed).
    func forward(_ request: Request, context: PortalRequestContext) async -> Response {
        let target = request.head.path ?? "/"
        do {
            let originAllowed = originAllows(
                method: request.method.rawValue, upgrade: request.headers[.upgrade] != nil,
                claims: OriginPolicy.Claims(origin: request.headers[.origin], fetchSite: request.headers[.secFetchSite]),
                forwardedProto: request.headers[.xForwardedProto], forwardedHost: request.headers[.xForwardedHost], forwardedPort: request.headers[.xForwardedPort],
                peer: context.remoteAddress, path: target, logger: context.logger
            )
            let token = CookieHeader.value(named: cookieName, in: request.headers[values: .cookie])
            let (route, address) = try await authorize(path: Substring(target), token: token, originAllowed: originAllowed)
            if request.headers[.upgrade] != nil {
                // An upgrade that reached the router was refused by the upstream or came late on a
                // kept-alive connection; browsers open WebSockets on fresh connections.
                throw Refusal.upstreamDown
            }
            route.touch()
            let head = ProxyHeaders.request(
                method: request.method.rawValue, target: target, authority: request.head.authority, fields: request.headers,
                client: client(request, context), authorization: route.authorization, dropCookies: Self.portalCookies
            )
            let hasBody = request.headers[.contentLength].map { $0 != "0" } ?? (request.headers[.transferEncoding] != nil)
            let upstream = try await send(head, body: hasBody ? request.body : nil, to: address, on: context.eventLoop)
            let response = ProxyHeaders.response(upstream.head, policy: responsePolicy)
            switch upstream.body {
            case .complete(let buffer):
                return Response(status: response.status, headers: response.headerFields, body: ResponseBody(byteBuffer: buffer))
            case .stream(let body):
                return Response(status: response.status, headers: response.headerFields, body: ResponseBody(asyncSequence: body))
            }
        } catch let refusal as Refusal {
            return self.response(for: refusal, request: request)
        } catch let error as UpstreamError {
            context.logger.warning("environment server unreachable", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
            return self.response(for: .upstreamDown, request: request)
        } catch let error as ChannelError {
            context.logger.warning("environment server unreachable", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
            return self.response(for: .upstreamDown, request: request)
        } catch {
            context.logger.error("proxying failed", metadata: ["path": "\(request.uri.path)", "error": "\(String(reflecting: error))"])
            return problem(.serviceUnavailable, "The portal could not check your access just now. Nothing was lost; try again in a moment.")
        }
    }

    /// Sends on a pooled connection; a request without a body is retried on a fresh connection
    /// when a reused one turns out to have been closed by the server meanwhile.
    private func send(_ head: HTTPRequestHead, body: RequestBody?, to address: UpstreamAddress, on eventLoop: any EventLoop) async throws -> UpstreamResponse {
        var attempt = 0
        while true {
            attempt += 1
            let (connection, reused) = try await pool.acquire(address, on: eventLoop)
            do {
                return try await connection.exchange(head, body: body)
            } catch UpstreamError.closedBeforeResponse where reused && body == nil && attempt < 3 {
                continue
            }
        }
    }

    func client(_ request: Request, _ context: PortalRequestContext) -> ProxyHeaders.Client {
        ProxyHeaders.Client(
            address: context.remoteAddress, trusted: resolver.isTrusted(context.remoteAddress),
            scheme: scheme(forwardedProto: request.headers[.xForwardedProto], peer: context.remoteAddress)
        )
    }

    /// `https` or `http`, as the browser used it (a trusted proxy's `X-Forwarded-Proto`, else the public URL's).
    func scheme(forwardedProto: String?, peer: String?) -> String {
        resolver.isHTTPS(forwardedProto: forwardedProto, peer: peer) ? "https" : "http"
    }

    /// What the browser (an HTML page) or a script (a JSON problem document) gets instead.
    func response(for refusal: Refusal, request: Request) -> Response {
        guard Self.wantsPage(method: request.method.rawValue, accept: request.headers[.accept]) else {
            var response = problem(refusal.status, refusal.detail)
            if refusal == .starting { response.headers[.retryAfter] = "2" }
            return response
        }
        // A browser waits for a starting environment on the progress page.
        guard let page = refusal.page else { return redirect(to: "/home") }
        return portalPage(pages.response("environment_unavailable", page, status: refusal.status))
    }

    /// An RFC 9457 problem document.
    func problem(_ status: HTTPResponse.Status, _ detail: String) -> Response {
        let body = ProblemDocument.json(status: status.code, title: status.reasonPhrase, detail: detail)
        return portalPage(Response(
            status: status, headers: [.contentType: "application/problem+json", .cacheControl: "no-store"], body: .init(byteBuffer: ByteBuffer(string: body))
        ))
    }

    /// A `303 See Other` of the portal's own.
    func redirect(to location: String) -> Response {
        portalPage(Response(status: .seeOther, headers: [.location: location, .cacheControl: "no-store"]))
    }

    /// A response of the portal's own (not the environment's): it carries the portal pages'
    /// security headers, as the router's responses do (``SecurityHeadersMiddleware``).
    func portalPage(_ response: Response) -> Response {
        var response = response
        securityHeaders.applyToPage(&response.headers)
        return response
    }

    /// Whether the request is a browser navigating (a page is the right answer) rather than a script.
    static func wantsPage(method: String, accept: String?) -> Bool {
        (method == "GET" || method == "HEAD") && (accept?.contains("text/html") ?? false)
    }
}

/// The portal's responder: environment paths go to the proxy without any middleware (they are the
/// hot path), everything else to the router. With a separate environment origin, that origin serves
/// environments and the hand-over into them, and nothing else; the portal's origin serves no
/// environment content.
struct PortalResponder<Next: HTTPResponder>: HTTPResponder where Next.Context == PortalRequestContext {
    let proxy: EnvironmentProxy
    let next: Next

    func respond(to request: Request, context: PortalRequestContext) async throws -> Response {
        guard let path = request.head.path else { return try await next.respond(to: request, context: context) }
        if proxy.isEnvironmentOrigin(request, context) {
            if path.hasPrefix("/user/") { return await forward(request, context: context) }
            if path.hasPrefix(EnvironmentProxy.enterPath) { return await proxy.enter(request, context: context) }
            return proxy.problem(.notFound, "This address serves course environments only; the portal's pages are on its own address.")
        }
        if path.hasPrefix("/user/") {
            guard proxy.environmentsURL != nil else { return await forward(request, context: context) }
            // Environments live on their own origin: go there through the portal's hand-over.
            guard Self.wantsPage(request) else { return proxy.problem(.notFound, "Environments are served from their own address.") }
            return proxy.redirect(to: "/home?enter=1")
        }
        return try await next.respond(to: request, context: context)
    }

    /// A request to an environment through the router, with its request id and access-log line.
    func forward(_ request: Request, context: PortalRequestContext) async -> Response {
        let start = ContinuousClock.now
        var response = await proxy.forward(request, context: context)
        response.headers[.xRequestID] = context.requestID
        AccessLog.proxied(
            context.logger, path: .router, method: request.method.rawValue, target: Substring(request.uri.path), status: response.status.code,
            milliseconds: AccessLog.milliseconds(ContinuousClock.now - start), peer: context.remoteAddress, requestID: context.requestID
        )
        return response
    }

    static func wantsPage(_ request: Request) -> Bool {
        EnvironmentProxy.wantsPage(method: request.method.rawValue, accept: request.headers[.accept])
    }
}
