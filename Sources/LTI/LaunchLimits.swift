/// How long the fields of a launch may be. LTI 1.1 sets no limits, and real VLEs send identifiers
/// of tens of characters; a launch beyond these limits is refused with
/// ``LaunchRefusal/Reason/fieldTooLong`` (400) naming the field, rather than stored cut or
/// whole. Lengths count characters as PostgreSQL does: Unicode scalars (code points), at most four
/// bytes each in UTF-8.
public enum LaunchLimits {
    /// Identifiers (`oauth_consumer_key`, `oauth_nonce`, `user_id`, `context_id`,
    /// `resource_link_id`): two of them make a unique database key, which must stay well inside an
    /// index entry (2,704 bytes).
    public static let identifierLength = 255
    /// Every other value the portal keeps: names, email, course title and label, link title,
    /// roles, return and outcome service URLs, `lis_result_sourcedid`, the document target, and
    /// each `custom_*` value.
    public static let valueLength = 4096
    /// Custom parameter names.
    public static let customNameLength = 255
    /// How many distinct `custom_*` parameters a launch may carry.
    public static let customParameterCount = 100

    /// Whether `value` has at most `limit` characters (Unicode scalars), without counting past it.
    public static func fits(_ value: String, _ limit: Int) -> Bool {
        value.utf8.count <= limit || value.unicodeScalars.prefix(limit + 1).count <= limit
    }

    /// Refuses `value` of the parameter `name` when it is longer than `limit`.
    /// - Throws: ``LaunchRefusal`` with ``LaunchRefusal/Reason/fieldTooLong``.
    static func check(_ name: String, _ value: String?, limit: Int) throws(LaunchRefusal) {
        guard let value, !fits(value, limit) else { return }
        throw LaunchRefusal(
            .fieldTooLong,
            "The launch's \(LaunchRefusal.quoted(name)) is longer than the portal accepts (\(limit) characters). Ask the VLE's administrators to check what the link sends."
        )
    }
}
