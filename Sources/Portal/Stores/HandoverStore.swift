import Foundation
import NIOCore
import NIOFoundationCompat
import PostgresNIO

/// One-time, short-lived codes that open a new session for the holder of an existing one in
/// another browsing context (a new window, when an iframe's cookies are blocked) or on another
/// origin (the environment origin). A code works once: redeeming deletes it in the same statement
/// that opens the session.
struct HandoverStore: Sendable {
    let client: PostgresClient
    /// How long a code can be redeemed.
    var lifetime: Duration = .seconds(120)

    /// A code for the session whose token hashes to `parentHash`, leading to `next` (a path).
    func issue(parentHash: Data, scope: SessionCache.Scope, next: String) async throws -> String {
        let code = SessionToken.generate()
        let hash = ByteBuffer(data: SessionToken.hash(code))
        let parent = ByteBuffer(data: parentHash)
        let seconds = Double(lifetime.components.seconds)
        try await client.query(
            """
            INSERT INTO handover_codes (code_hash, parent_hash, scope, next_path, expires_at)
            VALUES (\(hash), \(parent), \(scope.rawValue), \(next), now() + make_interval(secs => \(seconds)))
            """
        )
        return code
    }

    /// Redeems `code`: a new session token of the code's scope (same user, course, role and expiry
    /// as its parent) and the path to go to; `nil` when the code is unknown, used or expired.
    /// - Throws: ``UnknownStoredValue`` when the code's scope is one this portal does not know.
    func redeem(_ code: String) async throws -> (token: String, scope: SessionCache.Scope, next: String)? {
        let token = SessionToken.generate()
        let codeHash = ByteBuffer(data: SessionToken.hash(code))
        let tokenHash = ByteBuffer(data: SessionToken.hash(token))
        let rows = try await client.query(
            """
            WITH code AS (
                DELETE FROM handover_codes WHERE code_hash = \(codeHash) AND expires_at > now() RETURNING parent_hash, scope, next_path
            ), opened AS (
                INSERT INTO sessions (token_hash, user_id, course_id, launch_id, role, expires_at, scope)
                SELECT \(tokenHash), s.user_id, s.course_id, s.launch_id, s.role, s.expires_at, code.scope
                FROM sessions s JOIN code ON s.token_hash = code.parent_hash WHERE s.expires_at > now()
                RETURNING scope
            )
            SELECT code.scope, code.next_path FROM code, opened
            """
        )
        for try await (scope, next) in rows.decode((String, String).self) {
            return (token, try .stored(scope, table: "handover_codes", column: "scope"), next)
        }
        return nil
    }
}
