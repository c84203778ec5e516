import Foundation
import LTI
import NIOCore
import NIOFoundationCompat
import PostgresNIO

/// The LTI 1.1 consumers: those in the configuration file, then those added with
/// `portal consumer add`, whose secrets are sealed in PostgreSQL.
struct ConsumerStore: ConsumerDirectory {
    /// A consumer as `portal consumer list` shows it: never its secret.
    struct Listing: Sendable {
        var key: String
        var name: String
        var enabled: Bool
        var createdAt: Date?
        var source: String
    }

    let configured: [String: PortalConfiguration.ConsumerEntry]
    let client: PostgresClient
    let box: SecretBox

    init(configured: [PortalConfiguration.ConsumerEntry], client: PostgresClient, box: SecretBox) {
        self.configured = Dictionary(configured.map { ($0.key, $0) }, uniquingKeysWith: { first, _ in first })
        self.client = client
        self.box = box
    }

    func consumer(forKey key: String) async throws -> Consumer? {
        if let entry = configured[key] { return Consumer(key: entry.key, secret: entry.secret) }
        let rows = try await client.query("SELECT secret_sealed, enabled FROM consumers WHERE key = \(key)")
        for try await (sealed, enabled) in rows.decode((ByteBuffer, Bool).self) {
            return Consumer(key: key, secret: try box.open(Data(buffer: sealed)), enabled: enabled)
        }
        return nil
    }

    /// Adds a consumer to the database.
    /// - Throws: ``ConsumerStoreError`` when the key exists already.
    func add(key: String, name: String, secret: String) async throws {
        if configured[key] != nil { throw ConsumerStoreError(description: "The consumer \"\(key)\" is declared in the configuration file.") }
        let sealed = ByteBuffer(data: try box.seal(secret))
        let rows = try await client.query(
            "INSERT INTO consumers (key, name, secret_sealed) VALUES (\(key), \(name), \(sealed)) ON CONFLICT (key) DO NOTHING RETURNING 1"
        )
        var inserted = false
        for try await _ in rows { inserted = true }
        guard inserted else { throw ConsumerStoreError(description: "A consumer with key \"\(key)\" exists already; remove it first or choose another key.") }
    }

    /// Removes a database consumer.
    func remove(key: String) async throws {
        if configured[key] != nil {
            throw ConsumerStoreError(description: "The consumer \"\(key)\" is declared in the configuration file; remove it there.")
        }
        var removed = false
        for try await _ in try await client.query("DELETE FROM consumers WHERE key = \(key) RETURNING 1") { removed = true }
        guard removed else { throw ConsumerStoreError(description: "There is no consumer with key \"\(key)\".") }
    }

    /// Every consumer, configured ones first.
    func list() async throws -> [Listing] {
        var result = configured.values.sorted { $0.key < $1.key }.map {
            Listing(key: $0.key, name: $0.name, enabled: true, createdAt: nil, source: "config")
        }
        let rows = try await client.query("SELECT key, name, enabled, created_at FROM consumers ORDER BY key")
        for try await (key, name, enabled, created) in rows.decode((String, String, Bool, Date).self) {
            result.append(Listing(key: key, name: name, enabled: enabled, createdAt: created, source: "database"))
        }
        return result
    }
}

/// A consumer operation that cannot be done, with the reason.
struct ConsumerStoreError: Error, CustomStringConvertible {
    var description: String
}
