import Foundation
import HTTPTypes
import NIOCore
import NIOEmbedded
import NIOHTTP1
@testable import Portal
import Testing

/// The proxy's byte-level fast path, piece by piece: heads read strictly from bytes, the same header
/// rules as the string path, chunked bodies followed across reads, and an upstream connection
/// driven through an embedded channel. End to end, the proxy suites run through it.
@Suite("Proxy fast path pieces")
struct RawProxyTests {
    static func head(_ text: String) -> RawHTTP.Parse {
        Array(text.utf8).withUnsafeBytes { RawHTTP.parseHead($0) }
    }

    @Test func headsAreReadStrictly() {
        guard case .complete(let head) = Self.head("GET /user/a/b/ HTTP/1.1\r\nHost: x\r\nCookie:  a=1 \r\n\r\nNEXT") else {
            Issue.record("not parsed")
            return
        }
        #expect(head.length == "GET /user/a/b/ HTTP/1.1\r\nHost: x\r\nCookie:  a=1 \r\n\r\n".utf8.count)
        #expect(head.fields.map(\.kind) == [.host, .cookie])
        #expect(head.fields[1].value.count == 3)  // "a=1", spaces trimmed
        if case .incomplete = Self.head("GET / HTTP/1.1\r\nHost: x\r\n") {} else { Issue.record("a partial head is incomplete") }
        for broken in [
            "GET / HTTP/1.1\nHost: x\n\n",  // bare LF
            "GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",  // obsolete line folding
            "GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
            "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
            "GET / HTTP/1.1\r\nX: a\u{1}b\r\n\r\n",
            "\r\nGET / HTTP/1.1\r\n\r\n",
        ] {
            if case .invalid = Self.head(broken) {} else { Issue.record("accepted: \(broken.debugDescription)") }
        }
        let huge = "GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: RawHTTP.headLimit) + "\r\n\r\n"
        if case .tooLarge = Self.head(huge) {} else { Issue.record("an oversized head is too large") }
    }

    static func request(_ text: String) -> RawRequest? {
        Array(text.utf8).withUnsafeBytes { raw in
            guard case .complete(let head) = RawHTTP.parseHead(raw) else { return nil }
            return RawRequest(raw, head)
        }
    }

    @Test func requestFramingFollowsRFC9112() throws {
        #expect(try #require(Self.request("GET /x HTTP/1.1\r\nHost: x\r\n\r\n")).framed.framing == .none)
        #expect(try #require(Self.request("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n")).framed.framing == .length(12))
        #expect(try #require(Self.request("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")).framed.framing == .none)
        #expect(try #require(Self.request("POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n")).framed.framing == .chunked)
        // Both framings, differing lengths, a coding not ending in chunked, a bad version: NIO decides.
        #expect(Self.request("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n") == nil)
        #expect(Self.request("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n") == nil)
        #expect(Self.request("POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n") == nil)
        #expect(Self.request("GET /x HTTP/2.0\r\n\r\n") == nil)
        #expect(Self.request("GET  HTTP/1.1\r\nHost: x\r\n\r\n") == nil)
        let closing = try #require(Self.request("GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
        #expect(!closing.isKeepAlive)
        #expect(try #require(Self.request("GET /x HTTP/1.0\r\n\r\n")).isKeepAlive == false)
        #expect(try #require(Self.request("GET /x HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")).isKeepAlive)
        #expect(try #require(Self.request("GET /x HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")).framed.upgrade)
    }

