/// RFC 3986 percent-encoding as OAuth 1.0 (RFC 5849 §3.6) requires it, and the
/// `application/x-www-form-urlencoded` decoding that LTI 1.1 launches arrive in.
public enum PercentEncoding {
    /// Encodes `string` so that only the unreserved set `A-Za-z0-9-._~` stays as it is;
    /// every other UTF-8 byte becomes `%XX` with upper-case hex (RFC 5849 §3.6).
    public static func encode(_ string: String) -> String {
        var out = [UInt8]()
        out.reserveCapacity(string.utf8.count)
        for byte in string.utf8 {
            if isUnreserved(byte) {
                out.append(byte)
            } else {
                out.append(UInt8(ascii: "%"))
                out.append(hexDigits[Int(byte >> 4)])
                out.append(hexDigits[Int(byte & 0x0F)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes a percent-encoded component. With `plusAsSpace` (form encoding) a `+` becomes a space.
    /// - Returns: `nil` when an escape is malformed or the bytes are not valid UTF-8.
    public static func decode(_ string: Substring, plusAsSpace: Bool) -> String? {
        var bytes = [UInt8]()
        bytes.reserveCapacity(string.utf8.count)
        var iterator = string.utf8.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "%"):
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                    return nil
                }
                bytes.append(high << 4 | low)
            case UInt8(ascii: "+") where plusAsSpace:
                bytes.append(UInt8(ascii: " "))
            default:
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    /// Parses an `application/x-www-form-urlencoded` string (a request body or a URL query)
    /// into its name/value pairs, in order, keeping duplicates and empty values.
    /// - Throws: ``LaunchRefusal`` with reason ``LaunchRefusal/Reason/malformedRequest`` on a bad escape
    ///   or a NUL character (`%00`) anywhere.
    public static func parseForm(_ form: Substring) throws(LaunchRefusal) -> [Parameter] {
        var pairs = [Parameter]()
        for field in form.split(separator: "&", omittingEmptySubsequences: true) {
            let name: Substring
            let value: Substring
            if let equals = field.firstIndex(of: "=") {
                name = field[..<equals]
                value = field[field.index(after: equals)...]
            } else {
                name = field
                value = ""
            }
            guard let decodedName = decode(name, plusAsSpace: true), let decodedValue = decode(value, plusAsSpace: true) else {
                throw LaunchRefusal(.malformedRequest, "The launch form contains a malformed percent-escape.")
            }
            guard !containsNUL(decodedName), !containsNUL(decodedValue) else { throw nulRefusal }
            pairs.append(Parameter(name: decodedName, value: decodedValue))
        }
        return pairs
    }

    /// Whether `text` holds a NUL character, which no launch may carry: it means nothing in any
    /// LTI field, and PostgreSQL cannot store it in text.
    static func containsNUL(_ text: String) -> Bool {
        text.utf8.contains(0)
    }

    /// The refusal of a launch with a NUL character in a parameter.
    static let nulRefusal = LaunchRefusal(
        .malformedRequest, "The launch contains a NUL character (%00) in a parameter, which no launch may carry. Ask the VLE's administrators to check what the link sends."
    )

    private static let hexDigits = Array("0123456789ABCDEF".utf8)

    private static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        default: return nil
        }
    }
}

/// One decoded name/value pair of a launch, in the order it arrived.
public struct Parameter: Sendable, Hashable {
    /// The decoded parameter name.
    public var name: String
    /// The decoded parameter value (possibly empty).
    public var value: String

    /// Creates a pair.
    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}
