import Crypto
import Foundation

/// HMAC-SHA1 signing and verification of an OAuth 1.0 signature base string (RFC 5849 §3.4.2),
/// with an empty token secret as LTI 1.1 uses it.
public enum OAuth1Signature {
    /// Signs `baseString` with `consumerSecret`; returns the base64 signature.
    public static func sign(baseString: String, consumerSecret: String) -> String {
        let code = HMAC<Insecure.SHA1>.authenticationCode(for: Data(baseString.utf8), using: key(for: consumerSecret))
        return Data(code).base64EncodedString()
    }

    /// Checks `signature` (base64, as sent in `oauth_signature`) against `baseString` in constant time.
    /// A signature that is not valid base64 is simply invalid.
    public static func isValid(signature: String, baseString: String, consumerSecret: String) -> Bool {
        guard let mac = Data(base64Encoded: signature) else { return false }
        return HMAC<Insecure.SHA1>.isValidAuthenticationCode(mac, authenticating: Data(baseString.utf8), using: key(for: consumerSecret))
    }

    private static func key(for consumerSecret: String) -> SymmetricKey {
        SymmetricKey(data: Data((PercentEncoding.encode(consumerSecret) + "&").utf8))
    }
}
