import Hummingbird

/// The portal's browser-session cookie: HttpOnly always; on https `Secure` and `SameSite=None`, so it
/// works when the VLE shows the portal in an iframe; on plain http (development) `SameSite=Lax`.
enum SessionCookie {
    static let name = "portal_session"
    /// The cookie of the separate environment origin (see ``EnvironmentOrigin``).
    static let environmentName = "portal_environment"

    static func make(token: String, lifetime: Duration, https: Bool, publicURL: PublicURL, name: String = name) -> Cookie {
        let path = publicURL.pathPrefix.isEmpty ? "/" : publicURL.pathPrefix + "/"
        let maxAge = Int(lifetime.components.seconds)
        if https {
            return Cookie(name: name, value: token, maxAge: maxAge, path: path, secure: true, httpOnly: true, sameSite: .none)
        }
        return Cookie(name: name, value: token, maxAge: maxAge, path: path, secure: false, httpOnly: true, sameSite: .lax)
    }

    /// The session token the browser sent, if any.
    static func token(in request: Request) -> String? {
        guard let value = CookieHeader.value(named: name, in: request.headers[values: .cookie]), !value.isEmpty, value.count <= 128 else { return nil }
        return value
    }
}
