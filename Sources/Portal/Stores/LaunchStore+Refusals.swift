import Foundation
import LTI
import PostgresNIO

extension LaunchStore {
    /// How many refused launches a minute are recorded as rows in `launches`; beyond these they
    /// are only counted (`launch_refusal_counts`). Refusals cost their sender nothing, so without
    /// a limit anyone could fill the database. Every refusal is still answered with its page.
    struct RefusalLimits: Sendable, Equatable {
        /// Per client address (an IPv6 client by its /64 network) and minute.
        var perClient = 20
        /// Per minute, all clients together.
        var perMinute = 600
    }

    /// What became of a refusal in the database.
    enum RefusalOutcome: String, Sendable {
        /// Recorded as a row in `launches`.
        case recorded
        /// The first refusal this minute not recorded because its client reached its limit.
        case clientLimit = "client_limit"
        /// The first refusal this minute not recorded because all clients together reached theirs.
        case totalLimit = "total_limit"
        /// Counted only, like others before it this minute.
        case counted
    }

    /// The longest value of any field a refusal record keeps from the launch, in characters.
    static let refusedFieldLength = 256

    /// Counts a refused launch and, within ``refusalLimits``, records it with what could be read from
    /// it, every field cut to ``refusedFieldLength`` and the cut ones named in `truncated_fields`.
    /// Creates nothing else.
    /// - Returns: whether it was recorded or only counted.
    @discardableResult
    func refuse(_ refusal: LaunchRefusal, request: LaunchRequest, facts: RequestFacts) async throws -> RefusalOutcome {
        var fields = CappedFields(limit: Self.refusedFieldLength)
        let consumerKey = fields.cap(request.value("oauth_consumer_key"), column: "consumer_key")
        let userID = fields.cap(request.value("user_id"), column: "lti_user_id")
        let contextID = fields.cap(request.value("context_id"), column: "context_id")
        let resourceLinkID = fields.cap(request.value("resource_link_id"), column: "resource_link_id")
        let roles = fields.cap(request.value("roles"), column: "lti_roles")
        let returnURL = fields.cap(request.value("launch_presentation_return_url"), column: "return_url")
        // The portal's own message quotes launches only shortened; the cap is a safeguard.
        let message = fields.cap(refusal.message, column: "message", limit: 1024)
        let clientKey = ClientAddress.refusalKey(facts.clientAddress)
        let rows = try await client.query(
            """
            SELECT portal_refuse_launch(\(refusalLimits.perClient)::integer, \(refusalLimits.perMinute)::integer, \(clientKey)::text,
                   \(refusal.reason.rawValue)::text, \(message)::text, \(consumerKey)::text, \(userID)::text, \(contextID)::text,
                   \(resourceLinkID)::text, \(roles)::text, \(returnURL)::text, \(facts.remoteAddress)::text, \(facts.requestID)::text,
                   \(fields.truncated)::text[])
            """
        )
        for try await text in rows.decode(String.self) {
            guard let outcome = RefusalOutcome(rawValue: text) else { throw LaunchStoreError.unexpectedRefusalOutcome(text) }
            return outcome
        }
        throw LaunchStoreError.noResult
    }
}

/// Values of an unverified launch as a record keeps them: at most `limit` characters (Unicode
/// scalars, as PostgreSQL counts characters, so never inside a UTF-8 sequence), the columns whose
/// values were cut remembered in ``truncated``.
struct CappedFields {
    let limit: Int
    /// The columns whose values were cut, in order.
    private(set) var truncated: [String] = []

    init(limit: Int) {
        self.limit = limit
    }

    /// `value` cut to `limit` (or this one's) characters, noting `column` when it was cut.
    mutating func cap(_ value: String?, column: String, limit: Int? = nil) -> String? {
        guard let value else { return nil }
        let limit = limit ?? self.limit
        // NUL cannot be stored in text; launches carrying one are refused before they get here.
        let text = value.utf8.contains(0) ? value.replacingOccurrences(of: "\u{0}", with: "\u{FFFD}") : value
        guard !LaunchLimits.fits(text, limit) else { return text }
        truncated.append(column)
        var cut = String.UnicodeScalarView()
        cut.append(contentsOf: text.unicodeScalars.prefix(limit))
        return String(cut)
    }
}
