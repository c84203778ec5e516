import Environments
import Foundation
import HTTPTypes
import NIOHTTP1

/// Header rewriting between the browser and an environment's server (RFC 9110 §7.6): hop-by-hop
/// fields are dropped both ways (with any field `Connection` names), the portal's own cookies never
/// reach the student-controlled server, the server's secret is added in `X-Portal-Secret` (a
/// browser's own copy, like its `Authorization`, is dropped), and `X-Forwarded-*` say who asked and
/// how. `Host` is kept: Jupyter compares it with `Origin` on WebSocket and API requests.
enum ProxyHeaders {
    /// The fields the proxy treats specially, recognised from their name's bytes in any case
    /// (no lower-cased copy), so the byte-level fast path (``RawRequest``) and the string path
    /// follow the same rules.
    enum Field: Equatable {
        case host, contentLength, transferEncoding, connection, upgrade, expect, cookie, authorization
        /// `X-Portal-Secret` (``JupyterCommand/secretHeader``): only the portal sends it to a server.
        case serverSecret
        /// `X-Forwarded-For`: extended when the peer is a trusted proxy, else replaced.
        case forwardedFor
        /// `X-Forwarded-Proto/Host/Port`, `X-Real-IP`, `Forwarded`: kept from a trusted proxy, else replaced.
        case forwardedInfo
        /// The other hop-by-hop fields (RFC 9110 §7.6.1).
        case hopByHop
        case other

        /// The kind of a field by its name, in any letter case.
        init(name: UnsafeRawBufferPointer) {
            // By length first: most names are looked at once or not at all.
            func named(_ lowercase: StaticString) -> Bool { RawHTTP.equalsIgnoringCase(name, 0..<name.count, lowercase) }
            switch name.count {
            case 2: self = named("te") ? .hopByHop : .other
            case 4: self = named("host") ? .host : .other
            case 6: self = named("cookie") ? .cookie : named("expect") ? .expect : .other
            case 7: self = named("upgrade") ? .upgrade : named("trailer") ? .hopByHop : .other
            case 9: self = named("forwarded") || named("x-real-ip") ? .forwardedInfo : .other
            case 10: self = named("connection") ? .connection : named("keep-alive") ? .hopByHop : .other
            case 13: self = named("authorization") ? .authorization : .other
            case 14: self = named("content-length") ? .contentLength : .other
            case 15: self = named("x-forwarded-for") ? .forwardedFor : named("x-portal-secret") ? .serverSecret : .other
            case 16: self = named("x-forwarded-host") || named("x-forwarded-port") ? .forwardedInfo : named("proxy-connection") ? .hopByHop : .other
            case 17: self = named("transfer-encoding") ? .transferEncoding : named("x-forwarded-proto") ? .forwardedInfo : .other
            case 18: self = named("proxy-authenticate") ? .hopByHop : .other
            case 19: self = named("proxy-authorization") ? .hopByHop : .other
            default: self = .other
            }
        }

        /// The kind of a field by its name, in any letter case.
        init(name: String) {
            var name = name
            self = name.withUTF8 { Field(name: UnsafeRawBufferPointer($0)) }
        }

        /// Whether the field describes one connection (never passed on as it came).
        var isHopByHop: Bool {
            switch self {
            case .connection, .upgrade, .transferEncoding, .hopByHop: true
            default: false
            }
        }
    }

    /// Who sent the request and how it reached the portal.
    struct Client: Sendable {
        /// The TCP peer's IP address.
        var address: String?
        /// Whether the peer is a trusted reverse proxy, whose `X-Forwarded-*` are kept and extended.
        var trusted: Bool
        /// `http` or `https`, as the browser used it.
        var scheme: String
    }

    /// The head to send upstream for a browser request (fields as swift-http-types has them).
    static func request(
        method: String, target: String, authority: String?, fields: HTTPFields, client: Client, authorization: String, dropCookies: Set<String>
    ) -> HTTPRequestHead {
        request(
            method: method, target: target, authority: authority, headers: fields.lazy.map { (name: $0.name.rawName, value: $0.value) }, client: client,
            authorization: authorization, dropCookies: dropCookies
        )
    }

    /// What happens to one field of a browser's request on its way to the environment's server:
    /// the one rule both writers of upstream heads follow (``request(method:target:authority:headers:client:authorization:dropCookies:)``
    /// for the router, ``RawRequest/upstreamHead(_:client:authorization:dropCookies:allocator:)``
    /// for the fast path).
    enum RequestFieldRule: Equatable {
        /// Passed on as it came (unless `Connection` names it).
        case copy
        case drop
        /// `Host`: kept (Jupyter compares it with `Origin`).
        case host
        /// `X-Forwarded-For`: extended by the peer when it is a trusted proxy, else replaced.
        case forwardedFor
        /// `Cookie`: without the portal's own cookies.
        case cookie
        /// `Transfer-Encoding`: the framing is the portal's to write.
        case transferEncoding

