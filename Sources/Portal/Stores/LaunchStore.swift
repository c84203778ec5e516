import Crypto
import Foundation
import LTI
import NIOCore
import NIOFoundationCompat
import PostgresNIO

/// Records launches: an accepted one creates or updates the user, course and enrolment and opens a
/// browser session in one transaction; a refused one writes only its refusal.
struct LaunchStore: Sendable {
    /// Facts about the HTTP request a launch arrived in.
    struct RequestFacts: Sendable {
        /// The TCP peer's address.
        var remoteAddress: String?
        /// The client's address: the peer's, or the one a trusted proxy forwarded (see
        /// ``ClientAddress``). Refusals are counted per client.
        var clientAddress: String?
        var requestID: String
        /// The hash of the browser's current session token, if it sent one.
        var previousSessionHash: Data?
    }

    /// What an accepted launch produced.
    struct Accepted: Sendable {
        var userID: Int64
        var userSlug: String
        var courseID: Int64?
        var launchID: Int64
        /// The new session's token, for the cookie. Only its hash is stored.
        var sessionToken: String
    }

    let client: PostgresClient
    let sessionLifetime: Duration
    /// How many refused launches are recorded row by row.
    var refusalLimits = RefusalLimits()

    /// Accepts an authenticated launch in one transaction: consumes its nonce, then records
    /// everything. Prepared once per connection.
    /// - Throws: ``LaunchRefusal/replayed`` when the nonce was used before (nothing is written).
    func accept(_ launch: Launch, facts: RequestFacts) async throws -> Accepted {
        let token = SessionToken.generate()
        var statement = AcceptLaunchStatement(
            launch: launch,
            slug: UserSlug.generate(),
            custom: String(decoding: try JSONEncoder().encode(launch.custom), as: UTF8.self),
            facts: facts,
            tokenHash: ByteBuffer(data: SessionToken.hash(token)),
            sessionSeconds: Int32(clamping: sessionLifetime.components.seconds)
        )
        for attempt in 1...3 {
            do {
                for try await row in try await client.execute(statement) {
                    guard !row.replayed, let userID = row.userID, let slug = row.slug, let launchID = row.launchID else {
                        throw LaunchRefusal.replayed
                    }
                    return Accepted(userID: userID, userSlug: slug, courseID: row.courseID, launchID: launchID, sessionToken: token)
                }
                throw LaunchStoreError.noResult
            } catch let error as PSQLError where error.serverInfo?[.sqlState] == "23505" && attempt < 3 {
                // A fresh slug collided with an existing one (unique_violation); the transaction was
                // rolled back, nonce included: draw another slug and try again.
                statement.slug = UserSlug.generate()
            }
        }
        throw LaunchStoreError.noResult
    }

}

/// `portal_accept_launch` (Migrations/0002) as a prepared statement.
struct AcceptLaunchStatement: PostgresPreparedStatement {
    struct Row {
        var replayed: Bool
        var userID: Int64?
        var slug: String?
        var courseID: Int64?
        var launchID: Int64?
    }

    static let sql = """
        SELECT replayed, user_id, user_slug, course_id, launch_id FROM portal_accept_launch(
            $1::text, $2::text, $3::timestamptz, $4::text, $5::text, $6::text, $7::text, $8::text, $9::text, $10::text, $11::text,
            $12::text, $13::text, $14::text, $15::text, $16::jsonb, $17::text, $18::text, $19::text, $20::text, $21::text,
            $22::bytea, $23::bytea, $24::integer)
        """

    var launch: Launch
    var slug: String
    var custom: String
    var facts: LaunchStore.RequestFacts
    var tokenHash: ByteBuffer
    var sessionSeconds: Int32

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 24)
        bindings.append(launch.consumerKey)
        bindings.append(launch.nonce)
        bindings.append(launch.nonceExpiry)
        bindings.append(launch.userID)
        bindings.append(slug)
        bindings.append(launch.person.fullName)
        bindings.append(launch.person.givenName)
        bindings.append(launch.person.familyName)
        bindings.append(launch.person.email)
        bindings.append(launch.context?.id)
        bindings.append(launch.context?.title)
        bindings.append(launch.context?.label)
        bindings.append(launch.portalRole.rawValue)
        bindings.append(launch.rolesValue)
        bindings.append(launch.resourceLinkID)
        bindings.append(custom)
        bindings.append(launch.returnURL)
        bindings.append(launch.outcomeServiceURL)
        bindings.append(launch.resultSourcedID)
        bindings.append(facts.remoteAddress)
        bindings.append(facts.requestID)
        bindings.append(tokenHash)
        bindings.append(facts.previousSessionHash.map { ByteBuffer(data: $0) })
        bindings.append(sessionSeconds)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row {
        let (replayed, userID, slug, courseID, launchID) = try row.decode((Bool, Int64?, String?, Int64?, Int64?).self)
        return Row(replayed: replayed, userID: userID, slug: slug, courseID: courseID, launchID: launchID)
    }
}

enum LaunchStoreError: Error, CustomStringConvertible {
    case noResult
    case unexpectedRefusalOutcome(String)

    var description: String {
        switch self {
        case .noResult: "The database did not return the launch's record. Check that the portal's migrations are applied (portal migrate)."
        case .unexpectedRefusalOutcome(let text):
            "The database recorded a refused launch as \"\(text)\", which this portal does not know; it may have been migrated by a newer portal."
        }
    }
}

/// Browser session tokens: 256 random bits, base64url in the cookie, SHA-256 in the database.
enum SessionToken {
    static func generate() -> String {
        base64URL(SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) })
    }

    /// Base64url without padding (RFC 4648 §5), for cookies and URLs.
    static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func hash(_ token: String) -> Data {
        Data(SHA256.hash(data: Data(token.utf8)))
    }

    /// The anti-forgery token for forms of the session with `token`: only a page the session itself
    /// loaded can know it, so another site cannot make the browser post on the student's behalf.
    static func formToken(for token: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Data("portal-form".utf8), using: SymmetricKey(data: Data(token.utf8)))
        return base64URL(Data(mac))
    }

    /// Whether `candidate` is the form token of the session with `token` (compared in constant time).
    static func isValidFormToken(_ candidate: String, for token: String) -> Bool {
        let expected = Array(formToken(for: token).utf8)
        let given = Array(candidate.utf8)
        guard expected.count == given.count else { return false }
        return zip(expected, given).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }
}

/// Opaque user slugs for URLs: 12 characters of lower-case base32 (60 random bits).
enum UserSlug {
    private static let alphabet = Array("abcdefghijkmnpqrstuvwxyz23456789")

    static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        return String((0..<12).map { _ in alphabet[Int(generator.next(upperBound: UInt32(alphabet.count)))] })
    }
}
