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
        var remoteAddress: String?
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

    /// Accepts a verified launch.
    func accept(_ launch: Launch, facts: RequestFacts) async throws -> Accepted {
        let token = SessionToken.generate()
        let custom = String(decoding: try JSONEncoder().encode(launch.custom), as: UTF8.self)
        let seconds = Int(sessionLifetime.components.seconds)
        let previous = facts.previousSessionHash.map { ByteBuffer(data: $0) }
        let tokenHash = ByteBuffer(data: SessionToken.hash(token))
        for attempt in 1...3 {
            let slug = UserSlug.generate()
            do {
                let rows = try await client.query(
                    """
                    SELECT user_id, user_slug, course_id, launch_id FROM portal_accept_launch(
                        \(launch.consumerKey)::text, \(launch.userID)::text, \(slug)::text, \(launch.person.fullName)::text,
                        \(launch.person.givenName)::text, \(launch.person.familyName)::text, \(launch.person.email)::text,
                        \(launch.context?.id)::text, \(launch.context?.title)::text, \(launch.context?.label)::text,
                        \(launch.portalRole.rawValue)::text, \(launch.rolesValue)::text, \(launch.resourceLinkID)::text, \(custom)::jsonb,
                        \(launch.returnURL)::text, \(launch.outcomeServiceURL)::text, \(launch.resultSourcedID)::text,
                        \(facts.remoteAddress)::text, \(facts.requestID)::text, \(tokenHash)::bytea, \(previous)::bytea, \(seconds)::integer)
                    """
                )
                for try await (userID, userSlug, courseID, launchID) in rows.decode((Int64, String, Int64?, Int64).self) {
                    return Accepted(userID: userID, userSlug: userSlug, courseID: courseID, launchID: launchID, sessionToken: token)
                }
                throw LaunchStoreError.noResult
            } catch let error as PSQLError where error.serverInfo?[.sqlState] == "23505" && attempt < 3 {
                // A fresh slug collided with an existing one (unique_violation): draw another.
                continue
            }
        }
        throw LaunchStoreError.noResult
    }

    /// Records a refused launch with what could be read from it. Creates nothing else.
    func refuse(_ refusal: LaunchRefusal, request: LaunchRequest, facts: RequestFacts) async throws {
        try await client.query(
            """
            INSERT INTO launches (outcome, reason, message, consumer_key, lti_user_id, context_id, resource_link_id, lti_roles,
                                  return_url, remote_addr, request_id)
            VALUES ('refused', \(refusal.reason.rawValue), \(refusal.message), \(request.value("oauth_consumer_key")),
                    \(request.value("user_id")), \(request.value("context_id")), \(request.value("resource_link_id")),
                    \(request.value("roles")), \(request.value("launch_presentation_return_url")), \(facts.remoteAddress), \(facts.requestID))
            """
        )
    }
}

enum LaunchStoreError: Error, CustomStringConvertible {
    case noResult
    var description: String { "The database did not return the accepted launch." }
}

/// Browser session tokens: 256 random bits, base64url in the cookie, SHA-256 in the database.
enum SessionToken {
    static func generate() -> String {
        let key = SymmetricKey(size: .bits256)
        return key.withUnsafeBytes { Data($0) }.base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func hash(_ token: String) -> Data {
        Data(SHA256.hash(data: Data(token.utf8)))
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
