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
        var wanted = name
        return wanted.withUTF8 { wanted in
            for field in head.fields where field.kind == .cookie {
                for (pairName, pairValue) in CookiePairs(bytes: bytes, range: field.value) where pairName.count == wanted.count {
                    if UnsafeRawBufferPointer(rebasing: bytes[pairName]).elementsEqual(UnsafeRawBufferPointer(wanted)) { return pairValue }
                }
            }
            return nil
        }
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
        var forwardedFor: ByteBuffer?
        var host: Range<Int>?
        for field in head.fields {
            switch field.kind {
            case .host:
                if host == nil { host = field.value }
            case .contentLength, .other:
                if framed.lists(bytes, field.name) { continue }
            case .forwardedInfo:
                if !client.trusted { continue }
            case .forwardedFor:
                if client.trusted {
                    if forwardedFor == nil { forwardedFor = allocator.buffer(capacity: 64) } else { forwardedFor?.writeStaticString(", ") }
                    forwardedFor?.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[field.value]))
                }
                continue
            case .cookie:
                writeCookie(bytes, field.value, dropping: dropCookies, to: &out)
                continue
            case .transferEncoding, .expect, .authorization, .serverSecret, .connection, .upgrade, .hopByHop:
                continue
            }
            out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[field.line]))
        }
        out.writeString(JupyterCommand.secretHeader)
        out.writeStaticString(": ")
        out.writeString(authorization)
        out.writeStaticString("\r\n")
        if let address = client.address {
            out.writeStaticString("X-Forwarded-For: ")
            if var forwardedFor {
                out.writeBuffer(&forwardedFor)
                out.writeStaticString(", ")
            }
            out.writeString(address)
            out.writeStaticString("\r\n")
            if !client.trusted {
                out.writeStaticString("X-Real-IP: ")
                out.writeString(address)
                out.writeStaticString("\r\n")
            }
        }
        if !client.trusted {
            out.writeStaticString("X-Forwarded-Proto: ")
            out.writeString(client.scheme)
            out.writeStaticString("\r\n")
            if let host {
                out.writeStaticString("X-Forwarded-Host: ")
                out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[host]))
                out.writeStaticString("\r\n")
            }
        }
        out.writeStaticString("\r\n")
        return out
    }

    /// A `Cookie` field without the pairs named in `dropping`; nothing when no pair is left.
    private func writeCookie(_ bytes: UnsafeRawBufferPointer, _ value: Range<Int>, dropping: Set<String>, to out: inout ByteBuffer) {
        var wrote = false
        for (name, pairValue) in CookiePairs(bytes: bytes, range: value) {
            let pairName = UnsafeRawBufferPointer(rebasing: bytes[name])
            if dropping.contains(where: { $0.utf8.elementsEqual(pairName) }) { continue }
            out.writeStaticString(wrote ? "; " : "Cookie: ")
            out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[name.lowerBound..<pairValue.upperBound]))
            wrote = true
        }
        if wrote { out.writeStaticString("\r\n") }
    }
}

/// The `name=value` pairs of a `Cookie` value (RFC 6265 §4.2.1), as byte ranges; a pair without
/// `=` is a name with an empty value.
struct CookiePairs: Sequence, IteratorProtocol {
    let bytes: UnsafeRawBufferPointer
    let range: Range<Int>
    private var index: Int

    init(bytes: UnsafeRawBufferPointer, range: Range<Int>) {
        self.bytes = bytes
        self.range = range
        self.index = range.lowerBound
    }

    mutating func next() -> (name: Range<Int>, value: Range<Int>)? {
        while index < range.upperBound {
            while index < range.upperBound, bytes[index] == UInt8(ascii: " ") { index += 1 }
            let start = index
            while index < range.upperBound, bytes[index] != UInt8(ascii: ";") { index += 1 }
            var end = index
            index += 1
            while end > start, bytes[end - 1] == UInt8(ascii: " ") { end -= 1 }
            guard end > start else { continue }
            let equals = (start..<end).first { bytes[$0] == UInt8(ascii: "=") } ?? end
            return (start..<equals, Swift.min(equals + 1, end)..<end)
        }
        return nil
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
    func browserHead(_ bytes: UnsafeRawBufferPointer, closing: Bool, policy: ProxyResponsePolicy, allocator: ByteBufferAllocator) -> ByteBuffer {
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
        if closing { out.writeStaticString("Connection: close\r\n") }
        out.writeStaticString("\r\n")
        return out
    }
}
