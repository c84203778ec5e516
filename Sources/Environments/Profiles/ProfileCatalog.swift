/// The profiles and course mappings in force, and the rule that picks a course's profile:
/// the link's `custom_profile`, else an explicit course mapping (for this consumer, then for any),
/// else the first profile whose `match` rules fit the course, else the default profile.
public struct ProfileCatalog: Sendable {
    /// A course, as mappings name it.
    public struct CourseKey: Sendable, Hashable {
        public var consumerKey: String
        public var contextID: String
        public init(consumerKey: String, contextID: String) {
            self.consumerKey = consumerKey
            self.contextID = contextID
        }
    }

    /// What the catalog decided.
    public enum Resolution: Sendable, Equatable {
        /// Use this profile at this version; `source` says why (for records and staff pages).
        case profile(Profile, version: Int, source: String)
        /// Something named a profile that does not exist.
        case unknown(slug: String, source: String)
        /// No rule applies and there is no default.
        case none
    }

    public var profiles: [String: (profile: Profile, version: Int)]
    public var mappings: [CourseKey: String]
    public var defaultProfile: String?

    public init(profiles: [(Profile, Int)] = [], mappings: [CourseKey: String] = [:], defaultProfile: String? = nil) {
        self.profiles = Dictionary(profiles.map { ($0.0.slug, (profile: $0.0, version: $0.1)) }, uniquingKeysWith: { _, last in last })
        self.mappings = mappings
        self.defaultProfile = defaultProfile
    }

    /// Picks the profile for a launch into a course.
    public func resolve(requested: String?, consumerKey: String, contextID: String, contextLabel: String?) -> Resolution {
        func named(_ slug: String, _ source: String) -> Resolution {
            guard let entry = profiles[slug] else { return .unknown(slug: slug, source: source) }
            return .profile(entry.profile, version: entry.version, source: source)
        }
        if let requested, !requested.isEmpty { return named(requested, "link") }
        if let slug = mappings[CourseKey(consumerKey: consumerKey, contextID: contextID)] ?? mappings[CourseKey(consumerKey: "", contextID: contextID)] {
            return named(slug, "course mapping")
        }
        for slug in profiles.keys.sorted() {
            if let entry = profiles[slug], entry.profile.match?.matches(contextID: contextID, label: contextLabel) == true {
                return .profile(entry.profile, version: entry.version, source: "match rules")
            }
        }
        if let defaultProfile { return named(defaultProfile, "default") }
        return .none
    }
}
