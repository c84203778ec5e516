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

        /// What kind of failure this is, which maps onto an HTTP status.
        public var kind: Kind {
            switch self {
            case .malformedRequest, .missingOAuthParameter, .duplicateOAuthParameter, .unsupportedSignatureMethod,
                .unsupportedOAuthVersion, .wrongMessageType, .wrongLTIVersion, .missingResourceLink, .unknownProfile:
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

    /// Creates a refusal.
    public init(_ reason: Reason, _ message: String) {
        self.reason = reason
        self.message = message
    }

    public var description: String { "\(reason.rawValue): \(message)" }

    /// The refusal of a launch whose nonce was used before.
    public static let replayed = LaunchRefusal(.replayedNonce, "This launch has already been used. Go back to the course page and click the link again.")
}
