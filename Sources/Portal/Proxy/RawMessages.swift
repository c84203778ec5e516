import Environments
import NIOCore

/// A browser's request head as the fast path reads it from the bytes: its start line, framing and
/// the few fields that decide whether and where it is forwarded.
struct RawRequest {
    let head: RawHTTP.Head
    let framed: RawHTTP.Framed
    let method: Range<Int>
    let target: Range<Int>
    let http11: Bool

    init(head: RawHTTP.Head, framed: RawHTTP.Framed, method: Range<Int>, target: Range<Int>, http11: Bool) {
        self.head = head
        self.framed = framed
        self.method = method
        self.target = target
        self.http11 = http11
    }

    /// Reads the start line (`METHOD SP target SP HTTP/1.x`) and framing with the standard limits;
    /// `nil` when the request is not plain HTTP/1.x (see ``init(validating:_:limits:)`` for why).
    init?(_ bytes: UnsafeRawBufferPointer, _ head: RawHTTP.Head) {
        do {
            try self.init(validating: bytes, head, limits: .standard)
        } catch {
            return nil
        }
    }

    /// Whether the browser keeps the connection open after this exchange.
    var isKeepAlive: Bool { http11 ? !framed.close : framed.keepAlive }

    /// Whether the method is HEAD (methods are case-sensitive).
    func isHEAD(_ bytes: UnsafeRawBufferPointer) -> Bool { UnsafeRawBufferPointer(rebasing: bytes[method]).elementsEqual("HEAD".utf8) }

    /// Whether the target starts with `prefix`.
    func targetHasPrefix(_ bytes: UnsafeRawBufferPointer, _ prefix: StaticString) -> Bool {
        target.count >= prefix.utf8CodeUnitCount
            && UnsafeRawBufferPointer(rebasing: bytes[target]).starts(with: UnsafeRawBufferPointer(start: prefix.utf8Start, count: prefix.utf8CodeUnitCount))
    }

    /// The first value of a field, as a string (for the rarely needed ones).
    func value(_ bytes: UnsafeRawBufferPointer, of kind: ProxyHeaders.Field, named name: StaticString? = nil) -> String? {
        for field in head.fields where field.kind == kind {
            if let name, !RawHTTP.equalsIgnoringCase(bytes, field.name, name) { continue }
            return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[field.value]), as: UTF8.self)
        }
        return nil
    }

    /// Where the value of the first cookie called `name` in the `Cookie` fields is in `bytes`.
    func cookie(_ bytes: UnsafeRawBufferPointer, named name: String) -> Range<Int>? {
        for field in head.fields where field.kind == .cookie {
            if let value = CookiePairs(bytes: bytes, range: field.value).value(named: name) { return value }
        }
        return nil
    }

    /// The head to send to the environment's server: the browser's start line and fields with the
    /// rules of ``ProxyHeaders/request(method:target:authority:headers:client:authorization:dropCookies:)``
    /// (hop-by-hop fields, the portal's cookies and a browser's `Authorization` and `X-Portal-Secret`
    /// dropped, the server's secret `authorization` and `X-Forwarded-*` added), copied line by line.
    /// Only for body-less requests.
    func upstreamHead(
        _ bytes: UnsafeRawBufferPointer, client: ProxyHeaders.Client, authorization: String, dropCookies: Set<String>, allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        var out = allocator.buffer(capacity: head.length + authorization.utf8.count + 176)
        out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[head.startLine.lowerBound..<(target.upperBound + 1)]))
        out.writeStaticString("HTTP/1.1\r\n")
        var forwardedFor: String?
        var host: Range<Int>?
        for field in head.fields {
            switch ProxyHeaders.RequestFieldRule(field.kind, trusted: client.trusted) {
            case .copy:
                if framed.lists(bytes, field.name) { continue }
            case .host:
                if host == nil { host = field.value }
            case .drop, .transferEncoding:
                continue
            case .forwardedFor:
                if client.trusted {
                    let value = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[field.value]), as: UTF8.self)
                    forwardedFor = forwardedFor.map { "\($0), \(value)" } ?? value
                }
                continue
            case .cookie:
                writeCookie(bytes, field.value, dropping: dropCookies, to: &out)
                continue
            }
            out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[field.line]))
        }
        let hostValue = client.trusted ? nil : host.map { String(decoding: UnsafeRawBufferPointer(rebasing: bytes[$0]), as: UTF8.self) }
        for field in ProxyHeaders.added(client: client, authorization: authorization, host: hostValue, forwardedFor: forwardedFor) {
            out.writeString(field.name)
            out.writeStaticString(": ")
            out.writeString(field.value)
            out.writeStaticString("\r\n")
        }
        out.writeStaticString("\r\n")
        return out
    }

    /// A `Cookie` field without the pairs named in `dropping`; nothing when no pair is left.
    private func writeCookie(_ bytes: UnsafeRawBufferPointer, _ value: Range<Int>, dropping: Set<String>, to out: inout ByteBuffer) {
        var wrote = false
        for pair in CookiePairs(bytes: bytes, range: value).kept(dropping: dropping) {
            out.writeStaticString(wrote ? "; " : "Cookie: ")
            out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[pair]))
            wrote = true
        }
        if wrote { out.writeStaticString("\r\n") }
    }
}

