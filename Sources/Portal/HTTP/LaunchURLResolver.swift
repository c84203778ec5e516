import HTTPTypes
import LTI

/// Rebuilds the URL a VLE signed from the configured public URL or, when the peer is a trusted
/// reverse proxy, from its `X-Forwarded-Proto/Host/Port` headers. Forwarded headers from any other
/// peer are ignored, so nobody can make the portal verify a signature over a URL of their choosing.
struct LaunchURLResolver: Sendable {
    let publicURL: PublicURL
    let trustedProxies: [IPAddressRange]

    func isTrusted(_ peer: String?) -> Bool {
        guard let peer else { return false }
        return trustedProxies.contains { $0.contains(peer) }
    }

    /// The normalised base string URI for a request to `path` (as received, percent-encoded).
    func baseURI(path: String, headers: HTTPFields, peer: String?) -> String {
        let (scheme, host, port) = endpoint(
            forwardedProto: headers[.xForwardedProto], forwardedHost: headers[.xForwardedHost], forwardedPort: headers[.xForwardedPort], peer: peer
        )
        return SignatureBaseString.baseURI(scheme: scheme, host: host, port: port, path: publicURL.pathPrefix + path)
    }

    /// The scheme, host and port the browser used: the public URL's, or what a trusted proxy says.
    func endpoint(forwardedProto: String?, forwardedHost: String?, forwardedPort: String?, peer: String?) -> (scheme: String, host: String, port: Int?) {
        var scheme = publicURL.scheme
        var host = publicURL.host
        var port = publicURL.port
        if isTrusted(peer) {
            if let proto = Self.first(forwardedProto) {
                scheme = proto.lowercased()
                port = nil
            }
            if let forwardedHost = Self.first(forwardedHost) {
                (host, port) = Self.splitHostPort(forwardedHost)
            }
            if let portText = Self.first(forwardedPort), let forwardedPort = Int(portText) {
                port = forwardedPort
            }
        }
        return (scheme, host, port)
    }

    /// The origin (RFC 6454) the browser used, serialised as browsers send it in `Origin`.
    func origin(forwardedProto: String?, forwardedHost: String?, forwardedPort: String?, peer: String?) -> String {
        let (scheme, host, port) = endpoint(forwardedProto: forwardedProto, forwardedHost: forwardedHost, forwardedPort: forwardedPort, peer: peer)
        return OriginPolicy.serialize(scheme: scheme, host: host, port: port)
    }

    /// Whether the browser reached the portal over https (for the cookie's Secure flag).
    func isHTTPS(headers: HTTPFields, peer: String?) -> Bool {
        isHTTPS(forwardedProto: headers[.xForwardedProto], peer: peer)
    }

    /// The same, from the value of `X-Forwarded-Proto` (the proxy reads it from NIO's headers).
    func isHTTPS(forwardedProto: String?, peer: String?) -> Bool {
        if isTrusted(peer), let proto = Self.first(forwardedProto) { return proto.lowercased() == "https" }
        return publicURL.isHTTPS
    }

    private static func first(_ value: String?) -> String? {
        guard let value else { return nil }
        let item = value.split(separator: ",").first.map { $0.trimmingWhitespaceSubstring() } ?? ""
        return item.isEmpty ? nil : item
    }

    private static func splitHostPort(_ value: String) -> (String, Int?) {
        if value.hasPrefix("["), let close = value.firstIndex(of: "]") {
            let host = String(value[...close])
            let rest = value[value.index(after: close)...]
            return (host, rest.hasPrefix(":") ? Int(rest.dropFirst()) : nil)
        }
        if let colon = value.lastIndex(of: ":"), let port = Int(value[value.index(after: colon)...]) {
            return (String(value[..<colon]), port)
        }
        return (value, nil)
    }
}

extension Substring {
    func trimmingWhitespaceSubstring() -> String { String(self).trimmingWhitespace() }
}
