import Environments
import Foundation
import Hummingbird
import LTI
import Logging

/// `POST /lti/launch`: verifies an LTI 1.1 launch, records it, replaces the browser's session and
/// sends the browser on with `303 See Other`; refusals get an HTML page with the right status and a
/// way back to the VLE. `GET /lti/launch` (a refresh or the back button) explains what to do.
struct LaunchController: Sendable {
    /// Launch forms larger than this are refused.
    static let maximumFormSize = 1 << 20

    let validator: LaunchValidator
    let store: LaunchStore
    let resolver: LaunchURLResolver
    let pages: Pages
    let publicURL: PublicURL
    let sessionLifetime: Duration
    /// Environments, when an engine is configured.
    let environments: EnvironmentsRuntime?
    let marker: LaunchMarker

    func register(with router: Router<PortalRequestContext>) {
        router.post("/lti/launch") { request, context in try await self.launch(request, context: context) }
        router.get("/lti/launch") { _, _ in
            self.pages.response("launch_get", PageModel.Empty(), status: .methodNotAllowed, headers: [.allow: "POST"])
        }
    }

    func launch(_ request: Request, context: PortalRequestContext) async throws -> Response {
        let previousToken = SessionCookie.token(in: request)
        let facts = LaunchStore.RequestFacts(
            remoteAddress: context.remoteAddress,
            clientAddress: ClientAddress.of(headers: request.headers, peer: context.remoteAddress, resolver: resolver),
            requestID: context.requestID,
            previousSessionHash: previousToken.map(SessionToken.hash)
        )
        var request = request
        let launchRequest: LaunchRequest
        do {
            launchRequest = try await collect(&request, context: context)
        } catch let refusal as LaunchRefusal {
            let empty = LaunchRequest(method: "POST", baseURI: "", parameters: [])
            return try await refused(refusal, request: empty, facts: facts, context: context)
        }
        let launch: Launch
        let accepted: LaunchStore.Accepted
        var admission: AdmissionRefusal?
        do {
            // The nonce is consumed by the same transaction that records the launch.
            launch = try await validator.authenticate(launchRequest)
            let profile = try await resolveProfile(for: launch)
            accepted = try await store.accept(launch, facts: facts)
            if let profile, let courseID = accepted.courseID, let environments {
                let claim = EnvironmentClaim(userID: accepted.userID, courseID: courseID, profile: profile.0, profileVersion: profile.1)
                do {
                    let environment = try await environments.lifecycle.ensure(claim)
                    context.logger.info("environment", metadata: ["environment": "\(environment.id)", "state": "\(environment.state.rawValue)"])
                } catch let refusal as AdmissionRefusal {
                    context.logger.notice("environment refused", metadata: ["reason": "\(refusal.reason.rawValue)", "user": "\(accepted.userSlug)"])
                    admission = refusal
                }
            }
        } catch let refusal as LaunchRefusal {
            return try await refused(refusal, request: launchRequest, facts: facts, context: context)
        }
        context.logger.info(
            "launch accepted",
            metadata: ["consumer": "\(launch.consumerKey)", "user": "\(accepted.userSlug)", "launch": "\(accepted.launchID)", "role": "\(launch.portalRole.rawValue)"]
        )
        var response: Response
        if let admission {
            // The launch itself was good (the session is opened), but no environment can start now.
            response = pages.admissionRefused(admission, requestID: context.requestID, returnURL: returnURL(launchRequest, message: admission.message))
        } else {
            // Straight into the environment once it is ready; the marker lets /home notice a cookie
            // the browser refused to keep (an iframe with third-party cookies blocked).
            let marker = self.marker.make(sessionToken: accepted.sessionToken).map { "&launch=\($0)" } ?? ""
            response = Response(status: .seeOther, headers: [.location: publicURL.path("/home?enter=1\(marker)"), .cacheControl: "no-store"])
        }
        response.setCookie(
            SessionCookie.make(
                token: accepted.sessionToken,
                lifetime: sessionLifetime,
                https: resolver.isHTTPS(headers: request.headers, peer: context.remoteAddress),
                publicURL: publicURL
            )
        )
        return response
    }

