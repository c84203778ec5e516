import HTTPTypes

/// Header names the portal uses that swift-http-types does not define. Each literal is a valid
/// field name, so the initialiser cannot fail.
extension HTTPField.Name {
    static let xRequestID = Self("X-Request-Id")!
    static let xForwardedProto = Self("X-Forwarded-Proto")!
    static let xForwardedHost = Self("X-Forwarded-Host")!
    static let xForwardedPort = Self("X-Forwarded-Port")!
    static let xForwardedFor = Self("X-Forwarded-For")!
    static let xContentTypeOptions = Self("X-Content-Type-Options")!
    static let refresh = Self("Refresh")!
    static let referrerPolicy = Self("Referrer-Policy")!
    static let secFetchSite = Self("Sec-Fetch-Site")!
}
