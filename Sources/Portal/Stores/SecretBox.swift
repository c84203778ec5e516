import Crypto
import Foundation

/// Seals secrets at rest (consumer secrets in PostgreSQL) with AES-256-GCM under the portal's secret
/// key. The key comes from `secret_key`, `$PORTAL_SECRET_KEY`, or a key file (by default
/// `<data_dir>/secret.key`, created with mode 0600 on first use).
struct SecretBox: Sendable {
    private let key: SymmetricKey

    init(key: SymmetricKey) {
        self.key = key
    }

    /// Loads (or, for a file that does not exist yet, creates) the key.
    init(source: PortalConfiguration.SecretKeySource) throws {
        switch source {
        case .value(let text):
            key = try Self.decode(text, origin: "secret_key / $PORTAL_SECRET_KEY")
        case .file(let path):
            if let data = FileManager.default.contents(atPath: path) {
                key = try Self.decode(String(decoding: data, as: UTF8.self), origin: path)
            } else {
                let fresh = SymmetricKey(size: .bits256)
                let text = fresh.withUnsafeBytes { Data($0).base64EncodedString() } + "\n"
                let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]) else {
                    throw SecretBoxError(description: "cannot create the secret key file \(path)")
                }
                key = fresh
            }
        }
    }

    /// Encrypts `secret`.
    func seal(_ secret: String) throws -> Data {
        guard let combined = try AES.GCM.seal(Data(secret.utf8), using: key).combined else {
            throw SecretBoxError(description: "sealing failed")
        }
        return combined
    }

    /// Decrypts what ``seal(_:)`` produced.
    func open(_ sealed: Data) throws -> String {
        do {
            let box = try AES.GCM.SealedBox(combined: sealed)
            return String(decoding: try AES.GCM.open(box, using: key), as: UTF8.self)
        } catch {
            throw SecretBoxError(description: "a stored secret cannot be decrypted: the portal's secret key is not the one it was sealed with")
        }
    }

    private static func decode(_ text: String, origin: String) throws -> SymmetricKey {
        guard let data = Data(base64Encoded: text.trimmingWhitespace()), data.count == 32 else {
            throw SecretBoxError(description: "the secret key from \(origin) must be base64 of 32 bytes (make one with: openssl rand -base64 32)")
        }
        return SymmetricKey(data: data)
    }
}

/// A secret that cannot be sealed or opened.
struct SecretBoxError: Error, CustomStringConvertible {
    var description: String
}
