import HTTPTypes

/// Who sent a request, as far as the portal can tell, for counting what clients do (refused
/// launches). Only `X-Forwarded-For` from a trusted proxy is believed.
enum ClientAddress {
    /// The client's address: the TCP peer's, or — when the peer is a trusted proxy — the nearest
    /// address in `X-Forwarded-For` (read from the right) that is not a trusted proxy itself.
    static func of(headers: HTTPFields, peer: String?, resolver: LaunchURLResolver) -> String? {
        guard let peer, resolver.isTrusted(peer) else { return peer }
        let hops = headers[values: .xForwardedFor].flatMap { $0.split(separator: ",") }.map { $0.trimmingWhitespaceSubstring() }
        var client = peer
        for hop in hops.reversed() {
            // Anything that is not an address ends what can be believed.
            guard IPAddressRange.parseAddress(hop) != nil else { break }
            client = hop
            if !resolver.isTrusted(hop) { break }
        }
        return client
    }

    /// The key refusals are counted under: an IPv4 address as it is (also when IPv4-mapped), an
    /// IPv6 address by its /64 network (one subscriber's addresses), `unknown` without an address.
    static func refusalKey(_ address: String?) -> String {
        guard let address, let bytes = IPAddressRange.parseAddress(address) else { return "unknown" }
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
        if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF {
            return bytes[12...].map(String.init).joined(separator: ".")
        }
        let groups = stride(from: 0, to: 8, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }
        return groups.joined(separator: ":") + "::/64"
    }
}
