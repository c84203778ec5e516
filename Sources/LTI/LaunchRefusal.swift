/// Why a launch was refused: a stable reason code for records and tests, the HTTP status class
/// it deserves, and a message a student or VLE administrator can act on.
/// It never carries a secret or a signature.
public struct LaunchRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    /// Stable refusal reasons; their raw values are stored with each refused launch.
    public enum Reason: String, Sendable, CaseIterable {
        case malformedRequest = "malformed_request"
        case missingOAuthParameter = "missing_oauth_parameter"
        case duplicateOAuthParameter = "duplicate_oauth_parameter"
        case unsupportedSignatureMethod = "unsupported_signature_method"
        case unsupportedOAuthVersion = "unsupported_oauth_version"
        case unknownConsumer = "unknown_consumer"
        case consumerDisabled = "consumer_disabled"
        case staleTimestamp = "stale_timestamp"
        case invalidSignature = "invalid_signature"
        case replayedNonce = "replayed_nonce"
        case wrongMessageType = "wrong_message_type"
        case wrongLTIVersion = "wrong_lti_version"
        case missingResourceLink = "missing_resource_link"
        case missingUser = "missing_user"
        /// The link or the course names an environment profile the portal does not have.
        case unknownProfile = "unknown_profile"
        /// A field is longer than the portal accepts (see ``LaunchLimits``), or there are too many
        /// custom parameters.
        case fieldTooLong = "field_too_long"

        /// What kind of failure this is, which maps onto an HTTP status.
        public var kind: Kind {
            switch self {
            case .malformedRequest, .missingOAuthParameter, .duplicateOAuthParameter, .unsupportedSignatureMethod,
                .unsupportedOAuthVersion, .wrongMessageType, .wrongLTIVersion, .missingResourceLink, .unknownProfile, .fieldTooLong:
                return .badRequest
            case .unknownConsumer, .staleTimestamp, .invalidSignature, .replayedNonce:
                return .unauthenticated
            case .consumerDisabled, .missingUser:
                return .forbidden
            }
        }
    }

    /// The class of a refusal: malformed (400), not authenticated (401) or not permitted (403).
    public enum Kind: Sendable {
        case badRequest, unauthenticated, forbidden

        /// The HTTP status code for this kind.
        public var httpStatus: Int {
            switch self {
            case .badRequest: 400
            case .unauthenticated: 401
            case .forbidden: 403
            }
        }
    }

    /// The reason code.
    public var reason: Reason
    /// A message for people: what went wrong and what to do.
    public var message: String
    /// Whether the launch's signature had been verified with a known consumer's secret before it
    /// was refused. Only then did its parameters come from the VLE, so only then may a refusal page
    /// trust anything they say — above all `launch_presentation_return_url`, which in an unverified
    /// launch is whatever the sender chose.
    public var signatureVerified: Bool

    /// Creates a refusal.
    public init(_ reason: Reason, _ message: String, signatureVerified: Bool = false) {
        self.reason = reason
        self.message = message
        self.signatureVerified = signatureVerified
    }

    public var description: String { "\(reason.rawValue): \(message)" }

    /// The same refusal, of a launch whose signature was verified.
    public var afterVerification: LaunchRefusal {
        LaunchRefusal(reason, message, signatureVerified: true)
    }

    /// The refusal of a launch whose nonce was used before. Nonces are consumed only after the
    /// signature verified, so this refusal is always of a verified launch.
    public static let replayed = LaunchRefusal(
        .replayedNonce, "This launch has already been used. Go back to the course page and click the link again.", signatureVerified: true
    )

    /// `value` as a refusal message may quote it: at most 40 characters (Unicode scalars), cut
    /// with `…`. Messages quote what a launch sent, which may be anything of any length.
    public static func quoted(_ value: String) -> String {
        let scalars = value.unicodeScalars
        guard scalars.prefix(41).count > 40 else { return value }
        var cut = String.UnicodeScalarView()
        cut.append(contentsOf: scalars.prefix(40))
        return String(cut) + "…"
    }
}
