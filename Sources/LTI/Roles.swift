import Foundation

/// LTI 1.1 roles as a VLE sends them (`roles`, comma-separated short names or URNs), and the portal
/// role they grant.
public struct Roles: Sendable, Equatable {
    /// Where a role applies.
    public enum Scope: String, Sendable {
        /// A role in the launching course (short names and `urn:lti:role:`).
        case context
        /// A role in the institution (`urn:lti:instrole:`).
        case institution
        /// A role in the VLE system (`urn:lti:sysrole:`).
        case system
    }

    /// One parsed role: its scope, its LIS name (`Instructor`, `Learner`…) and sub-role, if any.
    public struct Role: Sendable, Equatable {
        public var scope: Scope
        /// The LIS role name, e.g. `Instructor` or `TeachingAssistant`.
        public var name: String
        /// The sub-role, e.g. `TeachingAssistantSection` in `urn:lti:role:ims/lis/TeachingAssistant/TeachingAssistantSection`.
        public var subRole: String?
    }

    /// The portal's own coarse role, which decides what a person may do.
    public enum PortalRole: String, Sendable, Comparable, CaseIterable {
        /// A student of the course.
        case learner
        /// A member of the module team: may see and manage the course's environments.
        case courseStaff = "course_staff"
        /// A VLE system or institution administrator.
        case admin

        private var rank: Int {
            switch self {
            case .learner: 0
            case .courseStaff: 1
            case .admin: 2
            }
        }

        public static func < (lhs: PortalRole, rhs: PortalRole) -> Bool { lhs.rank < rhs.rank }
    }

    /// Every role the VLE sent that could be parsed, in order.
    public var roles: [Role]

    /// Context roles that make someone course staff. Only context roles count: an institution
    /// `Instructor` who is a learner in this course stays a learner here.
    static let staffContextRoles: Set<String> = [
        "Instructor", "TeachingAssistant", "ContentDeveloper", "Administrator", "Manager",
    ]

    /// System and institution roles that make someone a portal administrator.
    static let adminRoles: Set<String> = ["Administrator", "SysAdmin"]

    /// Parses the `roles` parameter. Unknown roles are kept (and grant nothing); empty items are skipped.
    public init(parsing value: String) {
        roles = value.split(separator: ",").compactMap { Self.parse($0.trimmingCharacters(in: .whitespaces)) }
    }

    /// The portal role these roles grant: admin from a system or institution administrator role,
    /// course staff from a staff role in the course, otherwise learner.
    public var portalRole: PortalRole {
        var result = PortalRole.learner
        for role in roles {
            switch role.scope {
            case .system, .institution:
                if Self.adminRoles.contains(role.name) { result = max(result, .admin) }
            case .context:
                if Self.staffContextRoles.contains(role.name) { result = max(result, .courseStaff) }
            }
        }
        return result
    }

    private static func parse(_ item: String) -> Role? {
        guard !item.isEmpty else { return nil }
        let prefixes: [(String, Scope)] = [
            ("urn:lti:role:ims/lis/", .context), ("urn:lti:instrole:ims/lis/", .institution), ("urn:lti:sysrole:ims/lis/", .system),
        ]
        for (prefix, scope) in prefixes where item.lowercased().hasPrefix(prefix) {
            let path = item.dropFirst(prefix.count).split(separator: "/", maxSplits: 1)
            guard let name = path.first else { return nil }
            return Role(scope: scope, name: String(name), subRole: path.count > 1 ? String(path[1]) : nil)
        }
        if item.contains(":") {
            // Some other URN or URI (e.g. an LTI 1.3 vocabulary): keep it, it grants nothing.
            return Role(scope: .context, name: item, subRole: nil)
        }
        // A short name is a context role (LTI 1.1 §B.2.1).
        let path = item.split(separator: "/", maxSplits: 1)
        return Role(scope: .context, name: String(path[0]), subRole: path.count > 1 ? String(path[1]) : nil)
    }
}
