/// The `name=value` pairs of a `Cookie` value (RFC 6265 §4.2.1), as byte ranges; a pair without
/// `=` is a name with an empty value. The one cookie parser: the connection's fast path reads
/// the bytes with it, and ``CookieHeader`` reads strings (the router, the WebSocket splice, the
/// portal's pages) through it, so every path finds the same session cookie.
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

    /// Where the value of the first pair called `name` is.
    func value(named name: String) -> Range<Int>? {
        var wanted = name
        return wanted.withUTF8 { wanted in
            for (pairName, pairValue) in self where pairName.count == wanted.count {
                if UnsafeRawBufferPointer(rebasing: bytes[pairName]).elementsEqual(UnsafeRawBufferPointer(wanted)) { return pairValue }
            }
            return nil
        }
    }

    /// The whole pairs (`name=value`) not named in `dropping`, in order.
    func kept(dropping: Set<String>) -> [Range<Int>] {
        compactMap { name, value in
            let pairName = UnsafeRawBufferPointer(rebasing: bytes[name])
            return dropping.contains(where: { $0.utf8.elementsEqual(pairName) }) ? nil : name.lowerBound..<value.upperBound
        }
    }
}

/// `Cookie` request headers as strings, read with ``CookiePairs``.
enum CookieHeader {
    /// The value of the first cookie called `name` in `header`.
    static func value(named name: String, in header: String) -> String? {
        var header = header
        return header.withUTF8 { utf8 in
            let bytes = UnsafeRawBufferPointer(utf8)
            return CookiePairs(bytes: bytes, range: 0..<bytes.count).value(named: name).map {
                String(decoding: UnsafeRawBufferPointer(rebasing: bytes[$0]), as: UTF8.self)
            }
        }
    }

    /// The value of the first cookie called `name` in any of `headers` (the `Cookie` fields).
    static func value<Headers: Sequence>(named name: String, in headers: Headers) -> String? where Headers.Element == String {
        headers.lazy.compactMap { value(named: name, in: $0) }.first
    }

    /// `header` without the cookies in `names`; `nil` when nothing is left.
    static func removing(_ names: Set<String>, from header: String) -> String? {
        guard !names.isEmpty else { return header }
        var header = header
        return header.withUTF8 { utf8 -> String? in
            let bytes = UnsafeRawBufferPointer(utf8)
            let kept = CookiePairs(bytes: bytes, range: 0..<bytes.count).kept(dropping: names)
            guard !kept.isEmpty else { return nil }
            return kept.map { String(decoding: UnsafeRawBufferPointer(rebasing: bytes[$0]), as: UTF8.self) }.joined(separator: "; ")
        }
    }
}
