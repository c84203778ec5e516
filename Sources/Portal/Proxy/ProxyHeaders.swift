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
            switch kind {
            case .transferEncoding:
                chunked = chunked || field.value.lowercased().contains("chunked")
                continue
            case .contentLength:
                hasLength = true
            case .host, .expect:
                continue  // the authority is added above; the portal answers for itself
            case .authorization, .serverSecret:
                continue  // the server's secret is added below; a browser's credentials never reach the server
            case .forwardedInfo:
                if !client.trusted { continue }  // replaced below; a browser cannot choose what the server sees
            case .forwardedFor:
                if client.trusted { forwardedFor = forwardedFor.map { "\($0), \(field.value)" } ?? field.value }
                continue
            case .cookie:
                if let kept = CookieHeader.removing(dropCookies, from: field.value) { headers.add(name: "Cookie", value: kept) }
                continue
            case .connection, .upgrade, .hopByHop:
                continue
            case .other:
                if !listed.isEmpty, listed.contains(field.name.lowercased()) { continue }
            }
            headers.add(name: field.name, value: field.value)
        }
        if chunked, !hasLength { headers.add(name: "Transfer-Encoding", value: "chunked") }
        headers.add(name: JupyterCommand.secretHeader, value: authorization)
        if let address = client.address {
            headers.add(name: "X-Forwarded-For", value: forwardedFor.map { "\($0), \(address)" } ?? address)
            if !client.trusted { headers.add(name: "X-Real-IP", value: address) }
        }
        if !client.trusted {
            headers.add(name: "X-Forwarded-Proto", value: client.scheme)
            if let authority { headers.add(name: "X-Forwarded-Host", value: authority) }
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

/// `Cookie` request headers (RFC 6265 §4.2): `name=value` pairs separated by `; `.
enum CookieHeader {
    /// The value of the first cookie called `name` in `header` (scanned in place: it runs on every
    /// proxied request).
    static func value(named name: String, in header: String) -> String? {
        let bytes = header.utf8
        let wanted = name.utf8
        var index = bytes.startIndex
        while index < bytes.endIndex {
            while index < bytes.endIndex, bytes[index] == UInt8(ascii: " ") { index = bytes.index(after: index) }
            let pairEnd = bytes[index...].firstIndex(of: UInt8(ascii: ";")) ?? bytes.endIndex
            if let equals = bytes[index..<pairEnd].firstIndex(of: UInt8(ascii: "=")), bytes[index..<equals].elementsEqual(wanted) {
                return String(header[bytes.index(after: equals)..<pairEnd])
            }
            index = pairEnd == bytes.endIndex ? pairEnd : bytes.index(after: pairEnd)
        }
        return nil
    }

    /// `header` without the cookies in `names`; `nil` when nothing is left.
    static func removing(_ names: Set<String>, from header: String) -> String? {
        guard !names.isEmpty else { return header }
        var kept = [Substring]()
        for pair in header.split(separator: ";") {
            let trimmed = pair.drop { $0 == " " }
            let name = trimmed.firstIndex(of: "=").map { trimmed[..<$0] } ?? trimmed
            if !names.contains(String(name)) { kept.append(trimmed) }
        }
        return kept.isEmpty ? nil : kept.joined(separator: "; ")
    }
}
