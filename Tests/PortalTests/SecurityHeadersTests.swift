import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
@testable import Portal
import TestSupport
import Testing

/// Every response of the router carries one Content-Security-Policy (no script, styles by hash,
/// frames only from the portal and the configured VLEs) and `Referrer-Policy: same-origin`.
@Suite("Security headers of portal pages", .enabled(if: TestEnvironment.hasDatabase && TestEnvironment.hasPython))
struct SecurityHeadersTests {
    static let vles = ["https://moodle.example.ac.uk", "https://*.vle.example.ac.uk:8443"]
    static let csp = HTTPField.Name("Content-Security-Policy")!
    static let referrer = HTTPField.Name("Referrer-Policy")!

    /// Checks the headers of `response` (`name` says which), and for a page that its inline styles
    /// are the ones the policy allows and that it has no script.
    func check(_ response: TestResponse, _ name: String, referrer: String = "same-origin", sourceLocation: SourceLocation = #_sourceLocation) {
        let policy = response.headers[Self.csp] ?? ""
        let directives = policy.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        #expect(directives.contains("default-src 'none'"), "\(name): \(policy)", sourceLocation: sourceLocation)
        #expect(directives.contains("form-action 'self'"), "\(name)", sourceLocation: sourceLocation)
        #expect(directives.contains("base-uri 'none'"), "\(name)", sourceLocation: sourceLocation)
        #expect(directives.contains("frame-ancestors 'self' " + Self.vles.joined(separator: " ")), "\(name): \(policy)", sourceLocation: sourceLocation)
        #expect(!policy.contains("unsafe") && !directives.contains { $0.hasPrefix("script-src") }, "\(name)", sourceLocation: sourceLocation)
        #expect(response.headers[values: Self.csp].count == 1, "\(name)", sourceLocation: sourceLocation)
        #expect(response.headers[Self.referrer] == referrer, "\(name)", sourceLocation: sourceLocation)
        let body = String(buffer: response.body)
        guard response.headers[.contentType]?.hasPrefix("text/html") == true else { return }
        #expect(!body.contains("<script"), "\(name)", sourceLocation: sourceLocation)
        #expect(!body.contains("style="), "\(name): a style attribute needs 'unsafe-inline'", sourceLocation: sourceLocation)
        let styles = body.matches(of: /<style>(.*?)<\/style>/.dotMatchesNewlines()).map { String($0.1) }
        #expect(!styles.isEmpty, "\(name)", sourceLocation: sourceLocation)
        for css in styles {
            let hash = "'sha256-\(Data(SHA256.hash(data: Data(css.utf8))).base64EncodedString())'"
            let allowed = directives.first { $0.hasPrefix("style-src ") }?.split(separator: " ").map(String.init) ?? []
            #expect(allowed.contains(hash), "\(name): \(hash) not in \(policy)", sourceLocation: sourceLocation)
        }
    }

    @Test func everyKindOfResponseOfTheRouterCarriesThePolicy() async throws {
        try await PortalHarness.withPortal(configure: { $0.security.frameAncestors = Self.vles }) { client, _ in
            check(try await client.execute(uri: "/", method: .get), "index page")
            check(try await client.execute(uri: "/home", method: .get), "no session page")
            check(try await client.execute(uri: "/lti/launch", method: .get), "launch GET page")
            check(try await client.execute(uri: "/no/such/page", method: .get), "404 page")
            check(try await client.execute(uri: "/healthz", method: .get), "health JSON")
            check(try await client.execute(uri: "/environment/status", method: .get), "status JSON")
            check(try await client.execute(uri: "/launch/continue?code=nope", method: .get), "expired hand-over page")
            check(try await PortalHarness.post(client, body: "user_id=x"), "refusal page")

            let launch = try await PortalHarness.post(client, body: try PortalHarness.sign().body)
            #expect(launch.status == .seeOther)
            check(launch, "launch redirect")
            let token = try #require(PortalHarness.sessionToken(launch))
            let cookie: HTTPFields = [.cookie: "portal_session=\(token)"]
            check(try await client.execute(uri: "/home", method: .get, headers: cookie), "landing page")
            let stale = try await client.execute(uri: "/environment/retry", method: .post, headers: cookie, body: ByteBuffer(string: "form_token=old"))
            #expect(stale.status == .forbidden)
            check(stale, "expired form page")
            // The page of an unexpected error (a form larger than the route reads).
            let large = try await client.execute(uri: "/environment/retry", method: .post, headers: cookie, body: ByteBuffer(repeating: 0x61, count: 10_000))
            #expect(large.status.code >= 400)
            check(large, "error page")
        }
    }

