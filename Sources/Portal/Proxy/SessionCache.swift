import Foundation
import LTI
import NIOCore
import NIOFoundationCompat
import PostgresNIO
import Synchronization

/// Who a session cookie belongs to, for the proxy's per-request check, cached briefly in memory so
/// that forwarding a request does not cost a database round trip. A session ended in the database
/// stops working here within ``ttl``.
final class SessionCache: Sendable {
    /// A session as the proxy needs it.
    struct Entry: Sendable {
        var userID: Int64
        var userSlug: String
        var role: Roles.PortalRole
        var validUntil: ContinuousClock.Instant
    }

    /// Which origin a session was opened for (`sessions.scope`).
    enum Scope: String, Sendable, CaseIterable {
        case portal, environments
    }

    let client: PostgresClient
    let ttl: Duration
    let capacity: Int
    /// Keyed by the cookie's token itself (held in memory anyway while a request is read): hashing
    /// it as the database does would cost a SHA-256 on every proxied request.
    private let entries = Mutex<[Key: Entry]>([:])

    private struct Key: Hashable {
        var token: String
        var scope: Scope
    }

    init(client: PostgresClient, ttl: Duration = .seconds(10), capacity: Int = 100_000) {
        self.client = client
        self.ttl = ttl
        self.capacity = capacity
    }

    /// The live session for a cookie token in `scope`, or `nil`.
    func session(token: String, scope: Scope) async throws -> Entry? {
        if let entry = cached(token: token, scope: scope) { return entry }
        let key = Key(token: token, scope: scope)
        let now = ContinuousClock.now
        let hash = ByteBuffer(data: SessionToken.hash(token))
        let rows = try await client.query(
            """
            SELECT s.user_id, u.slug, s.role, extract(epoch FROM s.expires_at - now())::float8
            FROM sessions s JOIN users u ON u.id = s.user_id
            WHERE s.token_hash = \(hash) AND s.scope = \(scope.rawValue) AND s.expires_at > now()
            """
        )
        for try await (userID, slug, role, remaining) in rows.decode((Int64, String, String, Double).self) {
            let entry = Entry(
                userID: userID, userSlug: slug, role: try .stored(role, table: "sessions", column: "role"),
                validUntil: now + min(ttl, .milliseconds(Int64(remaining * 1000)))
            )
            entries.withLock { table in
                if table.count >= capacity { table.removeAll(keepingCapacity: true) }
                table[key] = entry
            }
            return entry
        }
        entries.withLock { _ = $0.removeValue(forKey: key) }
        return nil
    }

    /// The session for a cookie token if it is in memory and fresh (no database).
    func cached(token: String, scope: Scope) -> Entry? {
        let key = Key(token: token, scope: scope)
        guard let entry = entries.withLock({ $0[key] }), entry.validUntil > .now else { return nil }
        return entry
    }
}
