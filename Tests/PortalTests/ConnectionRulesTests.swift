import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1
@testable import Portal
import Testing

/// The rules every browser connection is held to, piece by piece: which requests are refused
/// before any route sees them and with what status, how long each wait may last, which requests
/// must come from the environment's own origin, and what the portal changes in proxied responses
/// (the same on the router's path and the fast path).
@Suite("Connection rules")
struct ConnectionRulesTests {
    static func read(_ text: String, limits: RequestLimits = .standard) -> Result<RawRequest, RequestProblem>? {
        Array(text.utf8).withUnsafeBytes { raw in RawRequest.read(raw, limits: limits)?.map(\.1) }
    }

    static func problem(_ text: String, limits: RequestLimits = .standard) -> RequestProblem? {
        guard case .failure(let problem) = read(text, limits: limits) else { return nil }
        return problem
    }

    @Test func malformedRequestsAreRefusedWithTheirStatus() {
        let refused: [(String, String, Int)] = [
            ("bare LF", "GET /healthz HTTP/1.1\nHost: x\n\n", 400),
            ("CL and TE", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
            ("two equal lengths", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", 400),
            ("obs-fold", "GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", 400),
            ("lower-case method", "get / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
            ("HTTP/0.9", "GET /\r\n", 400),
            ("TLS on the plain port", "\u{16}\u{03}\u{01}\u{02}\u{00}", 400),
            ("HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400),
            ("no Host", "GET / HTTP/1.1\r\n\r\n", 400),
            ("two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
            ("TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
            ("NUL in the target", "GET /a\u{0}b HTTP/1.1\r\nHost: x\r\n\r\n", 400),
            ("a 100 KB target", "GET /" + String(repeating: "a", count: 100_000), 414),
            ("a 1 MB header", "GET / HTTP/1.1\r\nHost: x\r\nX: " + String(repeating: "a", count: 1 << 20), 431),
            ("10,000 headers", "GET / HTTP/1.1\r\nHost: x\r\n" + String(repeating: "X: a\r\n", count: 10_000) + "\r\n", 431),
        ]
        for (name, text, status) in refused {
            #expect(Self.problem(text)?.status == status, "\(name)")
        }
    }

    @Test func wellFormedRequestsAreReadAndPartialOnesWaited() throws {
        guard case .success(let request) = Self.read("GET /user/a/b/lab HTTP/1.1\r\nHost: portal\r\nAccept: */*\r\n\r\n") else {
            Issue.record("refused a plain request")
            return
        }
        #expect(request.http11 && request.isKeepAlive)
        #expect(Self.read("GET /user/a/b/lab HTTP/1.1\r\nHost: por") == nil)
        #expect(Self.read("GE") == nil)
        #expect(Self.read("GET / HTTP/1.0\r\n\r\n").map { (try? $0.get())?.isKeepAlive } == false)
        #expect(Self.read("PROPFIND /x HTTP/1.1\r\nHost: x\r\n\r\n").map { (try? $0.get()) != nil } == true)
        // The limits are the configuration's.
        let tight = RequestLimits(maxHeaderBytes: 4096, maxHeaderCount: 16, maxTargetBytes: 1024)
        #expect(Self.problem("GET /" + String(repeating: "a", count: 2000) + " HTTP/1.1\r\n", limits: tight) == .targetTooLong)
        #expect(Self.problem("GET / HTTP/1.1\r\nHost: x\r\n" + String(repeating: "X: a\r\n", count: 17) + "\r\n", limits: tight) == .headersTooLarge)
        #expect(Self.problem("GET / HTTP/1.1\r\nHost: x\r\n" + String(repeating: "X: a\r\n", count: 15) + "\r\n", limits: tight) == nil)
    }

    /// Fed a byte at a time, as a trickling client sends it, the reader answers what it answers for
    /// the whole head, at the byte where that becomes known.
    @Test func headsTrickledAByteAtATimeAreReadTheSame() {
        func trickle(_ text: String, limits: RequestLimits = .standard) -> (Int, Result<RawRequest, RequestProblem>)? {
            var reader = HeadReader(limits: limits)
            let bytes = Array(text.utf8)
            for count in 1...bytes.count {
                if let result = bytes[..<count].withUnsafeBytes({ reader.read($0) }) { return (count, result.map(\.1)) }
            }
            return nil
        }
        let plain = "GET /user/a/b/lab HTTP/1.1\r\nHost: portal\r\nCookie: a=1\r\n\r\n"
        guard let (at, result) = trickle(plain), case .success(let request) = result else {
            Issue.record("a trickled head was not read")
            return
        }
        #expect(at == plain.utf8.count && request.head.fields.count == 2)
        #expect(trickle("get / HTTP/1.1\r\n")?.0 == 1)
        #expect(trickle("GET /\r\nHost: x\r\n\r\n")?.0 == 6)  // HTTP/0.9: at the end of its line
        let tight = RequestLimits(maxHeaderBytes: 4096, maxHeaderCount: 16, maxTargetBytes: 1024)
        let big = trickle("GET / HTTP/1.1\r\nHost: x\r\nX: " + String(repeating: "a", count: 5000) + "\r\n\r\n", limits: tight)
        #expect(big?.0 == 4096)
        if case .failure(.headersTooLarge) = big?.1 {} else { Issue.record("a trickled oversized head: \(String(describing: big))") }
        #expect(trickle("GET /" + String(repeating: "a", count: 2000), limits: tight)?.0 == 1029)
    }

    static let settings = ConnectionDeadlines.Settings(
        headerTimeout: .seconds(10), bodyTimeout: .seconds(30), keepAliveTimeout: .seconds(60), drainTimeout: .seconds(5)
    )

    @Test func everyWaitHasItsLimit() {
        let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)
        var deadlines = ConnectionDeadlines(settings: Self.settings, now: start)
        // The first request's head counts from the connection's start, in total.
        #expect(deadlines.deadline == start + .seconds(10))
        deadlines.set(.head, now: start + .seconds(4))
        deadlines.received(now: start + .seconds(9))
        #expect(deadlines.deadline == start + .seconds(10))
        #expect(deadlines.expiry(now: start + .seconds(10)) == .timeOut)
        // A body: its pauses, not its length.
        deadlines.set(.body(reading: true), now: start + .seconds(11))
        deadlines.received(now: start + .seconds(40))
        #expect(deadlines.deadline == start + .seconds(70))
        deadlines.set(.body(reading: false), now: start + .seconds(41))
        #expect(deadlines.deadline == nil)  // the portal's own pause
        // A response: no limit; then the keep-alive idle time, silently.
        deadlines.set(.response, now: start + .seconds(50))
        #expect(deadlines.deadline == nil)
        deadlines.set(.nextRequest, now: start + .seconds(100))
        #expect(deadlines.deadline == start + .seconds(160))
        #expect(deadlines.expiry(now: start + .seconds(159)) == nil)
        #expect(deadlines.expiry(now: start + .seconds(160)) == .close)
        // The next head counts from its own first byte.
        deadlines.set(.head, now: start + .seconds(120))
        #expect(deadlines.deadline == start + .seconds(130))
        // Lingering: idle time, and a total.
        deadlines.set(.lingering, now: start + .seconds(200))
        #expect(deadlines.deadline == start + .seconds(205))
        for second in stride(from: 204, through: 236, by: 4) { deadlines.received(now: start + .seconds(Int64(second))) }
        #expect(deadlines.deadline == start + .seconds(230))
        // Nothing but closing follows lingering.
        deadlines.set(.nextRequest, now: start + .seconds(231))
        #expect(deadlines.wait == .lingering)
    }

    @Test func drainingEndsInTime() {
        let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)
        var deadlines = ConnectionDeadlines(settings: Self.settings, now: start)
        deadlines.set(.response, now: start)
        deadlines.set(.draining, now: start + .seconds(1))
        #expect(deadlines.deadline == start + .seconds(6))
        #expect(deadlines.expiry(now: start + .seconds(6)) == .close)
    }

    @Test func changesMustComeFromTheEnvironmentsOrigin() {
        let expected = OriginPolicy.serialize(scheme: "https", host: "Portal.Example.ac.uk", port: 443)
        #expect(expected == "https://portal.example.ac.uk")
        #expect(OriginPolicy.allows(.init(origin: "https://portal.example.ac.uk"), expected: expected))
        #expect(OriginPolicy.allows(.init(origin: "https://PORTAL.example.ac.uk:443"), expected: expected))
        #expect(!OriginPolicy.allows(.init(origin: "http://evil.example"), expected: expected))
        #expect(!OriginPolicy.allows(.init(origin: "https://portal.example.ac.uk:8443"), expected: expected))
        #expect(!OriginPolicy.allows(.init(origin: "http://portal.example.ac.uk"), expected: expected))
        #expect(!OriginPolicy.allows(.init(origin: "null"), expected: expected))
        #expect(!OriginPolicy.allows(.init(origin: "https://portal.example.ac.uk.evil.example"), expected: expected))
        // Origin decides when present, whatever Sec-Fetch-Site says.
        #expect(!OriginPolicy.allows(.init(origin: "http://evil.example", fetchSite: "same-origin"), expected: expected))
        #expect(OriginPolicy.allows(.init(fetchSite: "same-origin"), expected: expected))
        #expect(!OriginPolicy.allows(.init(fetchSite: "same-site"), expected: expected))
        #expect(!OriginPolicy.allows(.init(fetchSite: "cross-site"), expected: expected))
        // Neither: a program, not a page in a browser.
        #expect(OriginPolicy.allows(.init(), expected: expected))
        #expect(OriginPolicy.isSafe(method: "GET") && OriginPolicy.isSafe(method: "OPTIONS") && !OriginPolicy.isSafe(method: "POST"))
        #expect(!OriginPolicy.isSafe(method: "get"))
    }

    @Test func htmlIsKnownByItsContentType() {
        for html in ["text/html", "text/html; charset=UTF-8", "TEXT/HTML", " Text/Html;charset=utf-8"] { #expect(ProxyResponsePolicy.isHTML(html), "\(html)") }
        for other in ["text/htmlx", "text/plain", "application/xhtml+xml", "", "text/htm"] { #expect(!ProxyResponsePolicy.isHTML(other), "\(other)") }
    }

    /// The router's rewrite of a response and the fast path's carry the same fields.
    @Test(arguments: [
        "Content-Type: text/html; charset=UTF-8\r\nCache-Control: max-age=3600\r\nContent-Security-Policy: frame-ancestors 'self'; report-uri /user/a/b/api/security/csp-report\r\nX-Frame-Options: SAMEORIGIN\r\nX-Kept: 1\r\n",
        "Content-Type: application/json\r\nCache-Control: max-age=60\r\nContent-Security-Policy: default-src 'none'; frame-ancestors 'none'\r\n",
        "Content-Type: text/html\r\n",
        "Content-Length: 0\r\nReferrer-Policy: no-referrer\r\n",
    ])
    func proxiedResponsesAreRewrittenTheSameOnBothPaths(fields: String) throws {
        let text = "HTTP/1.1 200 OK\r\n" + fields + "\r\n"
        let (_, fast) = try #require(RawProxyTests.response(text))
        var head = HTTPResponseHead(version: .http1_1, status: .ok)
        for line in fields.split(separator: "\r\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            head.headers.add(name: String(parts[0]), value: parts[1].trimmingCharacters(in: .whitespaces))
        }
        let routed = ProxyHeaders.response(head, policy: RawProxyTests.policy).headerFields.map { "\($0.name.rawName.lowercased()): \($0.value)" }
        let fastLines = fast.split(separator: "\r\n").dropFirst().map { line -> String in
            let parts = line.split(separator: ":", maxSplits: 1)
            return parts[0].lowercased() + ": " + parts[1].trimmingCharacters(in: .whitespaces)
        }
        #expect(fastLines.sorted() == routed.sorted())
        let html = fields.lowercased().contains("text/html")
        #expect(fastLines.contains("cache-control: no-store") == html)
        #expect(fastLines.contains("referrer-policy: same-origin") == html)
        #expect(!fastLines.contains { $0.hasPrefix("x-frame-options") })
        for policy in fastLines where policy.hasPrefix("content-security-policy") {
            #expect(policy.hasSuffix("frame-ancestors 'self' https://vle.example.ac.uk"))
            #expect(policy.components(separatedBy: "frame-ancestors").count == 2)
        }
        if html { #expect(fastLines.contains { $0.hasPrefix("content-security-policy") }) }
        if fields.contains("default-src 'none'") { #expect(fastLines.contains { $0.contains("default-src 'none'") }) }
    }
}