        init(_ kind: Field, trusted: Bool) {
            switch kind {
            case .host: self = .host
            case .contentLength, .other: self = .copy
            case .transferEncoding: self = .transferEncoding
            case .forwardedInfo: self = trusted ? .copy : .drop  // a browser cannot choose what the server sees
            case .forwardedFor: self = .forwardedFor
            case .cookie: self = .cookie
            // The portal answers `Expect` itself; a browser's credentials never reach the server
            // (the server's secret is added); the rest describe one connection.
            case .expect, .authorization, .serverSecret, .connection, .upgrade, .hopByHop: self = .drop
            }
        }
    }

    /// The fields the portal adds after the browser's: the server's secret, and who asked and how
    /// (`X-Forwarded-For` extending a trusted proxy's `forwardedFor`; from any other peer also
    /// `X-Real-IP`, `X-Forwarded-Proto` and `X-Forwarded-Host`, replacing the browser's claims).
    static func added(client: Client, authorization: String, host: String?, forwardedFor: String?) -> [(name: String, value: String)] {
        var fields: [(name: String, value: String)] = [(JupyterCommand.secretHeader, authorization)]
        if let address = client.address {
            fields.append(("X-Forwarded-For", forwardedFor.map { "\($0), \(address)" } ?? address))
            if !client.trusted { fields.append(("X-Real-IP", address)) }
        }
        if !client.trusted {
            fields.append(("X-Forwarded-Proto", client.scheme))
            if let host { fields.append(("X-Forwarded-Host", host)) }
        }
        return fields
    }

    /// The head to send upstream for a browser request. `headers` must not contain `Host` (it
    /// travels as `authority`). `authorization` is the server's secret (``ProxyRoute/authorization``).
    static func request<Headers: Sequence>(
        method: String, target: String, authority: String?, headers fields: Headers, client: Client, authorization: String, dropCookies: Set<String>
    ) -> HTTPRequestHead where Headers.Element == (name: String, value: String) {
        var listed = Set<String>()
        for field in fields where Field(name: field.name) == .connection { listed.formUnion(connectionListed([field.value])) }
        var headers = HTTPHeaders()
        headers.reserveCapacity(16)
        if let authority { headers.add(name: "Host", value: authority) }
        var forwardedFor: String?
        var chunked = false
        var hasLength = false
        for field in fields {
            let kind = Field(name: field.name)
            switch RequestFieldRule(kind, trusted: client.trusted) {
            case .copy:
                if !listed.isEmpty, listed.contains(field.name.lowercased()) { continue }
                hasLength = hasLength || kind == .contentLength
                headers.add(name: field.name, value: field.value)
            case .host, .drop:
                continue  // the authority is added above
            case .transferEncoding:
                chunked = chunked || field.value.lowercased().contains("chunked")
            case .forwardedFor:
                if client.trusted { forwardedFor = forwardedFor.map { "\($0), \(field.value)" } ?? field.value }
            case .cookie:
                if let kept = CookieHeader.removing(dropCookies, from: field.value) { headers.add(name: "Cookie", value: kept) }
            }
        }
        if chunked, !hasLength { headers.add(name: "Transfer-Encoding", value: "chunked") }
        for field in added(client: client, authorization: authorization, host: authority, forwardedFor: forwardedFor) {
            headers.add(name: field.name, value: field.value)
        }
        return HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method), uri: target, headers: headers)
    }

    /// The end-to-end fields of an upstream response, for the browser, with ``ProxyResponsePolicy``
    /// applied.
    static func responseHeaders(_ headers: HTTPHeaders, policy: ProxyResponsePolicy) -> HTTPHeaders {
        let listed = connectionListed(headers[canonicalForm: "connection"].map(String.init))
        var kept = HTTPHeaders()
        kept.reserveCapacity(headers.count)
        var seen = ProxyResponsePolicy.Seen()
        for (name, value) in headers {
            if Field(name: name).isHopByHop || (!listed.isEmpty && listed.contains(name.lowercased())) { continue }
            if let decided = ProxyResponsePolicy.Field(name: name) {
                seen.add(decided, value)
                continue
            }
            kept.add(name: name, value: value)
        }
        for field in policy.fields(seen) { kept.add(name: field.name, value: field.value) }
        return kept
    }

    /// The response head for the browser: the upstream status and its end-to-end fields.
    static func response(_ head: HTTPResponseHead, policy: ProxyResponsePolicy) -> HTTPResponse {
        var fields = HTTPFields()
        fields.reserveCapacity(head.headers.count)
        for (name, value) in responseHeaders(head.headers, policy: policy) {
            guard let fieldName = HTTPField.Name(name) else { continue }
            fields.append(HTTPField(name: fieldName, value: value))
        }
        let status = HTTPResponse.Status(code: Int(head.status.code), reasonPhrase: head.status.reasonPhrase)
        return HTTPResponse(status: status, headerFields: fields)
    }

    static func connectionListed<S: Sequence>(_ values: S) -> Set<String> where S.Element: StringProtocol {
        var names = Set<String>()
        for value in values {
            let plain = value.lowercased()
            if plain == "keep-alive" || plain == "close" || plain == "upgrade" { continue }  // the usual case: nothing listed
            for token in value.split(separator: ",") {
                let name = token.trimmingCharacters(in: .whitespaces).lowercased()
                if !name.isEmpty, name != "close", name != "keep-alive", name != "upgrade" { names.insert(name) }
            }
        }
        return names
    }
}
