import NIOCore

/// Why a browser connection's request is answered by the connection itself, before any route sees
/// it, and then closed: the request cannot be read safely, breaks a limit, or took too long.
enum RequestProblem: Error, Equatable, Sendable {
    /// Not a well-formed HTTP/1.x request (`400`); says what was wrong.
    case malformed(String)
    /// The head is larger than `http.max_header_bytes` or has more than `http.max_header_count`
    /// fields (`431`).
    case headersTooLarge
    /// The request target is longer than `http.max_target_bytes` (`414`).
    case targetTooLong
    /// The head did not arrive within `http.header_timeout`, or the body paused longer than
    /// `http.body_timeout` (`408`).
    case timedOut

    var status: Int {
        switch self {
        case .malformed: 400
        case .headersTooLarge: 431
        case .targetTooLong: 414
        case .timedOut: 408
        }
    }

    var reasonPhrase: String {
        switch self {
        case .malformed: "Bad Request"
        case .headersTooLarge: "Request Header Fields Too Large"
        case .targetTooLong: "URI Too Long"
        case .timedOut: "Request Timeout"
        }
    }

    /// What the client is told.
    var detail: String {
        switch self {
        case .malformed(let what): "The portal could not read this request: \(what)."
        case .headersTooLarge:
            "The request's headers are larger than the portal accepts. If this keeps happening in your browser, clear this site's cookies and open the activity from your course again."
        case .targetTooLong: "The address is longer than the portal accepts."
        case .timedOut: "The request did not arrive in time."
        }
    }

    /// A short name for the log.
    var logReason: String {
        switch self {
        case .malformed(let what): "malformed: \(what)"
        case .headersTooLarge: "headers too large"
        case .targetTooLong: "target too long"
        case .timedOut: "timed out"
        }
    }
}

/// The limits every request head is read with (the `http` section of the configuration).
struct RequestLimits: Sendable, Equatable {
    var maxHeaderBytes: Int
    var maxHeaderCount: Int
    var maxTargetBytes: Int

    static let standard = RequestLimits(maxHeaderBytes: 32 * 1024, maxHeaderCount: 100, maxTargetBytes: 8 * 1024)
}

extension RawRequest {
    /// The longest method accepted (WebDAV's are the longest in use).
    static let maxMethodLength = 20

    /// Reads a complete request head, or says why it cannot be forwarded anywhere.
    static func read(_ bytes: UnsafeRawBufferPointer, limits: RequestLimits) -> Result<(RawHTTP.Head, RawRequest), RequestProblem>? {
        switch RawHTTP.parseHead(bytes, limit: limits.maxHeaderBytes, maxFields: limits.maxHeaderCount) {
        case .incomplete:
            if let problem = checkPartial(bytes, limits: limits) { return .failure(problem) }
            return nil
        case .tooLarge:
            return .failure(checkPartial(bytes, limits: limits) ?? .headersTooLarge)
        case .invalid:
            return .failure(checkPartial(bytes, limits: limits) ?? .malformed("a header line is not well-formed (bare LF, folded line, bad name or control character)"))
        case .complete(let head):
            do {
                return .success((head, try RawRequest(validating: bytes, head, limits: limits)))
            } catch {
                return .failure(error)
            }
        }
    }

    /// A problem visible before the head is complete: a start line that is not HTTP/1.x (HTTP/0.9,
    /// TLS on the plain port, garbage) or a target over the limit, so such a client is answered at
    /// once instead of waiting for the header timeout.
    static func checkPartial(_ bytes: UnsafeRawBufferPointer, limits: RequestLimits) -> RequestProblem? {
        var index = 0
        while index < bytes.count, bytes[index] != UInt8(ascii: " ") {
            guard isMethodCharacter(bytes[index]) else { return .malformed("the method must be upper-case letters (\(describe(bytes[index])) found)") }
            index += 1
            guard index <= maxMethodLength else { return .malformed("the method is too long") }
        }
        guard index < bytes.count else { return nil }
        guard index > 0 else { return .malformed("the request line starts with a space") }
        let targetStart = index + 1
        index = targetStart
        while index < bytes.count, bytes[index] != UInt8(ascii: " ") {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\n") { return .malformed("the request line has no HTTP version (HTTP/0.9 is not served)") }
            guard byte > 0x20, byte != 0x7F else { return .malformed("the target contains \(describe(byte))") }
            index += 1
            guard index - targetStart <= limits.maxTargetBytes else { return .targetTooLong }
        }
        return nil
    }

