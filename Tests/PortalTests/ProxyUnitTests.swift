import Environments
import Foundation
import HTTPTypes
import LTI
import NIOHTTP1
@testable import Portal
import Testing

@Suite("Proxy pieces")
struct ProxyUnitTests {
    @Test func routePrefixesAreTheFirstTwoSegmentsUnderUser() {
        #expect(ProxyRoute.prefix(of: "/user/a/b/lab?x=1") == "/user/a/b/")
        #expect(ProxyRoute.prefix(of: "/user/a/b/") == "/user/a/b/")
        #expect(ProxyRoute.prefix(of: "/user/a/b") == "/user/a/b")
        #expect(ProxyRoute.prefix(of: "/user/a/b?x") == "/user/a/b")
        #expect(ProxyRoute.prefix(of: "/user/a") == nil)
        #expect(ProxyRoute.prefix(of: "/user//b/") == nil)
        #expect(ProxyRoute.prefix(of: "/home") == nil)
    }

    @Test func entryPathsStayInsideTheEnvironment() {
        let base = "/user/a/b/"
        #expect(EnvironmentEntry.path(basePath: base, requested: nil) == "/user/a/b/lab")
        #expect(EnvironmentEntry.path(basePath: base, requested: "lab/tree/week1/intro.ipynb") == "/user/a/b/lab/tree/week1/intro.ipynb")
        #expect(EnvironmentEntry.path(basePath: base, requested: "/tree?reset") == "/user/a/b/tree?reset")
        for hostile in ["../../home", "lab/../../x", "https://evil.example/", "lab/%2e%2e/%2E%2E/x", "lab%2f..%2fx", "lab\\..\\x", "a b", "javascript:alert(1)"] {
            #expect(EnvironmentEntry.path(basePath: base, requested: hostile) == "/user/a/b/lab", "\(hostile)")
        }
        // A network-path reference loses its leading slashes and stays a path inside the prefix.
        #expect(EnvironmentEntry.path(basePath: base, requested: "//evil.example/x") == "/user/a/b/evil.example/x")
    }

    @Test func cookiesAreFoundAndRemovedByName() {
        #expect(CookieHeader.value(named: "portal_session", in: "a=1; portal_session=xyz; b=2") == "xyz")
        #expect(CookieHeader.value(named: "portal", in: "portal_session=xyz") == nil)
        #expect(CookieHeader.removing(["portal_session"], from: "a=1; portal_session=xyz; b=2") == "a=1; b=2")
        #expect(CookieHeader.removing(["portal_session", "portal_environment"], from: "portal_session=x;portal_environment=y") == nil)
    }

    @Test func requestHeadersAreRewrittenForTheServer() throws {
        let fields: HTTPFields = [
            .cookie: "portal_session=secret; _xsrf=abc", .connection: "keep-alive, X-Hop", HTTPField.Name("X-Hop")!: "1",
            .authorization: "Basic ZXZpbA==", HTTPField.Name("X-Portal-Secret")!: "forged", .transferEncoding: "chunked", HTTPField.Name("X-Forwarded-For")!: "6.6.6.6",
            .accept: "text/html", HTTPField.Name("Keep-Alive")!: "timeout=5",
        ]
        let untrusted = ProxyHeaders.request(
            method: "POST", target: "/user/a/b/api", authority: "portal.example", fields: fields,
            client: .init(address: "10.0.0.9", trusted: false, scheme: "https"), authorization: "t", dropCookies: [SessionCookie.name]
        )
        #expect(untrusted.method == .POST && untrusted.uri == "/user/a/b/api")
        #expect(untrusted.headers["Host"] == ["portal.example"])
        #expect(untrusted.headers["Cookie"] == ["_xsrf=abc"])
        #expect(untrusted.headers["Authorization"].isEmpty)
        #expect(untrusted.headers[JupyterCommand.secretHeader] == ["t"])
        #expect(untrusted.headers["Transfer-Encoding"] == ["chunked"])
        #expect(untrusted.headers["X-Hop"].isEmpty && untrusted.headers["Connection"].isEmpty && untrusted.headers["Keep-Alive"].isEmpty)
        #expect(untrusted.headers["X-Forwarded-For"] == ["10.0.0.9"])
        #expect(untrusted.headers["X-Forwarded-Proto"] == ["https"])
        #expect(untrusted.headers["X-Forwarded-Host"] == ["portal.example"])
        #expect(untrusted.headers["Accept"] == ["text/html"])
        // A trusted reverse proxy's chain is extended, not replaced.
        let trusted = ProxyHeaders.request(
            method: "GET", target: "/", authority: "portal.example", fields: fields,
            client: .init(address: "10.0.0.1", trusted: true, scheme: "https"), authorization: "t", dropCookies: []
        )
        #expect(trusted.headers["X-Forwarded-For"] == ["6.6.6.6, 10.0.0.1"])
    }