    /// An HTTP error thrown past every middleware becomes its response in the router's responder,
    /// outside them: the middleware makes that response itself, with the headers.
    @Test func anHTTPErrorThrownInsideTheRouterGetsTheHeadersToo() async throws {
        var security = PortalConfiguration.SecurityConfiguration()
        security.frameAncestors = Self.vles
        let router = Router(context: PortalRequestContext.self)
        router.add(middleware: SecurityHeadersMiddleware(headers: SecurityHeaders(security: security, styleSources: ["'sha256-x'"])))
        router.get("/teapot") { _, _ -> Response in throw HTTPError(.conflict, message: "no") }
        try await Application(router: router).test(.live) { client in
            let response = try await client.execute(uri: "/teapot", method: .get)
            #expect(response.status == .conflict)
            check(response, "thrown HTTP error")
        }
    }

    /// In the VLE's iframe with third-party cookies blocked: the "Open in a new window" page and the
    /// new window's redirect keep their stricter `no-referrer` (their URLs carry one-time codes).
    @Test func theHandOverKeepsNoReferrer() async throws {
        try await PortalHarness.withPortal(publicURL: "http://portal.test", configure: { $0.security.frameAncestors = Self.vles }) { client, _ in
            let launch = try await PortalHarness.post(client, body: try PortalHarness.sign(url: "http://portal.test/lti/launch").body)
            let blocked = try await client.execute(uri: try #require(launch.headers[.location]), method: .get)
            check(blocked, "new window page", referrer: "no-referrer")
            let page = String(buffer: blocked.body)
            let link = String(try #require(page.firstMatch(of: /href="(\/launch\/continue\?code=[^"]+)"/)?.1))
            let continued = try await client.execute(uri: link, method: .get)
            #expect(continued.status == .seeOther)
            check(continued, "new window redirect", referrer: "no-referrer")
        }
    }

    @Test func withoutConfiguredOriginsOnlyThePortalMayFrameItsPages() async throws {
        try await PortalHarness.withPortal { client, _ in
            let policy = try #require(try await client.execute(uri: "/", method: .get).headers[Self.csp])
            #expect(policy.hasSuffix("; frame-ancestors 'self'"))
        }
    }

    /// The rule proxied responses share: Jupyter's frame-ancestors replaced, the rest of its policy kept.
    @Test func theEnvironmentPolicyReplacesOnlyFrameAncestors() {
        var security = PortalConfiguration.SecurityConfiguration()
        security.frameAncestors = ["https://moodle.example.ac.uk"]
        let headers = SecurityHeaders(security: security, styleSources: [])
        let ours = "frame-ancestors 'self' https://moodle.example.ac.uk"
        #expect(headers.frameAncestors == ours)
        #expect(headers.environmentPolicy(upstream: nil) == ours)
        #expect(headers.environmentPolicy(upstream: "frame-ancestors 'self'; report-uri /api/security/csp-report") == "report-uri /api/security/csp-report; " + ours)
        #expect(headers.environmentPolicy(upstream: "default-src 'self';FRAME-ANCESTORS 'none', frame-ancestors x; img-src *") == "default-src 'self'; \(ours), img-src *")
        #expect(headers.pagePolicy.contains("style-src 'none'"))
    }
}
