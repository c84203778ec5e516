import NIOCore

/// HTTP/1.1 message heads and body framing read straight from the bytes (RFC 9112), for every
/// browser connection (``BrowserConnectionHandler`` reads each request head here before anything
/// else does, and the proxy's fast path forwards from it) and for the fast path's upstream
/// responses. The parser is strict on purpose: a bare LF, a folded line, a malformed field or
/// conflicting lengths make it answer `invalid`, never guess.
enum RawHTTP {
    /// The longest upstream response head read here.
    static let headLimit = 32 * 1024

    /// One field line of a head; ranges are byte offsets into the head.
    struct FieldLine {
        var name: Range<Int>
        var value: Range<Int>
        /// The whole line with its CRLF.
        var line: Range<Int>
        var kind: ProxyHeaders.Field
    }

    /// A parsed head: its start line and fields. Offsets are relative to the head's first byte.
    struct Head {
        /// Bytes up to and including the empty line.
        var length: Int
        /// The start line without its CRLF.
        var startLine: Range<Int>
        var fields: [FieldLine]
    }

    enum Parse {
        /// More bytes are needed.
        case incomplete
        /// Not a well-formed HTTP/1.1 head.
        case invalid
        /// Longer than `limit` bytes, or more than `maxFields` fields.
        case tooLarge
        case complete(Head)
    }

    /// Parses the head at the start of `bytes`: at most `limit` bytes and `maxFields` field lines.
    static func parseHead(_ bytes: UnsafeRawBufferPointer, limit: Int = headLimit, maxFields: Int = 1000) -> Parse {
        var fields = [FieldLine]()
        fields.reserveCapacity(16)
        var lineStart = 0
        var startLine: Range<Int>?
        var index = 0
        let count = min(bytes.count, limit)
        while index < count {
            guard bytes[index] == UInt8(ascii: "\n") else {
                index += 1
                continue
            }
            guard index > lineStart, bytes[index - 1] == UInt8(ascii: "\r") else { return .invalid }  // a bare LF
            let end = index - 1  // the line without CRLF: lineStart..<end
            let line = lineStart..<(index + 1)
            index += 1
            lineStart = index
            if startLine == nil {
                guard end > line.lowerBound else { return .invalid }
                startLine = line.lowerBound..<end
                continue
            }
            if end == line.lowerBound {
                guard let startLine else { return .invalid }
                return .complete(Head(length: index, startLine: startLine, fields: fields))
            }
            guard let field = fieldLine(bytes, line.lowerBound..<end, line: line) else { return .invalid }
            guard fields.count < maxFields else { return .tooLarge }
            fields.append(field)
        }
        return bytes.count >= limit ? .tooLarge : .incomplete
    }

    private static func fieldLine(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, line: Range<Int>) -> FieldLine? {
        var colon = range.lowerBound
        while colon < range.upperBound, bytes[colon] != UInt8(ascii: ":") {
            guard isTokenCharacter(bytes[colon]) else { return nil }  // also refuses folded lines (leading space)
            colon += 1
        }
        guard colon > range.lowerBound, colon < range.upperBound else { return nil }
        var start = colon + 1
        var end = range.upperBound
        while start < end, bytes[start] == UInt8(ascii: " ") || bytes[start] == UInt8(ascii: "\t") { start += 1 }
        while end > start, bytes[end - 1] == UInt8(ascii: " ") || bytes[end - 1] == UInt8(ascii: "\t") { end -= 1 }
        for offset in start..<end where bytes[offset] < 0x20 && bytes[offset] != UInt8(ascii: "\t") || bytes[offset] == 0x7F { return nil }
        let name = range.lowerBound..<colon
        return FieldLine(name: name, value: start..<end, line: line, kind: ProxyHeaders.Field(name: UnsafeRawBufferPointer(rebasing: bytes[name])))
    }

