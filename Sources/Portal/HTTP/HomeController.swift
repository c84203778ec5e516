import Environments
import Foundation
import HTTPTypes
import Hummingbird
import LTI

/// `GET /` and `GET /home`: the landing page after a launch says who is signed in, in which course,
/// with which role, and — with environments on — shows the environment's progress (it reloads
/// itself every two seconds while starting, with or without JavaScript). `GET /environment/status`
/// gives the same as JSON; `POST /environment/retry` and `POST /environment/stop` act on it.
struct HomeController: Sendable {
    let sessions: SessionStore
    let pages: Pages
    let environments: EnvironmentsRuntime?
    let handover: Handover

    func register(with router: Router<PortalRequestContext>) {
        router.get("/") { _, _ in self.pages.response("index", PageModel.Empty()) }
        router.get("/home") { request, _ in try await self.home(request) }
        router.get("/environment/status") { request, _ in try await self.status(request) }
        router.post("/environment/retry") { request, context in try await self.act(request, context: context, retry: true) }
        router.post("/environment/stop") { request, context in try await self.act(request, context: context, retry: false) }
        router.get("/launch/continue") { request, context in try await self.continueLaunch(request, context: context) }
    }

    private func session(_ request: Request) async throws -> (String, SessionStore.Session)? {
        guard let token = SessionCookie.token(in: request), let session = try await sessions.find(token: token) else { return nil }
        return (token, session)
    }

    func home(_ request: Request) async throws -> Response {
        guard let (token, session) = try await session(request) else {
            if let marker = request.uri.queryParameters["launch"], let parent = handover.marker.open(String(marker)) {
                // A launch just happened but its cookie did not come back: the VLE shows the portal in
                // an iframe and the browser blocks third-party cookies.
                return try await cookieBlocked(parent: parent)
            }
            return pages.response("no_session", PageModel.Empty(), status: .unauthorized)
        }
        let course = session.courseID.map { _ in
            PageModel.Landing.Course(title: session.courseTitle ?? session.courseLabel ?? session.contextID ?? "Your course", label: session.courseLabel)
        }
        var page = PageModel.Landing(
            name: session.displayName, consumer: session.consumerKey, course: course, roleName: Self.roleName(session.role), returnURL: session.returnURL
        )
        var headers: HTTPFields = [:]
        if let environments, let courseID = session.courseID, session.role != .learner {
            page.budgetNotice = try await budgetNotice(environments, session: session, courseID: courseID)
        }
        if let environments, let courseID = session.courseID {
            if let record = try await environments.repository.latest(userID: session.userID, courseID: courseID) {
                if record.state == .ready, request.uri.queryParameters["enter"] == "1" {
                    return Response(status: .seeOther, headers: [.location: try await entry(record, session: session, token: token), .cacheControl: "no-store"])
                }
                let view = Self.view(record, formToken: SessionToken.formToken(for: token))
                if view.inProgress { headers[.refresh] = "2; url=home?enter=1" }
                page.environment = view
            } else {
                page.noEnvironment = true
            }
        }
        return pages.response("landing", page, headers: headers)
    }

    func status(_ request: Request) async throws -> Response {
        guard let (token, session) = try await session(request), let courseID = session.courseID, let environments,
            let record = try await environments.repository.latest(userID: session.userID, courseID: courseID)
        else {
            return Self.json(["state": "none"], status: .notFound)
        }
        let view = Self.view(record, formToken: SessionToken.formToken(for: token))
        var object: [String: Any] = ["state": view.state, "message": view.message, "elapsed_seconds": view.elapsedSeconds]
        if view.ready { object["url"] = "/home?enter=1" }
        return Self.json(object)
    }

    func act(_ request: Request, context: PortalRequestContext, retry: Bool) async throws -> Response {
        guard let (token, session) = try await session(request) else {
            return pages.response("no_session", PageModel.Empty(), status: .unauthorized)
        }
        let form = try await request.body.collect(upTo: 4096)
        let fields = (try? PercentEncoding.parseForm(Substring(String(buffer: form)))) ?? []
        guard let given = fields.first(where: { $0.name == "form_token" })?.value, SessionToken.isValidFormToken(given, for: token) else {
            return pages.response("error", PageModel.Failure(message: "This form has expired. Go back and try again.", requestID: context.requestID), status: .forbidden)
        }
        if let environments, let courseID = session.courseID, let record = try await environments.repository.latest(userID: session.userID, courseID: courseID) {
            if retry, record.state == .failed || record.state == .stopped {
                let claim = EnvironmentClaim(userID: session.userID, courseID: courseID, profile: record.profile, profileVersion: record.profileVersion)
                do {
                    _ = try await environments.lifecycle.ensure(claim)
                } catch let refusal as AdmissionRefusal {
                    return pages.admissionRefused(refusal, requestID: context.requestID, returnURL: nil)
                }
            } else if !retry, record.state.isLive {
                environments.lifecycle.requestStop(record.id, reason: session.role == .learner ? .student : .staff)
            }
        }
        return Response(status: .seeOther, headers: [.location: "home", .cacheControl: "no-store"])
    }

    /// What the module team is told about the course's budget this period, if anything.
    private func budgetNotice(_ environments: EnvironmentsRuntime, session: SessionStore.Session, courseID: Int64) async throws -> String? {
        guard let contextID = session.contextID, let cap = environments.repository.rules.budget(consumerKey: session.consumerKey, contextID: contextID),
            let window = cap.window(containing: Date())
        else { return nil }
        let alert = try await SpendAlerts(client: environments.repository.client).latest(courseID: courseID, periodStart: window.start)
        return alert?.notice(period: cap.describe(window))
    }

    static func view(_ record: EnvironmentRecord, formToken: String) -> PageModel.Landing.Environment {
        PageModel.Landing.Environment(
            state: record.state.rawValue,
            message: record.message ?? record.state.rawValue,
            elapsedSeconds: Int((record.readyAt ?? Date()).timeIntervalSince(record.requestedAt)),
            inProgress: record.state == .requested || record.state == .starting || record.state == .stopping,
            ready: record.state == .ready,
            failed: record.state == .failed,
            stopped: record.state == .stopped,
            profileName: record.profile.displayName,
            formToken: formToken
        )
    }

    static func json(_ object: [String: Any], status: HTTPResponse.Status = .ok) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json", .cacheControl: "no-store"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// The role as the landing page names it.
    static func roleName(_ role: Roles.PortalRole) -> String {
        switch role {
        case .learner: "Student"
        case .courseStaff: "Course staff (module team)"
        case .admin: "Administrator"
        }
    }
}