    @Test func theServerSecretHeaderIsRecognisedInAnyCase() {
        #expect(ProxyHeaders.Field(name: JupyterCommand.secretHeader) == .serverSecret)
        #expect(ProxyHeaders.Field(name: JupyterCommand.secretHeader.uppercased()) == .serverSecret)
        #expect(ProxyHeaders.Field(name: "x-portal-secreT") == .serverSecret)
        #expect(ProxyHeaders.Field(name: "x-portal-secrets") == .other && ProxyHeaders.Field(name: "x-forwarded-for") == .forwardedFor)
    }

    @Test func responseHeadersLoseHopByHopFields() {
        var head = HTTPResponseHead(version: .http1_1, status: .ok)
        head.headers.add(name: "Content-Type", value: "text/plain")
        head.headers.add(name: "Connection", value: "keep-alive, X-Private")
        head.headers.add(name: "X-Private", value: "1")
        head.headers.add(name: "Transfer-Encoding", value: "chunked")
        head.headers.add(name: "Set-Cookie", value: "jupyter=1; Path=/user/a/b/")
        let response = ProxyHeaders.response(head, policy: RawProxyTests.policy)
        #expect(response.status.code == 200)
        #expect(response.headerFields[.contentType] == "text/plain")
        #expect(response.headerFields[.setCookie] == "jupyter=1; Path=/user/a/b/")
        #expect(response.headerFields[HTTPField.Name("X-Private")!] == nil)
        #expect(response.headerFields[.transferEncoding] == nil && response.headerFields[.connection] == nil)
    }

    @Test func upstreamAddressesParse() {
        #expect(UpstreamAddress("127.0.0.1:8888") == .tcp(host: "127.0.0.1", port: 8888))
        #expect(UpstreamAddress("[::1]:8888") == .tcp(host: "::1", port: 8888))
        #expect(UpstreamAddress("unix:/run/x.sock") == .unix(path: "/run/x.sock"))
        #expect(UpstreamAddress("unix:relative") == nil)
        #expect(UpstreamAddress("host:99999") == nil)
    }

    @Test func launchMarkersAreSealedAndExpire() throws {
        let marker = LaunchMarker(box: try SecretBox(source: .value("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")))
        let now = Date()
        let sealed = try #require(marker.make(sessionToken: "token", now: now))
        #expect(marker.open(sealed, now: now) == SessionToken.hash("token"))
        #expect(marker.open(sealed, now: now.addingTimeInterval(121)) == nil)
        var tampered = Array(sealed)
        tampered[10] = tampered[10] == "A" ? "B" : "A"
        #expect(marker.open(String(tampered), now: now) == nil)
        let other = LaunchMarker(box: try SecretBox(source: .value("ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=")))
        #expect(other.open(sealed, now: now) == nil)
    }
}

