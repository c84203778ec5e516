import Foundation

/// Verifies LTI 1.1 basic launches: OAuth 1.0 HMAC-SHA1 signature over the URL the VLE signed,
/// signature method and OAuth version, a timestamp window, a single-use nonce, then the LTI message
/// itself. Checks run cheapest first, and the nonce is consumed only by a launch that passes every
/// other check, so a refused launch leaves nothing behind but its refusal.
public struct LaunchValidator: Sendable {
    /// The OAuth parameters every launch must carry.
    static let requiredOAuth = ["oauth_consumer_key", "oauth_signature_method", "oauth_timestamp", "oauth_nonce", "oauth_signature"]

    private let consumers: any ConsumerDirectory
    private let nonces: any NonceStore
    private let clock: any WallClock
    /// How far `oauth_timestamp` may be from now, either way.
    public let timestampWindow: TimeInterval

    /// Creates a validator.
    /// - Parameters:
    ///   - consumers: where consumer keys and secrets are looked up.
    ///   - nonces: where nonces are consumed; share one between replicas.
    ///   - clock: the wall clock timestamps are checked against.
    ///   - timestampWindow: accepted distance of `oauth_timestamp` from now, in seconds (default 300).
    public init(consumers: any ConsumerDirectory, nonces: any NonceStore, clock: any WallClock = SystemWallClock(), timestampWindow: TimeInterval = 300) {
        self.consumers = consumers
        self.nonces = nonces
        self.clock = clock
        self.timestampWindow = timestampWindow
    }

    /// Verifies `request` completely, consuming its nonce in the ``NonceStore``.
    /// - Returns: the verified launch.
    /// - Throws: ``LaunchRefusal`` for a launch that must be refused; any error of the consumer
    ///   directory or nonce store as it is.
    public func validate(_ request: LaunchRequest) async throws -> Launch {
        let launch = try await authenticate(request)
        guard try await nonces.use(nonce: launch.nonce, consumerKey: launch.consumerKey, expiresAt: launch.nonceExpiry) else {
            throw LaunchRefusal.replayed
        }
        return launch
    }

    /// Verifies everything about `request` except that its nonce is unused.
    ///
    /// - Important: The caller must consume ``Launch/nonce`` (for ``Launch/consumerKey``, until
    ///   ``Launch/nonceExpiry``) atomically with whatever it does with the launch, and refuse the launch
    ///   with ``LaunchRefusal/replayed`` if the nonce was used before. The portal does this in the
    ///   same database transaction that records the launch. Otherwise use ``validate(_:)``.
    public func authenticate(_ request: LaunchRequest) async throws -> Launch {
        let oauth = try oauthParameters(request)
        guard let consumer = try await consumers.consumer(forKey: oauth.consumerKey) else {
            throw LaunchRefusal(.unknownConsumer, "The VLE's consumer key is not registered with this portal. Ask the portal's administrators to add it.")
        }
        guard consumer.enabled else {
            throw LaunchRefusal(.consumerDisabled, "Launches from this VLE are currently disabled by the portal's administrators.")
        }
        let now = clock.now().timeIntervalSince1970
        guard abs(now - oauth.timestamp) <= timestampWindow else {
            throw LaunchRefusal(
                .staleTimestamp,
                "The launch is too old or its clock is too far off (more than \(Int(timestampWindow)) seconds). Go back to the course page and click the link again."
            )
        }
        let baseString = SignatureBaseString.make(method: request.method, baseURI: request.baseURI, parameters: request.parameters)
        guard OAuth1Signature.isValid(signature: oauth.signature, baseString: baseString, consumerSecret: consumer.secret) else {
            throw LaunchRefusal(
                .invalidSignature,
                "The launch's signature does not match. The VLE's secret or launch URL may be configured wrongly."
            )
        }
        // The nonce must be remembered for as long as its timestamp is acceptable.
        let expiry = Date(timeIntervalSince1970: oauth.timestamp + timestampWindow + 1)
        do throws(LaunchRefusal) {
            return try message(request, consumerKey: consumer.key, nonce: oauth.nonce, nonceExpiry: expiry)
        } catch {
            // From here on the parameters are the VLE's own: its refusal page may lead back to it.
            throw error.afterVerification
        }
    }

    private struct OAuth {
        var consumerKey: String
        var signature: String
        var timestamp: TimeInterval
        var nonce: String
    }

    private func oauthParameters(_ request: LaunchRequest) throws(LaunchRefusal) -> OAuth {
        var seen = [String: String]()
        for parameter in request.parameters where parameter.name.hasPrefix("oauth_") {
            guard seen.updateValue(parameter.value, forKey: parameter.name) == nil else {
                throw LaunchRefusal(.duplicateOAuthParameter, "The launch carries \(LaunchRefusal.quoted(parameter.name)) more than once.")
            }
        }
        for name in Self.requiredOAuth where (seen[name] ?? "").isEmpty {
            throw LaunchRefusal(.missingOAuthParameter, "The launch is not signed: \(name) is missing.")
        }
        guard seen["oauth_signature_method"] == "HMAC-SHA1" else {
            throw LaunchRefusal(.unsupportedSignatureMethod, "The launch is signed with an unsupported method; only HMAC-SHA1 is accepted.")
        }
        if let version = seen["oauth_version"], version != "1.0" {
            throw LaunchRefusal(.unsupportedOAuthVersion, "The launch uses OAuth version \(LaunchRefusal.quoted(version)); only 1.0 is accepted.")
        }
        for name in ["oauth_consumer_key", "oauth_nonce"] {
            try LaunchLimits.check(name, seen[name], limit: LaunchLimits.identifierLength)
        }
        guard let text = seen["oauth_timestamp"], text.allSatisfy(\.isASCII), let timestamp = Int64(text), timestamp > 0 else {
            throw LaunchRefusal(.malformedRequest, "The launch's oauth_timestamp is not a number of seconds.")
        }
        return OAuth(
            consumerKey: seen["oauth_consumer_key"] ?? "",
            signature: seen["oauth_signature"] ?? "",
            timestamp: TimeInterval(timestamp),
            nonce: seen["oauth_nonce"] ?? ""
        )
    }

