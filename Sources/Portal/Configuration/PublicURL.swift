import Foundation

/// The URL students and VLEs reach the portal at (`public_url`): scheme, host, optional port and an
/// optional path prefix that a front proxy strips before requests reach the portal.
struct PublicURL: Sendable, Equatable, CustomStringConvertible {
    var scheme: String
    var host: String
    var port: Int?
    var pathPrefix: String

    /// Parses an absolute http(s) URL without query or fragment.
    init?(_ text: String) {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
            scheme == "http" || scheme == "https", let host = components.host, !host.isEmpty,
            components.query == nil, components.fragment == nil, components.user == nil
        else { return nil }
        self.scheme = scheme
        self.host = host.lowercased()
        self.port = components.port
        var path = components.percentEncodedPath
        while path.hasSuffix("/") { path.removeLast() }
        self.pathPrefix = path
    }

    var isHTTPS: Bool { scheme == "https" }

    /// An absolute URL for `path` (which starts with `/`) under this public URL.
    func absolute(_ path: String) -> String {
        let portPart = port.map { ":\($0)" } ?? ""
        return "\(scheme)://\(host)\(portPart)\(pathPrefix)\(path)"
    }

    /// A path for links and redirects inside the portal: the prefix plus `path`.
    func path(_ path: String) -> String { pathPrefix + path }

    var description: String { absolute("") }
}
