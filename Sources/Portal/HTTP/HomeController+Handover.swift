import Environments
import Foundation
import HTTPTypes
import Hummingbird

extension HomeController {
    /// What moving a browser between contexts and origins needs.
    struct Handover: Sendable {
        let store: HandoverStore
        let marker: LaunchMarker
        let publicURL: PublicURL
        let resolver: LaunchURLResolver
        let sessionLifetime: Duration
        /// The separate environment origin, if configured.
        let environmentsURL: PublicURL?
    }

    /// The URL that enters a ready environment: its path on this origin, or a one-time hand-over
    /// to the environment origin.
    func entry(_ record: EnvironmentRecord, session: SessionStore.Session, token: String) async throws -> String {
        let path = EnvironmentEntry.path(basePath: record.basePath, requested: session.entryPath)
        guard let environmentsURL = handover.environmentsURL else { return path }
        let code = try await handover.store.issue(parentHash: SessionToken.hash(token), scope: .environments, next: path)
        return environmentsURL.absolute("\(EnvironmentProxy.enterPath)?code=\(code)")
    }

    /// The page for a browser that blocked the session cookie inside the VLE's iframe: a button that
    /// completes the launch in a new window (a first-party context, where the cookie works).
    func cookieBlocked(parent: Data) async throws -> Response {
        let code = try await handover.store.issue(parentHash: parent, scope: .portal, next: handover.publicURL.path("/home?enter=1"))
        let link = handover.publicURL.path("/launch/continue?code=\(code)")
        return pages.response("new_window", PageModel.NewWindow(link: link), headers: [.referrerPolicy: "no-referrer"])
    }

    /// `GET /launch/continue?code=…`: the new window redeems the code for its own session cookie.
    func continueLaunch(_ request: Request, context: PortalRequestContext) async throws -> Response {
        guard let code = request.uri.queryParameters["code"].map(String.init), code.count <= 128,
            let (token, scope, next) = try await handover.store.redeem(code), scope == .portal
        else {
            return pages.response("environment_unavailable", PageModel.Unavailable.expiredLink, status: .forbidden)
        }
        var response = Response(status: .seeOther, headers: [.location: next, .cacheControl: "no-store", .referrerPolicy: "no-referrer"])
        response.setCookie(
            SessionCookie.make(
                token: token, lifetime: handover.sessionLifetime,
                https: handover.resolver.isHTTPS(headers: request.headers, peer: context.remoteAddress), publicURL: handover.publicURL
            )
        )
        return response
    }
}
