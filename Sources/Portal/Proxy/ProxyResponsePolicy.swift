/// What the portal changes in every response from an environment's server, on both proxy paths
/// (the router's ``ProxyHeaders/response(_:policy:)`` and the fast path's
/// ``RawResponse/browserHead(_:closing:policy:allocator:)``): both drop the fields named here from
/// what they copy and write ``fields(_:)`` instead.
///
/// - HTML is never stored by a cache (`Cache-Control: no-store`): a page of a student's server is
///   theirs alone, even on a shared computer, and sends no referrer to other sites
///   (`Referrer-Policy: same-origin`).
/// - Who may show it in a frame is the portal's decision (`security.frame_ancestors`), not the
///   server's: the server's `Content-Security-Policy` loses its `frame-ancestors` directives and
///   gets the portal's (``SecurityHeaders/environmentPolicy(upstream:)``); HTML without one gets
///   one. `X-Frame-Options` (which cannot name the VLE) is dropped.
struct ProxyResponsePolicy: Sendable, Equatable {
    let securityHeaders: SecurityHeaders

    /// The response fields this policy decides.
    enum Field: Sendable {
        case contentType, cacheControl, contentSecurityPolicy, xFrameOptions, referrerPolicy

        /// The field a name is (any letter case), or `nil` for one the policy leaves alone.
        init?(name: UnsafeRawBufferPointer) {
            func named(_ lowercase: StaticString) -> Bool { RawHTTP.equalsIgnoringCase(name, 0..<name.count, lowercase) }
            switch name.count {
            case 12 where named("content-type"): self = .contentType
            case 13 where named("cache-control"): self = .cacheControl
            case 15 where named("x-frame-options"): self = .xFrameOptions
            case 15 where named("referrer-policy"): self = .referrerPolicy
            case 23 where named("content-security-policy"): self = .contentSecurityPolicy
            default: return nil
            }
        }

        init?(name: String) {
            var name = name
            guard let field = name.withUTF8({ Field(name: UnsafeRawBufferPointer($0)) }) else { return nil }
            self = field
        }
    }

    /// The values of the server's fields that the policy decides.
    struct Seen: Sendable {
        var contentType: String?
        var cacheControl: String?
        var referrerPolicy: String?
        var policies: [String] = []

        mutating func add(_ field: Field, _ value: String) {
            switch field {
            case .contentType: contentType = contentType ?? value
            case .cacheControl: cacheControl = cacheControl.map { "\($0), \(value)" } ?? value
            case .referrerPolicy: referrerPolicy = value
            case .contentSecurityPolicy: policies.append(value)
            case .xFrameOptions: break
            }
        }
    }

    /// The fields the browser gets in place of the ones seen.
    func fields(_ seen: Seen) -> [(name: String, value: String)] {
        var fields = [(name: String, value: String)]()
        let isHTML = seen.contentType.map(Self.isHTML) ?? false
        if let contentType = seen.contentType { fields.append(("Content-Type", contentType)) }
        if isHTML {
            fields.append(("Cache-Control", "no-store"))
            fields.append(("Referrer-Policy", SecurityHeaders.referrerPolicy))
        } else {
            if let cacheControl = seen.cacheControl { fields.append(("Cache-Control", cacheControl)) }
            if let referrerPolicy = seen.referrerPolicy { fields.append(("Referrer-Policy", referrerPolicy)) }
        }
        if !seen.policies.isEmpty {
            fields.append(("Content-Security-Policy", securityHeaders.environmentPolicy(upstream: seen.policies.joined(separator: ", "))))
        } else if isHTML {
            fields.append(("Content-Security-Policy", securityHeaders.frameAncestors))  // what environmentPolicy(upstream: nil) is
        }
        return fields
    }

    /// Whether a `Content-Type` is HTML (`text/html`, any case, parameters or not), read in place:
    /// it is asked of every proxied response.
    static func isHTML(_ contentType: String) -> Bool {
        let wanted = "text/html".utf8
        var bytes = contentType.utf8.drop { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }.makeIterator()
        for expected in wanted {
            guard let byte = bytes.next(), (byte | 0x20) == expected || byte == expected else { return false }
        }
        guard let next = bytes.next() else { return true }
        return next == UInt8(ascii: ";") || next == UInt8(ascii: " ") || next == UInt8(ascii: "\t")
    }
}
