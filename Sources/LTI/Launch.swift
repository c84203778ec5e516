import Foundation

/// A verified LTI 1.1 basic launch: who, from which consumer, in which course and resource link,
/// with which roles, and what the VLE asked of the tool.
public struct Launch: Sendable {
    /// The course (LTI context) the launch comes from.
    public struct Context: Sendable, Equatable {
        /// `context_id`, unique within the consumer.
        public var id: String
        /// `context_title`, e.g. "TM351 Data management and analysis".
        public var title: String?
        /// `context_label`, e.g. "TM351-25J".
        public var label: String?

        /// Creates a context.
        public init(id: String, title: String?, label: String?) {
            self.id = id
            self.title = title
            self.label = label
        }
    }

    /// The person launching, as far as the VLE discloses them.
    public struct Person: Sendable, Equatable {
        /// `lis_person_name_full`, or given and family names joined.
        public var fullName: String?
        /// `lis_person_name_given`.
        public var givenName: String?
        /// `lis_person_name_family`.
        public var familyName: String?
        /// `lis_person_contact_email_primary`.
        public var email: String?
    }

    /// The consumer's key.
    public var consumerKey: String
    /// `user_id`, unique and stable within the consumer.
    public var userID: String
    /// Name and email, where sent.
    public var person: Person
    /// The course, if the link sits in one.
    public var context: Context?
    /// `resource_link_id`: the link the student clicked.
    public var resourceLinkID: String
    /// `resource_link_title`, if sent.
    public var resourceLinkTitle: String?
    /// The raw `roles` value.
    public var rolesValue: String
    /// The parsed roles.
    public var roles: Roles
    /// Every `custom_*` parameter, with its name as sent (e.g. `custom_profile`).
    public var custom: [String: String]
    /// `launch_presentation_return_url`, if it is an http(s) URL.
    public var returnURL: String?
    /// `launch_presentation_document_target` (`iframe`, `window`, `frame`).
    public var documentTarget: String?
    /// `lis_outcome_service_url`, sent when the VLE accepts grades.
    public var outcomeServiceURL: String?
    /// `lis_result_sourcedid`, the grade cell to write.
    public var resultSourcedID: String?
    /// `oauth_nonce`: consumed by ``LaunchValidator/validate(_:)``, or to be consumed by the caller of
    /// ``LaunchValidator/authenticate(_:)``.
    public var nonce: String
    /// Until when the nonce must be remembered: the end of its timestamp's acceptance window.
    public var nonceExpiry: Date

    /// The portal role the roles grant.
    public var portalRole: Roles.PortalRole { roles.portalRole }

    /// The return URL with `lti_errormsg` (or `lti_msg`) appended, for sending the person back to the VLE.
    public static func returnURL(_ base: String, errorMessage: String? = nil, message: String? = nil) -> String {
        var url = base
        for (name, value) in [("lti_errormsg", errorMessage), ("lti_msg", message)] {
            guard let value else { continue }
            url += (url.contains("?") ? "&" : "?") + name + "=" + PercentEncoding.encode(value)
        }
        return url
    }

    /// Whether `url` is an absolute http(s) URL that is safe to offer as a link back.
    public static func isSafeReturnURL(_ url: String) -> Bool {
        let lower = url.lowercased()
        return (lower.hasPrefix("https://") || lower.hasPrefix("http://")) && !url.contains(where: { $0.isWhitespace || $0 == "\"" || $0 == "<" })
    }
}
