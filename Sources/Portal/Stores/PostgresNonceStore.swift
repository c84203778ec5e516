import Foundation
import LTI
import Logging
import PostgresNIO
import ServiceLifecycle

/// The ``NonceStore`` every portal replica shares: a nonce is a row keyed by (consumer, nonce),
/// kept until its launch's timestamp leaves the window. A row that has expired but not yet been
/// purged may be reused.
struct PostgresNonceStore: NonceStore {
    let client: PostgresClient

    func use(nonce: String, consumerKey: String, expiresAt: Date) async throws -> Bool {
        let rows = try await client.query(
            """
            INSERT INTO lti_nonces AS n (consumer_key, nonce, expires_at) VALUES (\(consumerKey), \(nonce), \(expiresAt))
            ON CONFLICT (consumer_key, nonce) DO UPDATE SET expires_at = EXCLUDED.expires_at WHERE n.expires_at < now()
            RETURNING 1
            """
        )
        for try await _ in rows { return true }
        return false
    }

    /// Deletes expired nonces; returns how many.
    @discardableResult
    func purge() async throws -> Int {
        var count = 0
        for try await _ in try await client.query("DELETE FROM lti_nonces WHERE expires_at < now() RETURNING 1") { count += 1 }
        return count
    }
}

/// Purges expired nonces, sessions and hand-over codes, and refusal counts that say nothing more
/// than the launches table, periodically while the portal runs.
struct PurgeService: Service {
    let client: PostgresClient
    let interval: Duration
    let logger: Logger

    func run() async throws {
        let nonces = PostgresNonceStore(client: client)
        while !Task.isCancelledOrShuttingDown {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            } catch {
                return
            }
            do {
                let purged = try await nonces.purge()
                try await client.query("DELETE FROM sessions WHERE expires_at < now()")
                try await client.query("DELETE FROM handover_codes WHERE expires_at < now()")
                // Counts of past minutes whose refusals all have rows say nothing more (Migrations/0006).
                try await client.query("DELETE FROM launch_refusal_counts WHERE minute < now() - interval '2 minutes' AND refused = recorded")
                logger.debug("purged expired nonces", metadata: ["count": "\(purged)"])
            } catch {
                logger.warning("purging expired nonces failed", metadata: ["error": "\(String(reflecting: error))"])
            }
        }
    }
}

extension Task where Success == Never, Failure == Never {
    /// Whether the current task is cancelled or its service group is shutting down.
    static var isCancelledOrShuttingDown: Bool { Task.isCancelled || Task.isShuttingDownGracefully }
}