    /// RFC 9110 §5.6.2 `tchar`.
    static func isTokenCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "*"),
            UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"),
            UInt8(ascii: "~"):
            true
        default: false
        }
    }

    /// Whether `bytes[range]` equals `literal` ignoring ASCII case.
    static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ literal: StaticString) -> Bool {
        guard range.count == literal.utf8CodeUnitCount else { return false }
        let wanted = UnsafeRawBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount)
        for offset in 0..<range.count {
            let byte = bytes[range.lowerBound + offset]
            let lower = byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte
            if lower != wanted[offset] { return false }
        }
        return true
    }

    /// Whether two byte strings are the same.
    static func same(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        var offset = 0
        while offset < a.count {
            if a[offset] != b[offset] { return false }
            offset += 1
        }
        return true
    }

    /// A decimal `Content-Length` value; `nil` when it is not one.
    static func decimal(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Int? {
        guard !range.isEmpty, range.count <= 18 else { return nil }
        var value = 0
        for offset in range {
            let byte = bytes[offset]
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return value
    }

    /// The comma-separated tokens of a list field's value (`Connection`, `Transfer-Encoding`).
    static func listTokens(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> [Range<Int>] {
        var tokens = [Range<Int>]()
        var start = range.lowerBound
        for offset in range.lowerBound...range.upperBound where offset == range.upperBound || bytes[offset] == UInt8(ascii: ",") {
            var low = start
            var high = offset
            while low < high, bytes[low] == UInt8(ascii: " ") || bytes[low] == UInt8(ascii: "\t") { low += 1 }
            while high > low, bytes[high - 1] == UInt8(ascii: " ") || bytes[high - 1] == UInt8(ascii: "\t") { high -= 1 }
            if low < high { tokens.append(low..<high) }
            start = offset + 1
        }
        return tokens
    }

    /// How a message body is delimited.
    enum Framing: Equatable {
        case none
        case length(Int)
        case chunked
        /// Until the connection closes (responses only).
        case untilClose
    }

    /// What a head's framing and connection fields say.
    struct Framed {
        var framing: Framing
        /// `Connection: close` was sent.
        var close: Bool
        /// `Connection: keep-alive` was sent (what makes an HTTP/1.0 connection persistent).
        var keepAlive: Bool
        /// Names listed in `Connection` besides close, keep-alive and upgrade (lower-cased), to drop.
        var listed: Set<String>
        var upgrade: Bool

        /// Whether the field named at `name` in `bytes` is listed in `Connection` (so not passed on).
        func lists(_ bytes: UnsafeRawBufferPointer, _ name: Range<Int>) -> Bool {
            !listed.isEmpty && listed.contains(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[name]), as: UTF8.self).lowercased())
        }
    }

    /// The body framing and connection options of a head (RFC 9112 §6.3); `nil` for conflicting or
    /// malformed lengths, or a transfer coding that does not end in chunked on a request.
    static func framing(_ bytes: UnsafeRawBufferPointer, _ head: Head, isRequest: Bool) -> Framed? {
        var length: Int?
        var chunked: Bool?
        var framed = Framed(framing: .none, close: false, keepAlive: false, listed: [], upgrade: false)
        for field in head.fields {
            switch field.kind {
            case .contentLength:
                // A second Content-Length, even an equal one, is refused (RFC 9112 §6.3 allows it; a
                // smuggling attempt is likelier than a client that needs it).
                // Digits only, nothing after them (NIO's parser refuses a trailing tab, for one).
                guard let value = decimal(bytes, field.value), length == nil, field.value.upperBound == field.line.upperBound - 2 else { return nil }
                length = value
            case .transferEncoding:
                // A second field is refused too: parsers disagree on how they combine.
                guard chunked == nil else { return nil }
                let tokens = listTokens(bytes, field.value)
                chunked = tokens.last.map { equalsIgnoringCase(bytes, $0, "chunked") } ?? false
            case .connection:
                for token in listTokens(bytes, field.value) {
                    if equalsIgnoringCase(bytes, token, "close") {
                        framed.close = true
                    } else if equalsIgnoringCase(bytes, token, "keep-alive") {
                        framed.keepAlive = true
                    } else if !equalsIgnoringCase(bytes, token, "upgrade") {
                        framed.listed.insert(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[token]), as: UTF8.self).lowercased())
                    }
                }
            case .upgrade:
                framed.upgrade = true
            default:
                break
            }
        }
        if let chunked {
            guard length == nil else { return nil }  // both: a smuggling attempt or a broken server
            if chunked {
                framed.framing = .chunked
            } else {
                guard !isRequest else { return nil }
                framed.framing = .untilClose
            }
        } else if let length {
            framed.framing = length == 0 ? .none : .length(length)
        } else {
            framed.framing = isRequest ? .none : .untilClose
        }
        return framed
    }
}

