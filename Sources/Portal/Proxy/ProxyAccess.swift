/// Whether a request may reach an environment's server: the one access decision, taken the same
/// way on every proxy path. The router and the WebSocket splice take it with the session and route
/// they looked up (``EnvironmentProxy/authorize(path:token:originAllowed:)``); the fast path takes
/// it with what is in memory and forwards only what it allows, leaving any refusal to the router,
/// which decides again with fresh lookups and answers with the page, the document and the log line.
enum ProxyAccess {
    enum Decision {
        case allow(ProxyRoute, UpstreamAddress)
        case refuse(EnvironmentProxy.Refusal)
    }

    /// - Parameters:
    ///   - originAllowed: what ``OriginPolicy`` says of the request (`true` for one it leaves alone).
    ///   - session: the browser's session for this origin, if any.
    ///   - route: the live route of the request's path, if any.
    ///   - pathOwner: the user slug in the request's path (`/user/<slug>/…`).
    static func decide(originAllowed: Bool, session: SessionCache.Entry?, route: ProxyRoute?, pathOwner: Substring?) -> Decision {
        guard originAllowed else { return .refuse(.crossOrigin) }
        guard let session else { return .refuse(.noSession) }
        guard let route else {
            // Nothing live at the path: the owner is told it stopped, anyone else only that it is not theirs.
            return .refuse(pathOwner.map { String($0) == session.userSlug } == true ? .notRunning : .forbidden)
        }
        guard route.userID == session.userID else { return .refuse(.forbidden) }
        guard route.isServing, let address = route.upstream else { return .refuse(.starting) }
        return .allow(route, address)
    }

    /// The user slug of a request path (`u` for `/user/u/c/…`).
    static func pathOwner(_ path: Substring) -> Substring? {
        ProxyRoute.prefix(of: path)?.split(separator: "/").dropFirst().first
    }
}