    /// Reads the start line and framing of a complete head; throws ``RequestProblem`` for anything
    /// that is not plain HTTP/1.x with one `Host` and unambiguous framing.
    init(validating bytes: UnsafeRawBufferPointer, _ head: RawHTTP.Head, limits: RequestLimits) throws(RequestProblem) {
        let line = head.startLine
        let slice = UnsafeRawBufferPointer(rebasing: bytes[line])
        if let problem = Self.checkPartial(slice, limits: limits) { throw problem }
        guard let space = line.first(where: { bytes[$0] == UInt8(ascii: " ") }), space > line.lowerBound, line.upperBound - space > 10 else {
            throw .malformed("the request line is not METHOD TARGET HTTP/1.1")
        }
        let versionStart = line.upperBound - 8
        guard bytes[versionStart - 1] == UInt8(ascii: " "), versionStart - 1 > space + 1 else { throw .malformed("the request line is not METHOD TARGET HTTP/1.1") }
        let version = UnsafeRawBufferPointer(rebasing: bytes[versionStart..<line.upperBound])
        guard version.starts(with: "HTTP/1.".utf8), version[7] == UInt8(ascii: "1") || version[7] == UInt8(ascii: "0") else {
            throw .malformed("only HTTP/1.0 and HTTP/1.1 are served")
        }
        for offset in (space + 1)..<(versionStart - 1) where bytes[offset] <= 0x20 || bytes[offset] == 0x7F {
            throw .malformed("the target contains \(Self.describe(bytes[offset]))")
        }
        let method = UnsafeRawBufferPointer(rebasing: bytes[line.lowerBound..<space])
        if method.elementsEqual("CONNECT".utf8) || method.elementsEqual("PRI".utf8) {
            throw .malformed("\(String(decoding: method, as: UTF8.self)) is not served here")  // a tunnel, or HTTP/2's preface
        }
        let http11 = version[7] == UInt8(ascii: "1")
        var hosts = 0
        var transferEncoding = false
        for field in head.fields {
            if field.kind == .host { hosts += 1 }
            if field.kind == .transferEncoding { transferEncoding = true }
        }
        guard hosts <= 1, !http11 || hosts == 1 else { throw .malformed(hosts == 0 ? "an HTTP/1.1 request needs a Host header" : "more than one Host header") }
        guard !transferEncoding || http11 else { throw .malformed("Transfer-Encoding is not allowed in an HTTP/1.0 request") }
        guard let framed = RawHTTP.framing(bytes, head, isRequest: true) else {
            throw .malformed("the body's length is ambiguous (Content-Length twice or with Transfer-Encoding, or a coding that does not end in chunked)")
        }
        self.init(head: head, framed: framed, method: line.lowerBound..<space, target: (space + 1)..<(versionStart - 1), http11: http11)
    }

    private static func isMethodCharacter(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z")
    }

    private static func describe(_ byte: UInt8) -> String {
        byte >= 0x21 && byte < 0x7F ? "'\(Character(Unicode.Scalar(byte)))'" : "byte 0x\(String(byte, radix: 16, uppercase: true))"
    }
}

/// Reads a connection's request heads as their bytes arrive without reading the same bytes over
/// and over: a head can only end, and a start line only be complete, where a line feed arrives,
/// so bytes without one are only checked against the limits (a client trickling a 32 KiB head a
/// byte at a time costs one pass per line, not one per byte).
struct HeadReader {
    let limits: RequestLimits
    /// How many of the pending bytes were read without finding a whole head.
    private var examined = 0
    /// A line feed was among them (the start line is complete and was checked).
    private var startLineDone = false

    init(limits: RequestLimits) {
        self.limits = limits
    }

    /// The head at the start of `bytes` (the pending bytes, which grow between calls until a head
    /// is taken), or why it is refused, or `nil` while it is incomplete.
    mutating func read(_ bytes: UnsafeRawBufferPointer) -> Result<(RawHTTP.Head, RawRequest), RequestProblem>? {
        if examined > 0, bytes.count > examined, !UnsafeRawBufferPointer(rebasing: bytes[examined...]).contains(UInt8(ascii: "\n")) {
            defer { examined = bytes.count }
            if !startLineDone, let problem = RawRequest.checkPartial(bytes, limits: limits) { return finished(.failure(problem)) }
            return bytes.count >= limits.maxHeaderBytes ? finished(.failure(.headersTooLarge)) : nil
        }
        guard let result = RawRequest.read(bytes, limits: limits) else {
            examined = bytes.count
            startLineDone = bytes.contains(UInt8(ascii: "\n"))
            return nil
        }
        return finished(result)
    }

    private mutating func finished(_ result: Result<(RawHTTP.Head, RawRequest), RequestProblem>) -> Result<(RawHTTP.Head, RawRequest), RequestProblem> {
        examined = 0
        startLineDone = false
        return result
    }
}