    /// The profile for the launch's course, when environments are on and the launch is in a course.
    /// - Throws: ``LaunchRefusal`` when the link or the course names a profile that does not exist.
    private func resolveProfile(for launch: Launch) async throws -> (Profile, Int)? {
        guard let environments, let course = launch.context else { return nil }
        let resolution = try await environments.catalog.resolve(
            requested: launch.custom["custom_profile"], consumerKey: launch.consumerKey, contextID: course.id, contextLabel: course.label
        )
        switch resolution {
        case .profile(let profile, let version, _):
            return (profile, version)
        case .unknown(let slug, let source):
            throw LaunchRefusal(
                .unknownProfile,
                "This activity asks for the environment \"\(LaunchRefusal.quoted(slug))\" (\(source)), which the portal does not have. Please tell your course team.",
                signatureVerified: true
            )
        case .none:
            return nil
        }
    }

    /// Reads the form and assembles every signed parameter: URL query, OAuth header, body.
    private func collect(_ request: inout Request, context: PortalRequestContext) async throws -> LaunchRequest {
        let contentType = request.headers[.contentType]?.lowercased() ?? ""
        guard contentType.hasPrefix("application/x-www-form-urlencoded") else {
            throw LaunchRefusal(.malformedRequest, "A launch must be a form post (application/x-www-form-urlencoded) from the VLE.")
        }
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: Self.maximumFormSize)
        } catch {
            throw LaunchRefusal(.malformedRequest, "The launch form is larger than the portal accepts (1 MiB).")
        }
        var parameters = [Parameter]()
        if let query = request.uri.query {
            parameters += try PercentEncoding.parseForm(Substring(query))
        }
        if let authorization = request.headers[.authorization] {
            parameters += try LaunchRequest.oauthHeaderParameters(authorization)
        }
        parameters += try PercentEncoding.parseForm(Substring(String(buffer: body)))
        let baseURI = resolver.baseURI(path: request.uri.path, headers: request.headers, peer: context.remoteAddress)
        return LaunchRequest(method: request.method.rawValue, baseURI: baseURI, parameters: parameters)
    }

    private func refused(_ refusal: LaunchRefusal, request: LaunchRequest, facts: LaunchStore.RequestFacts, context: PortalRequestContext) async throws -> Response {
        let outcome = try await store.refuse(refusal, request: request, facts: facts)
        var metadata: Logger.Metadata = [
            "reason": "\(refusal.reason.rawValue)", "consumer": "\(LaunchRefusal.quoted(request.value("oauth_consumer_key") ?? "-"))",
            "client": "\(ClientAddress.refusalKey(facts.clientAddress))",
        ]
        switch outcome {
        case .recorded:
            context.logger.notice("launch refused", metadata: metadata)
        case .clientLimit, .totalLimit:
            metadata["limit"] = "\(outcome == .clientLimit ? "per client: \(store.refusalLimits.perClient)" : "in total: \(store.refusalLimits.perMinute)") a minute"
            context.logger.warning("launch refused; more refusals than the limit this minute are counted, not recorded", metadata: metadata)
        case .counted:
            context.logger.debug("launch refused (counted, not recorded)", metadata: metadata)
        }
        // Only a verified launch's return URL is the VLE's; any other is whatever its sender chose.
        let returnURL = refusal.signatureVerified ? returnURL(request, message: refusal.message) : nil
        let heading: String
        switch refusal.reason.kind {
        case .badRequest: heading = "This link could not be opened"
        case .unauthenticated: heading = "This launch could not be verified"
        case .forbidden: heading = "This launch is not allowed"
        }
        let page = PageModel.Refused(
            heading: heading, message: refusal.message, reason: refusal.reason.rawValue, requestID: context.requestID, returnURL: returnURL
        )
        return pages.response("refused", page, status: HTTPResponse.Status(code: refusal.reason.kind.httpStatus))
    }

    /// The VLE's return URL with `message` for it to show, when the launch gave a safe one.
    private func returnURL(_ request: LaunchRequest, message: String) -> String? {
        request.nonEmptyValue("launch_presentation_return_url").flatMap { url in
            Launch.isSafeReturnURL(url) ? Launch.returnURL(url, errorMessage: message) : nil
        }
    }
}
