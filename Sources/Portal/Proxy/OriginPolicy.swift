import Foundation

/// The rule that keeps other websites from driving a student's server with the student's cookie
/// (cross-site request forgery): a request under `/user/` that can change something — any method
/// but `GET`, `HEAD` and `OPTIONS` — and every WebSocket handshake must come from the environment's
/// own origin. Every proxy path asks it: the fast path (which leaves a request it refuses to the
/// router), the router and the WebSocket splice.
///
/// - `Origin` present: it must be the environment's origin exactly (scheme, host, port); `null`
///   (sandboxed frames, some redirects) is refused.
/// - No `Origin`, `Sec-Fetch-Site` present: it must be `same-origin`.
/// - Neither: allowed. Browsers send `Origin` on every cross-origin request that is not a
///   navigation (and on every WebSocket handshake) and `Sec-Fetch-Site` on every request, so a
///   request with neither comes from a program, not from a page in a browser; a program that has
///   the student's session cookie (HttpOnly, so not from any page's script) could act as the student
///   anyway. Jupyter's own clients (`jupyter_server`'s kernel and terminal APIs through `requests`
///   or `websockets`) work this way.
enum OriginPolicy {
    /// What the browser says about where a request comes from.
    struct Claims: Equatable, Sendable {
        var origin: String?
        var fetchSite: String?
    }

    /// Whether a method is one the rule leaves alone (it cannot change anything on a server that
    /// follows HTTP's semantics, as Jupyter does).
    static func isSafe(method: String) -> Bool {
        method == "GET" || method == "HEAD" || method == "OPTIONS"
    }

    /// The same, for a method as bytes.
    static func isSafe(method: UnsafeRawBufferPointer) -> Bool {
        method.elementsEqual("GET".utf8) || method.elementsEqual("HEAD".utf8) || method.elementsEqual("OPTIONS".utf8)
    }

    /// Whether a request with `claims` may reach an environment served at the origin `expected`
    /// (as ``serialize(scheme:host:port:)`` writes it).
    static func allows(_ claims: Claims, expected: String) -> Bool {
        if let origin = claims.origin {
            return normalized(origin) == expected
        }
        if let site = claims.fetchSite {
            return site.trimmingWhitespace().lowercased() == "same-origin"
        }
        return true
    }

    /// `scheme://host[:port]`, lower-cased, without the scheme's default port.
    static func serialize(scheme: String, host: String, port: Int?) -> String {
        let scheme = scheme.lowercased()
        let defaultPort = scheme == "https" ? 443 : scheme == "http" ? 80 : nil
        let portPart = port.flatMap { $0 == defaultPort ? nil : ":\($0)" } ?? ""
        return "\(scheme)://\(host.lowercased())\(portPart)"
    }

    /// An `Origin` value in the form of ``serialize(scheme:host:port:)``; `nil` for `null` or
    /// anything that is not `scheme://host[:port]`.
    static func normalized(_ origin: String) -> String? {
        let text = origin.trimmingWhitespace()
        guard let separator = text.range(of: "://") else { return nil }
        let scheme = text[..<separator.lowerBound]
        var authority = text[separator.upperBound...]
        guard !scheme.isEmpty, !authority.isEmpty, !authority.contains("/"), !authority.contains("@") else { return nil }
        var port: Int?
        if let colon = authority.lastIndex(of: ":"), !authority[colon...].contains("]") {
            guard let number = Int(authority[authority.index(after: colon)...]), (0...65535).contains(number) else { return nil }
            port = number
            authority = authority[..<colon]
        }
        guard !authority.isEmpty else { return nil }
        return serialize(scheme: String(scheme), host: String(authority), port: port)
    }
}