@Suite("Route table")
struct RouteTableTests {
    @Test func aMissIsRememberedBrieflyAndForgottenWhenTheEnvironmentAppears() {
        let table = RouteTable()
        #expect(!table.recentlyMissing("/user/a/b/"))
        table.noteMissing("/user/a/b/")
        #expect(table.recentlyMissing("/user/a/b/"))
        let route = ProxyRoute(
            environmentID: 7, userID: 1, courseID: 2, basePath: "/user/a/b/", state: .ready, upstream: UpstreamAddress("127.0.0.1:9"), token: "t",
            lastActivity: 0
        )
        table.update(environmentID: 7, basePath: "/user/a/b/", route: route)
        #expect(!table.recentlyMissing("/user/a/b/"))
        #expect(table.route(forPath: "/user/a/b/lab")?.environmentID == 7)
        #expect(table.route(forPath: "/user/a/b")?.environmentID == 7)
        // A stop of another environment at the same path does not remove the live one.
        table.update(environmentID: 6, basePath: "/user/a/b/", route: nil)
        #expect(table.route(forPath: "/user/a/b/lab")?.environmentID == 7)
        table.update(environmentID: 7, basePath: "/user/a/b/", route: nil)
        #expect(table.route(forPath: "/user/a/b/lab") == nil)
    }

    /// The fast path reuses a connection's last route only while the table's version is unchanged:
    /// every change, a removal above all, must move it on.
    @Test func everyChangeMovesTheVersionOn() {
        let table = RouteTable()
        let route = ProxyRoute(
            environmentID: 7, userID: 1, courseID: 2, basePath: "/user/a/b/", state: .ready, upstream: UpstreamAddress("127.0.0.1:9"), token: "t",
            lastActivity: 0
        )
        var seen = [table.version]
        table.update(environmentID: 7, basePath: "/user/a/b/", route: route)
        seen.append(table.version)
        table.update(environmentID: 7, basePath: "/user/a/b/", route: nil)
        seen.append(table.version)
        table.replaceAll([route])
        seen.append(table.version)
        table.replaceAll([])
        seen.append(table.version)
        #expect(Set(seen).count == seen.count)
    }
}

/// The one access decision every proxy path takes, case by case.
@Suite("Proxy access decision")
struct ProxyAccessTests {
    static let session = SessionCache.Entry(userID: 7, userSlug: "owner", role: .learner, validUntil: .now + .seconds(60))

    static func route(user: Int64 = 7, state: EnvironmentState = .ready, upstream: UpstreamAddress? = .tcp(host: "127.0.0.1", port: 1)) -> ProxyRoute {
        ProxyRoute(environmentID: 1, userID: user, courseID: 2, basePath: "/user/owner/c/", state: state, upstream: upstream, token: "t", lastActivity: 0)
    }

    static func refusal(_ decision: ProxyAccess.Decision) -> EnvironmentProxy.Refusal? {
        if case .refuse(let refusal) = decision { return refusal }
        return nil
    }

    @Test func everyPathDecidesTheSame() {
        let owner = ProxyAccess.pathOwner("/user/owner/c/lab")
        #expect(owner == "owner")
        if case .allow(let route, let address) = ProxyAccess.decide(originAllowed: true, session: Self.session, route: Self.route(), pathOwner: owner) {
            #expect(route.userID == 7 && address == .tcp(host: "127.0.0.1", port: 1))
        } else {
            Issue.record("the owner's serving environment is refused")
        }
        // The origin first: another site learns nothing about sessions or environments.
        #expect(Self.refusal(ProxyAccess.decide(originAllowed: false, session: nil, route: nil, pathOwner: owner)) == .crossOrigin)
        #expect(Self.refusal(ProxyAccess.decide(originAllowed: true, session: nil, route: Self.route(), pathOwner: owner)) == .noSession)
        #expect(Self.refusal(ProxyAccess.decide(originAllowed: true, session: Self.session, route: nil, pathOwner: owner)) == .notRunning)
        #expect(Self.refusal(ProxyAccess.decide(originAllowed: true, session: Self.session, route: nil, pathOwner: "someone")) == .forbidden)
        #expect(Self.refusal(ProxyAccess.decide(originAllowed: true, session: Self.session, route: Self.route(user: 8), pathOwner: owner)) == .forbidden)
        #expect(Self.refusal(ProxyAccess.decide(originAllowed: true, session: Self.session, route: Self.route(state: .starting), pathOwner: owner)) == .starting)
        #expect(Self.refusal(ProxyAccess.decide(originAllowed: true, session: Self.session, route: Self.route(upstream: nil), pathOwner: owner)) == .starting)
    }
}