    /// The fast path's rewritten head carries exactly the fields the router's path sends.
    @Test(arguments: [false, true]) func theFastPathRewritesHeadsAsTheRouterDoes(trusted: Bool) throws {
        let text = """
            GET /user/a/b/api/contents?x=1 HTTP/1.1\r
            Host: portal.example.ac.uk\r
            Cookie: portal_session=secret; _xsrf=abc\r
            Cookie: portal_environment=e; theme=dark\r
            Connection: keep-alive, X-Hop\r
            X-Hop: 1\r
            Keep-Alive: timeout=5\r
            Authorization: Basic ZXZpbA==\r
            x-portal-SECRET: forged\r
            X-Forwarded-For: 6.6.6.6\r
            X-Forwarded-Proto: https\r
            X-Forwarded-Host: evil.example\r
            X-Real-IP: 6.6.6.6\r
            Expect: 100-continue\r
            Accept: application/json\r
            Content-Length: 0\r
            \r

            """
        let client = ProxyHeaders.Client(address: "10.1.2.3", trusted: trusted, scheme: "https")
        let bytes = Array(text.utf8)
        let request = try #require(Self.request(text))
        let rewritten = bytes.withUnsafeBytes { raw in
            request.upstreamHead(raw, client: client, authorization: "t0k", dropCookies: EnvironmentProxy.portalCookies, allocator: ByteBufferAllocator())
        }
        let fast = String(buffer: rewritten)
        #expect(fast.hasPrefix("GET /user/a/b/api/contents?x=1 HTTP/1.1\r\n"))
        #expect(fast.hasSuffix("\r\n\r\n"))
        let parsed = Array(fast.utf8).withUnsafeBytes { raw -> [String] in
            guard case .complete(let head) = RawHTTP.parseHead(raw) else { return [] }
            return head.fields.map {
                String(decoding: UnsafeRawBufferPointer(rebasing: raw[$0.name]), as: UTF8.self).lowercased() + ": "
                    + String(decoding: UnsafeRawBufferPointer(rebasing: raw[$0.value]), as: UTF8.self)
            }
        }
        var browserHeaders = HTTPHeaders()
        for line in text.split(separator: "\r\n").dropFirst() {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2 { browserHeaders.add(name: String(parts[0]), value: parts[1].trimmingCharacters(in: .whitespaces)) }
        }
        let routed = ProxyHeaders.request(
            method: "GET", target: "/user/a/b/api/contents?x=1", authority: browserHeaders["host"].first,
            headers: browserHeaders.lazy.filter { $0.name.lowercased() != "host" }, client: client, authorization: "t0k",
            dropCookies: EnvironmentProxy.portalCookies
        )
        // Cookies: one field per browser field on the fast path, joined the same way.
        let routedLines = routed.headers.map { "\($0.name.lowercased()): \($0.value)" }
        #expect(parsed.filter { !$0.hasPrefix("cookie:") }.sorted() == routedLines.filter { !$0.hasPrefix("cookie:") }.sorted())
        #expect(parsed.filter { $0.hasPrefix("cookie:") } == ["cookie: _xsrf=abc", "cookie: theme=dark"])
        #expect(!fast.contains("secret=") && !fast.contains("portal_environment") && !fast.contains("X-Hop") && !fast.contains("Basic"))
        #expect(!fast.contains("forged") && !fast.lowercased().contains("authorization"))
        #expect(parsed.filter { $0.hasPrefix("x-portal-secret:") } == ["x-portal-secret: t0k"])
        #expect(parsed.contains(trusted ? "x-forwarded-for: 6.6.6.6, 10.1.2.3" : "x-forwarded-for: 10.1.2.3"))
        #expect(parsed.contains(trusted ? "x-forwarded-host: evil.example" : "x-forwarded-host: portal.example.ac.uk"))
    }

    static func response(_ text: String, toHEAD: Bool = false, closing: Bool = false) -> (RawResponse, String)? {
        Array(text.utf8).withUnsafeBytes { raw in
            guard case .complete(let head) = RawHTTP.parseHead(raw), let response = RawResponse(raw, head, toHEAD: toHEAD) else { return nil }
            return (response, String(buffer: response.browserHead(raw, closing: closing, policy: Self.policy, allocator: ByteBufferAllocator())))
        }
    }

