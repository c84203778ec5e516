import HTTPTypes
import Hummingbird

/// The security headers of the portal's responses, built once from the configuration.
///
/// Portal pages (everything the router answers: pages, error pages, redirects, JSON) get
/// ``pagePolicy`` as `Content-Security-Policy` and `Referrer-Policy: same-origin`, through
/// ``SecurityHeadersMiddleware``. Proxied environment responses must not get the page policy
/// (JupyterLab runs scripts); they share only ``frameAncestors``, the one rule of who may show the
/// portal in a frame — see ``environmentPolicy(upstream:)``.
struct SecurityHeaders: Sendable, Equatable {
    /// The CSP `frame-ancestors` directive: `frame-ancestors 'self'` and `security.frame_ancestors`.
    let frameAncestors: String
    /// The whole `Content-Security-Policy` of portal pages: nothing loads but the templates' own
    /// inline styles (by hash), no script at all, forms only to the portal, no `<base>`, frames
    /// only as ``frameAncestors`` allows.
    let pagePolicy: String
    /// The `Referrer-Policy` of portal pages: URLs (with their one-time codes) never leave the
    /// portal's origin. A response that sets its own (the hand-over's `no-referrer`) keeps it.
    static let referrerPolicy = "same-origin"

    /// - Parameters:
    ///   - security: the configuration's `security` section.
    ///   - styleSources: CSP hash sources of the inline styles pages carry (``Pages/styleSources``).
    init(security: PortalConfiguration.SecurityConfiguration, styleSources: [String]) {
        frameAncestors = security.frameAncestorsDirective
        pagePolicy = [
            "default-src 'none'",
            "style-src " + (styleSources.isEmpty ? "'none'" : styleSources.joined(separator: " ")),
            "form-action 'self'",
            "base-uri 'none'",
            frameAncestors,
        ].joined(separator: "; ")
    }

    /// Adds the page headers to a response of the router: the page policy, replacing any other,
    /// and the referrer policy unless the response chose its own.
    func applyToPage(_ headers: inout HTTPFields) {
        headers[.contentSecurityPolicy] = pagePolicy
        if headers[.referrerPolicy] == nil { headers[.referrerPolicy] = Self.referrerPolicy }
    }

    /// The `Content-Security-Policy` for a proxied environment response whose upstream sent
    /// `upstream` (all its CSP fields joined with `,`, or `nil`): the same policy with every
    /// `frame-ancestors` directive replaced by ``frameAncestors`` (Jupyter sends
    /// `frame-ancestors 'self'`, which stops it rendering inside the VLE's frame), or just
    /// ``frameAncestors`` when the upstream sent none.
    func environmentPolicy(upstream: String?) -> String {
        // Several policies (comma-separated, or one per field) are each enforced: each keeps its
        // directives but frame-ancestors, and the first carries the portal's.
        var policies = (upstream ?? "").split(separator: ",").map { policy in
            policy.split(separator: ";").map { $0.trimmingWhitespaceSubstring() }.filter { directive in
                !directive.isEmpty && directive.split(whereSeparator: { $0 == " " || $0 == "\t" }).first?.lowercased() != "frame-ancestors"
            }
        }.filter { !$0.isEmpty }
        if policies.isEmpty { policies = [[]] }
        policies[0].append(frameAncestors)
        return policies.map { $0.joined(separator: "; ") }.joined(separator: ", ")
    }
}

/// Puts ``SecurityHeaders`` on every response of the router — pages, error pages, redirects,
/// JSON — also those made from an error thrown inside it. Added first, so that it wraps every
/// other middleware.
struct SecurityHeadersMiddleware: RouterMiddleware {
    typealias Context = PortalRequestContext
    let headers: SecurityHeaders

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as any HTTPResponseError {
            // What the router would answer for it, with the headers.
            response = try error.response(from: request, context: context)
        }
        headers.applyToPage(&response.headers)
        return response
    }
}
