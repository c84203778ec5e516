import LTI
import Testing

/// LTI 1.1 certification cases 3.1–3.8 (role variants), plus Moodle's and Canvas's real role strings.
@Suite("LTI 1.1 roles")
struct RolesTests {
    @Test(arguments: [
        ("Learner", Roles.PortalRole.learner),
        ("Instructor", .courseStaff),
        ("urn:lti:role:ims/lis/Instructor", .courseStaff),
        ("urn:lti:role:ims/lis/Learner", .learner),
        ("Learner,Instructor", .courseStaff),
        ("urn:lti:role:ims/lis/Learner,urn:lti:role:ims/lis/TeachingAssistant/TeachingAssistantSection", .courseStaff),
        ("urn:lti:role:ims/lis/ContentDeveloper", .courseStaff),
        ("Mentor", .learner),
        ("Member", .learner),
        ("", .learner),
        ("urn:lti:instrole:ims/lis/Instructor", .learner),  // institution role only: no course rights
        ("urn:lti:instrole:ims/lis/Student,Learner", .learner),
        ("urn:lti:role:ims/lis/Unknown", .learner),
        ("Astronaut", .learner),
        ("http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor", .learner),
        // Moodle's site administrator.
        ("Instructor,urn:lti:sysrole:ims/lis/Administrator,urn:lti:instrole:ims/lis/Administrator", .admin),
        ("urn:lti:sysrole:ims/lis/SysAdmin", .admin),
        ("urn:lti:instrole:ims/lis/Administrator", .admin),
        // A context Administrator administers the course, not the portal.
        ("urn:lti:role:ims/lis/Administrator", .courseStaff),
        (" Learner , Instructor ", .courseStaff),
        ("URN:LTI:ROLE:IMS/LIS/Instructor", .courseStaff),
    ])
    func portalRole(value: String, expected: Roles.PortalRole) {
        #expect(Roles(parsing: value).portalRole == expected)
    }

    @Test func parsesScopesAndSubRoles() {
        let roles = Roles(parsing: "urn:lti:role:ims/lis/TeachingAssistant/Grader,urn:lti:instrole:ims/lis/Faculty,urn:lti:sysrole:ims/lis/User,Learner")
        #expect(roles.roles.map(\.scope) == [.context, .institution, .system, .context])
        #expect(roles.roles[0].name == "TeachingAssistant")
        #expect(roles.roles[0].subRole == "Grader")
        #expect(roles.roles[3].name == "Learner")
    }
}
