/// The OAuth 1.0 signature base string of RFC 5849 §3.4.1, which LTI 1.1 signs with HMAC-SHA1.
public enum SignatureBaseString {
    /// Builds `METHOD&enc(baseURI)&enc(normalisedParameters)`.
    /// - Parameters:
    ///   - method: the HTTP method (upper-cased here).
    ///   - baseURI: the normalised base string URI, see ``baseURI(scheme:host:port:path:)``.
    ///   - parameters: every request parameter (URL query, `Authorization` header without `realm`,
    ///     form body), decoded; `oauth_signature` is dropped here.
    public static func make(method: String, baseURI: String, parameters: [Parameter]) -> String {
        method.uppercased() + "&" + PercentEncoding.encode(baseURI) + "&" + PercentEncoding.encode(normalise(parameters))
    }

    /// Normalises parameters per RFC 5849 §3.4.1.3.2: encode names and values, sort by encoded name
    /// then encoded value (byte order), join as `name=value` with `&`. Duplicates stay; `oauth_signature` goes.
    public static func normalise(_ parameters: [Parameter]) -> String {
        let encoded = parameters.lazy
            .filter { $0.name != "oauth_signature" }
            .map { (PercentEncoding.encode($0.name), PercentEncoding.encode($0.value)) }
        let sorted = encoded.sorted { lhs, rhs in
            lhs.0 == rhs.0 ? lhs.1.utf8.lexicographicallyPrecedes(rhs.1.utf8) : lhs.0.utf8.lexicographicallyPrecedes(rhs.0.utf8)
        }
        return sorted.map { $0.0 + "=" + $0.1 }.joined(separator: "&")
    }

    /// The base string URI of RFC 5849 §3.4.1.2: scheme and host lower-cased, the default port of
    /// the scheme (80 for http, 443 for https) dropped, any other port kept, an empty path as `/`,
    /// no query and no fragment.
    public static func baseURI(scheme: String, host: String, port: Int?, path: String) -> String {
        let scheme = scheme.lowercased()
        var authority = host.lowercased()
        if let port, !(scheme == "http" && port == 80), !(scheme == "https" && port == 443) {
            authority += ":\(port)"
        }
        return scheme + "://" + authority + (path.isEmpty ? "/" : path)
    }
}