    private func message(_ request: LaunchRequest, consumerKey: String, nonce: String, nonceExpiry: Date) throws(LaunchRefusal) -> Launch {
        guard request.value("lti_message_type") == "basic-lti-launch-request" else {
            throw LaunchRefusal(
                .wrongMessageType,
                "This link sends a message of type \"\(LaunchRefusal.quoted(request.value("lti_message_type") ?? ""))\"; the portal accepts basic-lti-launch-request only."
            )
        }
        guard request.value("lti_version") == "LTI-1p0" else {
            throw LaunchRefusal(.wrongLTIVersion, "This link uses LTI version \"\(LaunchRefusal.quoted(request.value("lti_version") ?? ""))\"; LTI-1p0 is expected.")
        }
        guard let resourceLinkID = request.nonEmptyValue("resource_link_id") else {
            throw LaunchRefusal(.missingResourceLink, "The launch has no resource_link_id; the VLE must send the link's identifier.")
        }
        guard let userID = request.nonEmptyValue("user_id") else {
            throw LaunchRefusal(
                .missingUser,
                "The VLE did not say who you are (no user_id). Ask the course team to let this tool receive user identity."
            )
        }
        try Self.checkLengths(request)
        let given = request.nonEmptyValue("lis_person_name_given")
        let family = request.nonEmptyValue("lis_person_name_family")
        let joined = [given, family].compactMap { $0 }.joined(separator: " ")
        let context = request.nonEmptyValue("context_id").map {
            Launch.Context(id: $0, title: request.nonEmptyValue("context_title"), label: request.nonEmptyValue("context_label"))
        }
        var custom = [String: String]()
        for parameter in request.parameters where parameter.name.hasPrefix("custom_") && custom[parameter.name] == nil {
            custom[parameter.name] = parameter.value
        }
        let rolesValue = request.value("roles") ?? ""
        return Launch(
            consumerKey: consumerKey,
            userID: userID,
            person: Launch.Person(
                fullName: request.nonEmptyValue("lis_person_name_full") ?? (joined.isEmpty ? nil : joined),
                givenName: given,
                familyName: family,
                email: request.nonEmptyValue("lis_person_contact_email_primary")
            ),
            context: context,
            resourceLinkID: resourceLinkID,
            resourceLinkTitle: request.nonEmptyValue("resource_link_title"),
            rolesValue: rolesValue,
            roles: Roles(parsing: rolesValue),
            custom: custom,
            returnURL: request.nonEmptyValue("launch_presentation_return_url").flatMap { Launch.isSafeReturnURL($0) ? $0 : nil },
            documentTarget: request.nonEmptyValue("launch_presentation_document_target"),
            outcomeServiceURL: request.nonEmptyValue("lis_outcome_service_url"),
            resultSourcedID: request.nonEmptyValue("lis_result_sourcedid"),
            nonce: nonce,
            nonceExpiry: nonceExpiry
        )
    }

    /// The parameters a ``Launch`` keeps, by their limit in ``LaunchLimits``.
    static let identifierParameters = ["user_id", "context_id", "resource_link_id"]
    static let valueParameters = [
        "lis_person_name_full", "lis_person_name_given", "lis_person_name_family", "lis_person_contact_email_primary", "context_title",
        "context_label", "resource_link_title", "roles", "launch_presentation_return_url", "launch_presentation_document_target",
        "lis_outcome_service_url", "lis_result_sourcedid",
    ]

    /// Refuses a launch with a kept field beyond ``LaunchLimits``, or too many custom parameters.
    private static func checkLengths(_ request: LaunchRequest) throws(LaunchRefusal) {
        for name in identifierParameters { try LaunchLimits.check(name, request.value(name), limit: LaunchLimits.identifierLength) }
        for name in valueParameters { try LaunchLimits.check(name, request.value(name), limit: LaunchLimits.valueLength) }
        var custom = Set<String>()
        for parameter in request.parameters where parameter.name.hasPrefix("custom_") {
            try LaunchLimits.check("custom parameter name", parameter.name, limit: LaunchLimits.customNameLength)
            try LaunchLimits.check(parameter.name, parameter.value, limit: LaunchLimits.valueLength)
            custom.insert(parameter.name)
            guard custom.count <= LaunchLimits.customParameterCount else {
                throw LaunchRefusal(
                    .fieldTooLong,
                    "The launch carries more than \(LaunchLimits.customParameterCount) custom parameters. Ask the VLE's administrators to check the link's configuration."
                )
            }
        }
    }
}
