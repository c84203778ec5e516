import Hummingbird
import LTI

/// `GET /` and `GET /home`: the landing page after a launch says who is signed in, in which course,
/// with which role; without a session it asks the person to start from their course.
struct HomeController: Sendable {
    let sessions: SessionStore
    let pages: Pages

    func register(with router: Router<PortalRequestContext>) {
        router.get("/") { _, _ in self.pages.response("index", PageModel.Empty()) }
        router.get("/home") { request, _ in try await self.home(request) }
    }

    func home(_ request: Request) async throws -> Response {
        guard let token = SessionCookie.token(in: request), let session = try await sessions.find(token: token) else {
            return pages.response("no_session", PageModel.Empty(), status: .unauthorized)
        }
        let course = session.courseID.map { _ in
            PageModel.Landing.Course(title: session.courseTitle ?? session.courseLabel ?? session.contextID ?? "Your course", label: session.courseLabel)
        }
        let page = PageModel.Landing(
            name: session.displayName, consumer: session.consumerKey, course: course, roleName: Self.roleName(session.role), returnURL: session.returnURL
        )
        return pages.response("landing", page)
    }

    static func roleName(_ role: String) -> String {
        switch Roles.PortalRole(rawValue: role) {
        case .learner: "Student"
        case .courseStaff: "Course staff (module team)"
        case .admin: "Administrator"
        case nil: role
        }
    }
}
