import Foundation
import LTI
import NIOCore
import NIOFoundationCompat
import PostgresNIO

/// Looks up browser sessions by the hash of their cookie token.
struct SessionStore: Sendable {
    /// What a session gives access to, for pages.
    struct Session: Sendable {
        var userID: Int64
        var userSlug: String
        var displayName: String?
        var consumerKey: String
        var courseID: Int64?
        var courseTitle: String?
        var courseLabel: String?
        var contextID: String?
        var role: Roles.PortalRole
        var returnURL: String?
        /// Where the launch asked to enter the environment (`custom_path`), unchecked.
        var entryPath: String?
    }

    let client: PostgresClient

    /// The live session for `token`, or `nil` when there is none or it expired.
    /// - Throws: ``UnknownStoredValue`` when its role is one this portal does not know.
    func find(token: String) async throws -> Session? {
        let hash = ByteBuffer(data: SessionToken.hash(token))
        let rows = try await client.query(
            """
            SELECT u.id, u.slug, u.full_name, u.consumer_key, c.id, c.title, c.label, c.context_id, s.role, l.return_url, l.custom->>'custom_path'
            FROM sessions s
            JOIN users u ON u.id = s.user_id
            JOIN launches l ON l.id = s.launch_id
            LEFT JOIN courses c ON c.id = s.course_id
            WHERE s.token_hash = \(hash) AND s.expires_at > now() AND s.scope = \(SessionCache.Scope.portal.rawValue)
            """
        )
        for try await row in rows.decode((Int64, String, String?, String, Int64?, String?, String?, String?, String, String?, String?).self) {
            return Session(
                userID: row.0, userSlug: row.1, displayName: row.2, consumerKey: row.3, courseID: row.4, courseTitle: row.5,
                courseLabel: row.6, contextID: row.7, role: try .stored(row.8, table: "sessions", column: "role"), returnURL: row.9, entryPath: row.10
            )
        }
        return nil
    }
}