/// An environment server's response head as the fast path reads it, and the head the browser gets.
struct RawResponse {
    let head: RawHTTP.Head
    let status: Int
    let framed: RawHTTP.Framed
    let http11: Bool

    /// Reads `HTTP/1.x SSS reason`; `nil` for anything else.
    init?(_ bytes: UnsafeRawBufferPointer, _ head: RawHTTP.Head, toHEAD: Bool) {
        let line = head.startLine
        guard line.count >= 12, UnsafeRawBufferPointer(rebasing: bytes[line]).starts(with: "HTTP/1.".utf8), bytes[line.lowerBound + 8] == UInt8(ascii: " "),
            let status = RawHTTP.decimal(bytes, (line.lowerBound + 9)..<(line.lowerBound + 12)), (100...999).contains(status),
            line.count == 12 || bytes[line.lowerBound + 12] == UInt8(ascii: " "),
            var framed = RawHTTP.framing(bytes, head, isRequest: false)
        else { return nil }
        if toHEAD || status < 200 || status == 204 || status == 304 { framed.framing = .none }
        self.head = head
        self.status = status
        self.framed = framed
        self.http11 = bytes[line.lowerBound + 7] == UInt8(ascii: "1")
    }

    /// Whether the server keeps the connection for another request.
    var isReusable: Bool { framed.framing != .untilClose && (http11 ? !framed.close : framed.keepAlive) }

    /// The head for the browser: HTTP/1.1, the server's status and end-to-end fields with
    /// ``ProxyResponsePolicy`` applied, framing fields as they came (the body is forwarded
    /// unchanged), and `Connection: close` when the browser's connection ends with this response.
    func browserHead(_ bytes: UnsafeRawBufferPointer, closing: Bool, policy: ProxyResponsePolicy, requestID: String? = nil, allocator: ByteBufferAllocator) -> ByteBuffer {
        var out = allocator.buffer(capacity: head.length + 96)
        out.writeStaticString("HTTP/1.1")
        out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[(head.startLine.lowerBound + 8)..<head.startLine.upperBound]))
        out.writeStaticString("\r\n")
        var seen = ProxyResponsePolicy.Seen()
        for field in head.fields {
            switch field.kind {
            case .connection, .upgrade, .hopByHop:
                continue
            case .transferEncoding:
                break  // the chunks are forwarded as they are
            default:
                if framed.lists(bytes, field.name) { continue }
                if let decided = ProxyResponsePolicy.Field(name: UnsafeRawBufferPointer(rebasing: bytes[field.name])) {
                    seen.add(decided, String(decoding: UnsafeRawBufferPointer(rebasing: bytes[field.value]), as: UTF8.self))
                    continue
                }
            }
            out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[field.line]))
        }
        for field in policy.fields(seen) {
            out.writeString(field.name)
            out.writeStaticString(": ")
            out.writeString(field.value)
            out.writeStaticString("\r\n")
        }
        if let requestID {
            out.writeStaticString("X-Request-Id: ")
            out.writeString(requestID)
            out.writeStaticString("\r\n")
        }
        if closing { out.writeStaticString("Connection: close\r\n") }
        out.writeStaticString("\r\n")
        return out
    }
}
