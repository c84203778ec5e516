import HTTPTypes
import Hummingbird
import Logging

extension EnvironmentProxy {
    /// Where the environment origin takes a hand-over code.
    static let enterPath = "/_portal/enter"

    /// Whether a request came to the separate environment origin (by its `Host`, or a trusted
    /// proxy's `X-Forwarded-Host`).
    func isEnvironmentOrigin(_ request: Request, _ context: PortalRequestContext) -> Bool {
        isEnvironmentOrigin(authority: request.head.authority, forwardedHost: request.headers[.xForwardedHost], peer: context.remoteAddress)
    }

    func isEnvironmentOrigin(authority: String?, forwardedHost: String?, peer: String?) -> Bool {
        guard let environmentsURL else { return false }
        var authority = authority
        if resolver.isTrusted(peer), let forwardedHost {
            authority = forwardedHost.split(separator: ",").first.map { $0.trimmingWhitespaceSubstring() }
        }
        guard let authority = authority?.lowercased() else { return false }
        let host = environmentsURL.host
        if let port = environmentsURL.port { return authority == "\(host):\(port)" }
        let defaultPort = environmentsURL.isHTTPS ? 443 : 80
        return authority == host || authority == "\(host):\(defaultPort)"
    }

    /// The origin environments are served from, as the browser used it: the separate environment
    /// origin when there is one, else the portal's (its public URL, or what a trusted proxy says).
    func expectedOrigin(forwardedProto: String?, forwardedHost: String?, forwardedPort: String? = nil, peer: String?) -> String {
        if let environmentsURL { return OriginPolicy.serialize(scheme: environmentsURL.scheme, host: environmentsURL.host, port: environmentsURL.port) }
        return resolver.origin(forwardedProto: forwardedProto, forwardedHost: forwardedHost, forwardedPort: forwardedPort, peer: peer)
    }

    /// Whether ``OriginPolicy`` lets a request through (one that cannot change anything always;
    /// one that can, or an upgrade, only from the environment's own origin); a refusal is logged.
    func originAllows(
        method: String, upgrade: Bool, claims: OriginPolicy.Claims, forwardedProto: String?, forwardedHost: String?, forwardedPort: String?, peer: String?,
        path: String, logger: Logger?
    ) -> Bool {
        guard upgrade || !OriginPolicy.isSafe(method: method) else { return true }
        let expected = expectedOrigin(forwardedProto: forwardedProto, forwardedHost: forwardedHost, forwardedPort: forwardedPort, peer: peer)
        guard OriginPolicy.allows(claims, expected: expected) else {
            logger?.notice(
                "cross-origin request refused",
                metadata: [
                    "method": "\(method)", "path": "\(ProxyRoute.prefix(of: Substring(path)) ?? "/")", "origin": "\(claims.origin ?? "-")",
                    "sec_fetch_site": "\(claims.fetchSite ?? "-")", "expected": "\(expected)", "peer": "\(peer ?? "-")",
                ]
            )
            return false
        }
        return true
    }

    /// `GET /_portal/enter?code=…` on the environment origin: redeems a one-time code from the
    /// portal origin for this origin's session cookie, then goes into the environment.
    func enter(_ request: Request, context: PortalRequestContext) async -> Response {
        guard let code = request.uri.queryParameters["code"].map(String.init), !code.isEmpty, code.count <= 128 else {
            return expired
        }
        do {
            guard let (token, scope, next) = try await handovers.redeem(code), scope == .environments, let environmentsURL else {
                return expired
            }
            var response = portalPage(Response(status: .seeOther, headers: [.location: next, .cacheControl: "no-store", .referrerPolicy: "no-referrer"]))
            response.setCookie(
                SessionCookie.make(token: token, lifetime: sessionLifetime, https: environmentsURL.isHTTPS, publicURL: environmentsURL, name: SessionCookie.environmentName)
            )
            return response
        } catch {
            context.logger.error("hand-over failed", metadata: ["error": "\(String(reflecting: error))"])
            return problem(.serviceUnavailable, "The portal could not open your environment just now. Nothing was lost; try again in a moment.")
        }
    }

    private var expired: Response {
        portalPage(pages.response("environment_unavailable", PageModel.Unavailable.expiredLink, status: .forbidden))
    }
}