/// Follows a chunked body (RFC 9112 §7.1) through the bytes as they arrive, to find where it ends;
/// the bytes themselves are forwarded unchanged.
struct ChunkedScanner {
    private enum State {
        case size(digits: Int)
        case extensions
        case sizeLF
        case data(remaining: Int)
        case dataCR
        case dataLF
        /// After the last chunk: trailer field lines (`name: value`, as in a head), then an empty line.
        /// `empty` while the line has no bytes yet; `inValue` after its colon.
        case trailer(empty: Bool, inValue: Bool)
        case trailerLF(empty: Bool)
        case done
    }

    enum Step: Equatable {
        /// Every byte was part of the body; more are to come.
        case more
        /// The body ended after this many of the bytes.
        case end(Int)
        case invalid
    }

    private var state = State.size(digits: 0)
    /// The size of the chunk whose size line is being read.
    private var size = 0

    /// Reads `bytes`, the next bytes of the body.
    mutating func scan(_ bytes: UnsafeRawBufferPointer) -> Step {
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            switch state {
            case .size(let digits):
                if let value = Self.hexValue(byte) {
                    guard digits < 15 else { return .invalid }
                    size = (size << 4) | value
                    state = .size(digits: digits + 1)
                } else if digits > 0, byte == UInt8(ascii: ";") {
                    state = .extensions  // no white space before it: NIO's parser refuses that
                } else if digits > 0, byte == UInt8(ascii: "\r") {
                    state = .sizeLF
                } else {
                    return .invalid
                }
            case .extensions:
                if byte == UInt8(ascii: "\r") { state = .sizeLF } else if byte == UInt8(ascii: "\n") { return .invalid }
            case .sizeLF:
                guard byte == UInt8(ascii: "\n") else { return .invalid }
                state = size == 0 ? .trailer(empty: true, inValue: false) : .data(remaining: size)
                size = 0
            case .data(let remaining):
                let take = min(remaining, bytes.count - index)
                index += take
                state = take == remaining ? .dataCR : .data(remaining: remaining - take)
                continue
            case .dataCR:
                guard byte == UInt8(ascii: "\r") else { return .invalid }
                state = .dataLF
            case .dataLF:
                guard byte == UInt8(ascii: "\n") else { return .invalid }
                state = .size(digits: 0)
            case .trailer(let empty, let inValue):
                if byte == UInt8(ascii: "\r") {
                    guard empty || inValue else { return .invalid }  // a line without a colon
                    state = .trailerLF(empty: empty)
                } else if inValue {
                    guard byte >= 0x20 && byte != 0x7F || byte == UInt8(ascii: "\t") else { return .invalid }
                } else if byte == UInt8(ascii: ":") {
                    guard !empty else { return .invalid }  // no name
                    state = .trailer(empty: false, inValue: true)
                } else {
                    guard RawHTTP.isTokenCharacter(byte) else { return .invalid }  // also a folded or bare-LF line
                    state = .trailer(empty: false, inValue: false)
                }
            case .trailerLF(let empty):
                guard byte == UInt8(ascii: "\n") else { return .invalid }
                if empty {
                    state = .done
                    return .end(index + 1)
                }
                state = .trailer(empty: true, inValue: false)
            case .done:
                return .end(index)
            }
            index += 1
        }
        return .more
    }

    private static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(byte - UInt8(ascii: "a")) + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(byte - UInt8(ascii: "A")) + 10
        default: nil
        }
    }
}
