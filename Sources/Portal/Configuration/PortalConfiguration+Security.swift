import Environments
import Foundation

extension PortalConfiguration {
    /// The `security` section: who may show the portal's pages and environments in a frame.
    struct SecurityConfiguration: Sendable, Equatable {
        /// Origins (the VLEs) allowed to show portal pages and environments in an iframe, besides
        /// the portal itself: `https://moodle.example.ac.uk`, or `https://*.example.ac.uk`. Empty:
        /// only the portal's own pages may frame them.
        var frameAncestors: [String] = []

        /// The value of the CSP `frame-ancestors` directive: `'self'` and the configured origins.
        var frameAncestorsDirective: String {
            (["frame-ancestors", "'self'"] + frameAncestors).joined(separator: " ")
        }
    }

    /// The `http` section: limits and timeouts of every browser connection (portal pages and the
    /// proxy alike). A connection that breaks a limit is answered `400`/`431`/`414` and closed.
    struct HTTPConfiguration: Sendable, Equatable {
        /// From a connection's first byte of a request head (or from accepting it) to the head's
        /// end: a total, so a byte a second cannot hold a connection.
        var headerTimeout: Duration = .seconds(10)
        /// The longest pause while a request body arrives.
        var bodyTimeout: Duration = .seconds(60)
        /// How long a kept-alive connection may wait for its next request.
        var keepAliveTimeout: Duration = .seconds(60)
        /// At shutdown, how long requests in progress may take to finish before their connections
        /// are closed; the whole shutdown then takes at most this plus ``shutdownMargin``.
        var drainTimeout: Duration = .seconds(5)
        /// The largest request head (start line and fields) accepted.
        var maxHeaderBytes = 32 * 1024
        /// The most header fields a request may carry.
        var maxHeaderCount = 100
        /// The longest request target accepted.
        var maxTargetBytes = 8 * 1024

        /// What shutdown may take beyond the drain before the portal's services are cancelled.
        static let shutdownMargin = Duration.seconds(10)
    }

    static func securitySection(_ node: YAMLValue?) throws(ConfigurationError) -> SecurityConfiguration {
        var result = SecurityConfiguration()
        guard let node else { return result }
        let map = try node.mapping(allowing: ["frame_ancestors"])
        for item in try map["frame_ancestors"]?.sequence() ?? [] {
            let text = try item.string()
            guard let origin = frameAncestorSource(text) else {
                throw item.error("expected an origin such as https://moodle.example.ac.uk or https://*.example.ac.uk (scheme, host, optional port; no path)")
            }
            if !result.frameAncestors.contains(origin) { result.frameAncestors.append(origin) }
        }
        return result
    }

    /// `text` as a CSP host source naming one origin (lower-cased), or `nil` when it is not one:
    /// `http(s)://host[:port]`, where the host may start with `*.`; nothing that could end the
    /// directive or add another.
    static func frameAncestorSource(_ text: String) -> String? {
        let lowered = text.lowercased()
        let scheme: String
        if lowered.hasPrefix("https://") { scheme = "https://" } else if lowered.hasPrefix("http://") { scheme = "http://" } else { return nil }
        var rest = Substring(lowered.dropFirst(scheme.count))
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        var hostPart = rest
        if let colon = rest.lastIndex(of: ":"), !rest.hasSuffix("]") {
            let port = rest[rest.index(after: colon)...]
            guard !port.isEmpty, port.count <= 5, port.allSatisfy(\.isASCIIDigit), let number = Int(port), (1...65535).contains(number) else { return nil }
            hostPart = rest[..<colon]
        }
        var labels = hostPart.split(separator: ".", omittingEmptySubsequences: false)
        if labels.first == "*" { labels.removeFirst() }
        guard !labels.isEmpty, labels.allSatisfy({ label in
            !label.isEmpty && label.count <= 63 && label.allSatisfy { $0.isASCIIDigit || ("a"..."z").contains($0) || $0 == "-" }
        }) else { return nil }
        return scheme + rest
    }

    static func httpSection(_ node: YAMLValue?) throws(ConfigurationError) -> HTTPConfiguration {
        var result = HTTPConfiguration()
        guard let node else { return result }
        let map = try node.mapping(allowing: ["header_timeout", "body_timeout", "keep_alive_timeout", "drain_timeout", "max_header_bytes", "max_header_count", "max_target_bytes"])
        for (key, path) in [
            ("header_timeout", \HTTPConfiguration.headerTimeout), ("body_timeout", \.bodyTimeout), ("keep_alive_timeout", \.keepAliveTimeout),
            ("drain_timeout", \.drainTimeout),
        ] {
            guard let value = map[key] else { continue }
            let duration = try value.duration()
            guard duration >= .seconds(1), duration <= .seconds(3600) else { throw value.error("must be between 1 second and 1 hour") }
            result[keyPath: path] = duration
        }
        if let value = map["max_header_bytes"] {
            let bytes = try value.byteSize()
            guard (4096...1 << 20).contains(bytes) else { throw value.error("must be between 4KiB and 1MiB") }
            result.maxHeaderBytes = Int(bytes)
        }
        if let value = map["max_target_bytes"] {
            let bytes = try value.byteSize()
            guard (1024...Int64(result.maxHeaderBytes)).contains(bytes) else { throw value.error("must be between 1KiB and max_header_bytes") }
            result.maxTargetBytes = Int(bytes)
        }
        result.maxHeaderCount = try map["max_header_count"]?.int(in: 16...10_000) ?? result.maxHeaderCount
        return result
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
