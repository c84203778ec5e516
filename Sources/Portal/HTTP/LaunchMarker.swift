import Foundation

/// Marks the redirect that follows a launch (`/home?launch=…`) so that `/home` can tell "the browser
/// dropped the session cookie" (third-party cookies blocked in the VLE's iframe) from "nobody
/// launched": it carries the new session's token hash and an expiry, sealed with the portal's key,
/// and only ever lets `/home` offer a one-time hand-over to a new window within ``lifetime``.
struct LaunchMarker: Sendable {
    let box: SecretBox
    var lifetime: TimeInterval = 120

    func make(sessionToken: String, now: Date = Date()) -> String? {
        let text = "\(SessionToken.hash(sessionToken).base64EncodedString())|\(Int(now.timeIntervalSince1970 + lifetime))"
        return (try? box.seal(text)).map(SessionToken.base64URL)
    }

    /// The session token hash in a valid, unexpired marker.
    func open(_ marker: String, now: Date = Date()) -> Data? {
        var base64 = marker.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard let sealed = Data(base64Encoded: base64), let text = try? box.open(sealed) else { return nil }
        let parts = text.split(separator: "|")
        guard parts.count == 2, let expiry = TimeInterval(parts[1]), expiry >= now.timeIntervalSince1970 else { return nil }
        return Data(base64Encoded: String(parts[0]))
    }
}