    @Test func responseHeadsLoseHopByHopFieldsAndKeepTheirFraming() throws {
        let (chunked, head) = try #require(
            Self.response("HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Hop\r\nKeep-Alive: timeout=5\r\nX-Hop: 1\r\nTransfer-Encoding: chunked\r\nX-Kept: yes\r\n\r\n")
        )
        #expect(head == "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Kept: yes\r\n\r\n")
        #expect(chunked.framed.framing == .chunked && chunked.isReusable)
        let (old, closed) = try #require(Self.response("HTTP/1.0 404 Not Found\r\nContent-Type: text/plain\r\n\r\n", closing: true))
        #expect(closed == "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n")
        #expect(old.framed.framing == .untilClose && !old.isReusable)
        #expect(try #require(Self.response("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", toHEAD: true)).0.framed.framing == .none)
        #expect(try #require(Self.response("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n")).0.framed.framing == .none)
        #expect(try #require(Self.response("HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\n")).0.isReusable == false)
        #expect(Self.response("HTTP/1.1 2000 OK\r\n\r\n") == nil)
        #expect(Self.response("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n") == nil)
    }

    @Test func chunkedBodiesAreFollowedAcrossReads() {
        let body = Array("5;ext=1\r\nhello\r\n10\r\n0123456789abcdef\r\n0\r\nX-Trailer: 1\r\n\r\n".utf8)
        let next = Array("GET / HTTP/1.1\r\n\r\n".utf8)
        // In one piece, followed by the next request: the end is found exactly.
        var scanner = ChunkedScanner()
        #expect((body + next).withUnsafeBytes { scanner.scan($0) } == .end(body.count))
        // Byte by byte.
        scanner = ChunkedScanner()
        for (index, byte) in body.enumerated() {
            let step = [byte].withUnsafeBytes { scanner.scan($0) }
            #expect(step == (index == body.count - 1 ? .end(1) : .more), "byte \(index)")
        }
        for broken in ["x\r\n", "5\r\nhelloX\r\n", "5\nhello\r\n", "0\r\nX\n", "ffffffffffffffff0\r\n"] {
            var fresh = ChunkedScanner()
            #expect(Array(broken.utf8).withUnsafeBytes { fresh.scan($0) } == .invalid, "\(broken.debugDescription)")
        }
    }

    static let policy = ProxyResponsePolicy(
        securityHeaders: SecurityHeaders(security: .init(frameAncestors: ["https://vle.example.ac.uk"]), styleSources: [])
    )

    /// A browser connection as the upstream handler sees it.
    final class Recorder: RawUpstreamSink {
        func browserHead(for response: RawResponse, _ bytes: UnsafeRawBufferPointer, closing: Bool, allocator: ByteBufferAllocator) -> ByteBuffer {
            response.browserHead(bytes, closing: closing, policy: RawProxyTests.policy, allocator: allocator)
        }
        var written = ""
        var ended: Bool?
        var failed: (any Error, Bool)?
        var pauseAfterWrites = Int.max

        func upstreamWrite(_ buffer: ByteBuffer) -> Bool {
            written += String(buffer: buffer)
            pauseAfterWrites -= 1
            return pauseAfterWrites > 0
        }

        func upstreamReadComplete() {}

        func upstreamEnd(closing: Bool, reusable: Bool) -> Bool {
            ended = closing
            return false
        }

        func upstreamFailed(_ error: any Error, beforeResponse: Bool) { failed = (error, beforeResponse) }
    }

    /// An upstream connection on an embedded channel: the request goes out as given, the response
    /// comes back rewritten in pieces, and the connection is offered back only when reusable.
    @Test func anUpstreamConnectionReadsResponsesInPiecesAndKnowsWhenItIsReusable() throws {
        let channel = EmbeddedChannel()
        let handler = RawUpstreamHandler()
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8888)).wait()
        var reusable: [Bool] = []
        handler.onResponseEnd = { reusable.append($0) }

        // Length-delimited, head and body split across reads, after a 100 Continue.
        let sink = Recorder()
        handler.send(ByteBuffer(string: "GET /a HTTP/1.1\r\n\r\n"), isHEAD: false, browserKeepAlive: true, sink: sink)
        #expect(try channel.readOutbound(as: ByteBuffer.self).map { String(buffer: $0) } == "GET /a HTTP/1.1\r\n\r\n")
        for piece in ["HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nConn", "ection: keep-alive\r\nContent-Length: 10\r\n\r\n01234", "56789"] {
            try channel.writeInbound(ByteBuffer(string: piece))
        }
        #expect(sink.written == "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789")
        #expect(sink.ended == false)
        #expect(reusable == [true])

        // Chunked, on the same connection; a HEAD gets no body whatever its length says.
        let chunks = Recorder()
        handler.send(ByteBuffer(string: "GET /b HTTP/1.1\r\n\r\n"), isHEAD: false, browserKeepAlive: false, sink: chunks)
        _ = try channel.readOutbound(as: ByteBuffer.self)
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"))
        #expect(chunks.ended == nil)
        try channel.writeInbound(ByteBuffer(string: "0\r\n\r\n"))
        #expect(chunks.written == "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
        #expect(chunks.ended == true)  // the browser asked to close
        let head = Recorder()
        handler.send(ByteBuffer(string: "HEAD /c HTTP/1.1\r\n\r\n"), isHEAD: true, browserKeepAlive: true, sink: head)
        _ = try channel.readOutbound(as: ByteBuffer.self)
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"))
        #expect(head.ended == false)
        #expect(reusable == [true, true, true])

        // A body until the server closes: the browser's connection closes with it; not reusable.
        let untilClose = Recorder()
        handler.send(ByteBuffer(string: "GET /d HTTP/1.1\r\n\r\n"), isHEAD: false, browserKeepAlive: true, sink: untilClose)
        _ = try channel.readOutbound(as: ByteBuffer.self)
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.0 200 OK\r\n\r\nall of it"))
        #expect(untilClose.ended == nil)
        try channel.close().wait()
        #expect(untilClose.written == "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it")
        #expect(untilClose.ended == true)
        #expect(reusable == [true, true, true, false])
    }

    @Test func anUpstreamThatFailsSaysWhetherTheBrowserSawAnything() throws {
        for (response, beforeResponse) in [("", true), ("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123", false), ("garbage\r\n\r\n", true)] {
            let channel = EmbeddedChannel()
            let handler = RawUpstreamHandler()
            try channel.pipeline.syncOperations.addHandler(handler)
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8888)).wait()
            let sink = Recorder()
            handler.send(ByteBuffer(string: "GET / HTTP/1.1\r\n\r\n"), isHEAD: false, browserKeepAlive: true, sink: sink)
            if !response.isEmpty { try channel.writeInbound(ByteBuffer(string: response)) }
            if channel.isActive { try channel.close().wait() }
            let failure = try #require(sink.failed)
            #expect(failure.1 == beforeResponse, "\(response.debugDescription)")
            #expect(sink.ended == nil)
        }
    }
}
