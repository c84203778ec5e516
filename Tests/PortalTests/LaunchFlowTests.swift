import Foundation
import HTTPTypes
import HummingbirdTesting
import LTI
import PostgresNIO
@testable import Portal
import TestSupport
import Testing

@Suite("LTI 1.1 launches end to end", .enabled(if: TestEnvironment.hasDatabase && TestEnvironment.hasPython))
struct LaunchFlowTests {
    typealias Harness = PortalHarness

    @Test func anIndependentlySignedLaunchLandsWithUserCourseAndRoleRecorded() async throws {
        try await Harness.withPortal { client, db in
            let params = IndependentSigner.launchParameters(user: "u-ada", roles: "Instructor", extra: [("custom_profile", "tm351"), ("lis_person_name_full", "Ada Lovelace")])
            let signed = try Harness.sign(params: params)
            let response = try await Harness.post(client, body: signed.body)
            #expect(response.status == .seeOther)
            let location = try #require(response.headers[.location])
            #expect(location.hasPrefix("/home?enter=1&launch="))
            let cookie = try #require(response.headers[.setCookie])
            #expect(cookie.contains("HttpOnly"))
            #expect(cookie.contains("Secure"))
            #expect(cookie.contains("SameSite=None"))
            let token = try #require(Harness.sessionToken(response))

            let home = try await client.execute(uri: "/home", method: .get, headers: [.cookie: "portal_session=\(token)"])
            #expect(home.status == .ok)
            let html = String(buffer: home.body)
            #expect(html.contains("Ada Lovelace"))
            #expect(html.contains("Data management and analysis"))
            #expect(html.contains("Course staff"))

            #expect(try await TestDatabase.count(db, "SELECT count(*) FROM users WHERE consumer_key = 'vle' AND lti_user_id = 'u-ada' AND full_name = 'Ada Lovelace'") == 1)
            #expect(try await TestDatabase.count(db, "SELECT count(*) FROM courses WHERE context_id = 'TM351-25J' AND title = 'Data management and analysis'") == 1)
            #expect(try await TestDatabase.count(db, "SELECT count(*) FROM enrolments WHERE role = 'course_staff' AND lti_roles = 'Instructor'") == 1)
            #expect(try await TestDatabase.count(db, "SELECT count(*) FROM launches WHERE outcome = 'accepted' AND custom->>'custom_profile' = 'tm351'") == 1)
            #expect(try await TestDatabase.count(db, "SELECT count(*) FROM sessions") == 1)
            // The user's slug is opaque: nothing of the user id or name is in it.
            for try await slug in try await db.query("SELECT slug FROM users").decode(String.self) {
                #expect(slug.count == 12)
                #expect(!slug.contains("ada"))
            }
            // The token itself is not stored, only its hash.
            #expect(try await TestDatabase.count(db, "SELECT count(*) FROM sessions WHERE length(token_hash) = 32") == 1)
            #expect(!html.contains(token))
        }
    }

    @Test func theLtiToolConsumerLaunchIsAcceptedAndALaterLaunchReplacesTheSession() async throws {
        try await Harness.withPortal { client, db in
            let first = try Harness.sign(params: IndependentSigner.launchParameters(user: "alice"), implementation: .lti)
            let firstResponse = try await Harness.post(client, body: first.body)
            #expect(firstResponse.status == .seeOther)
            let aliceToken = try #require(Harness.sessionToken(firstResponse))

            // Bob launches on the same shared browser: Alice's session ends.
            let second = try Harness.sign(params: IndependentSigner.launchParameters(user: "bob", roles: "Learner"))
            let secondResponse = try await Harness.post(client, body: second.body, headers: [.cookie: "portal_session=\(aliceToken)"])
            #expect(secondResponse.status == .seeOther)
            let bobToken = try #require(Harness.sessionToken(secondResponse))
            #expect(bobToken != aliceToken)
            let alice = try await client.execute(uri: "/home", method: .get, headers: [.cookie: "portal_session=\(aliceToken)"])
            #expect(alice.status == .unauthorized)
            let bob = try await client.execute(uri: "/home", method: .get, headers: [.cookie: "portal_session=\(bobToken)"])
            #expect(bob.status == .ok)
            #expect(String(buffer: bob.body).contains("Student bob"))
            #expect(String(buffer: bob.body).contains("Student</dd>"))
            #expect(try await TestDatabase.count(db, "SELECT count(*) FROM sessions") == 1)
            #expect(try await TestDatabase.count(db, "SELECT count(*) FROM users") == 2)
        }
    }

    /// Every refused variant gets the right status and page, is recorded with its reason, and
    /// creates no user, course or session.
    @Test func refusalsWriteNothingButTheirRecord() async throws {
        try await Harness.withPortal { client, db in
            let now = Int(Date().timeIntervalSince1970)
            let base = IndependentSigner.launchParameters(user: "mallory")
            let url = "https://portal.example.ac.uk/lti/launch"
            let signed = try Harness.signAll([
                (url, base),  // 0: good, then tampered
                (url, base),  // 1: replay
                (url, base.filter { $0.0 != "resource_link_id" }),  // 2: cert 1.1
                (url, base.filter { $0.0 != "resource_link_id" && $0.0 != "launch_presentation_return_url" }),  // 3: cert 1.2
                (url, base.filter { $0.0 != "lti_version" } + [("lti_version", "LTI-2p0")]),  // 4: bad version
                (url, base.filter { $0.0 != "lti_message_type" }),  // 5: missing message type
                (url, base.filter { $0.0 != "user_id" }),  // 6: anonymous
            ])
            let stale = try Harness.sign(params: base, timestamp: now - 400)
            let future = try Harness.sign(params: base, timestamp: now + 400)
            let unknownKey = try Harness.sign(params: base, key: "stranger")
            let wrongSecret = try Harness.sign(params: base, secret: "guess")
            let wrongMethod = try IndependentSigner.sign([
                .init(url: url, key: Harness.consumerKey, secret: Harness.consumerSecret, params: base, timestamp: now, nonce: UUID().uuidString, signatureMethod: "HMAC-SHA256")
            ])[0]
            let tamperedSignature = signed[0].replacing("oauth_signature", with: "AAAAAAAAAAAAAAAAAAAAAAAAAAA=")
            let tamperedBody = signed[0].replacing("roles", with: "Instructor")

            #expect(try await Harness.post(client, body: signed[1].body).status == .seeOther)
            #expect(try await TestDatabase.count(db, "SELECT count(*) FROM users") == 1)

            let cases: [(String, String, Int, String)] = [
                ("tampered signature", tamperedSignature, 401, "invalid_signature"),
                ("tampered body", tamperedBody, 401, "invalid_signature"),
                ("replayed nonce", signed[1].body, 401, "replayed_nonce"),
                ("stale timestamp", stale.body, 401, "stale_timestamp"),
                ("future timestamp", future.body, 401, "stale_timestamp"),
                ("unknown key", unknownKey.body, 401, "unknown_consumer"),
                ("wrong secret", wrongSecret.body, 401, "invalid_signature"),
                ("wrong signature method", wrongMethod.body, 400, "unsupported_signature_method"),
                ("missing resource_link_id", signed[2].body, 400, "missing_resource_link"),
                ("missing resource_link_id and return URL", signed[3].body, 400, "missing_resource_link"),
                ("bad LTI version", signed[4].body, 400, "wrong_lti_version"),
                ("missing message type", signed[5].body, 400, "wrong_message_type"),
                ("no user", signed[6].body, 403, "missing_user"),
                ("not a form", "{}", 400, "malformed_request"),
            ]
            for (name, body, status, reason) in cases {
                let headers: HTTPFields = name == "not a form" ? [.contentType: "application/json"] : [:]
                let response: TestResponse
                if name == "not a form" {
                    response = try await client.execute(uri: "/lti/launch", method: .post, headers: headers, body: ByteBuffer(string: body))
                } else {
                    response = try await Harness.post(client, body: body)
                }
                #expect(response.status.code == status, "\(name)")
                #expect(response.headers[.setCookie] == nil, "\(name)")
                let html = String(buffer: response.body)
                #expect(html.contains(reason), "\(name)")
                #expect(!html.contains(Harness.consumerSecret), "\(name)")
                if name == "missing resource_link_id" {
                    #expect(html.contains("https://vle.example.ac.uk/mod/lti/return.php?course=7&amp;lti_errormsg="), "\(name)")
                }
                if name == "missing resource_link_id and return URL" {
                    #expect(!html.contains("lti_errormsg"), "\(name)")
                }
            }
            #expect(try await TestDatabase.count(db, "SELECT count(*) FROM users") == 1)
            #expect(try await TestDatabase.count(db, "SELECT count(*) FROM courses") == 1)
            #expect(try await TestDatabase.count(db, "SELECT count(*) FROM sessions") == 1)
            #expect(try await TestDatabase.count(db, "SELECT count(*) FROM launches WHERE outcome = 'refused'") == cases.count)
            // No signature or secret is ever recorded.
            #expect(try await TestDatabase.count(db, "SELECT count(*) FROM launches WHERE launches::text LIKE '%oauth_signature%' OR launches::text LIKE '%vle-secret%'") == 0)
        }
    }

    @Test func aGetOnTheLaunchURLExplainsWhatToDo() async throws {
        try await Harness.withPortal { client, _ in
            let response = try await client.execute(uri: "/lti/launch", method: .get)
            #expect(response.status == .methodNotAllowed)
            #expect(response.headers[.allow] == "POST")
            #expect(String(buffer: response.body).contains("Open this activity from your course"))
            let home = try await client.execute(uri: "/home", method: .get)
            #expect(home.status == .unauthorized)
            #expect(String(buffer: home.body).contains("start from your course"))
            let health = try await client.execute(uri: "/healthz", method: .get)
            #expect(health.status == .ok)
            #expect(health.headers[.init("X-Request-Id")!] != nil)
        }
    }

    @Test func aTrustedProxysForwardedURLIsTheSignedOne() async throws {
        try await Harness.withPortal(publicURL: "http://portal.internal:8080", trustedProxies: ["127.0.0.0/8"]) { client, db in
            let forwarded: HTTPFields = [
                .init("X-Forwarded-Proto")!: "https", .init("X-Forwarded-Host")!: "Portal.Example.AC.UK", .init("X-Forwarded-Port")!: "8443",
            ]
            let signed = try Harness.sign(url: "https://portal.example.ac.uk:8443/lti/launch?course=TM351", params: IndependentSigner.launchParameters(user: "via-proxy"))
            let response = try await Harness.post(client, body: signed.body, path: "/lti/launch?course=TM351", headers: forwarded)
            #expect(response.status == .seeOther)
            // https as the browser sees it: the cookie works inside the VLE's iframe.
            let cookie = try #require(response.headers[.setCookie])
            #expect(cookie.contains("Secure") && cookie.contains("SameSite=None"))
            // The same launch re-signed for the plain internal URL does not verify behind the proxy.
            let internalURL = try Harness.sign(url: "http://portal.internal:8080/lti/launch", params: IndependentSigner.launchParameters(user: "via-proxy"))
            #expect(try await Harness.post(client, body: internalURL.body, headers: forwarded).status == .unauthorized)
            #expect(try await TestDatabase.count(db, "SELECT count(*) FROM users") == 1)
        }
    }

    @Test func anUntrustedPeersForwardedHeadersAreIgnored() async throws {
        try await Harness.withPortal(publicURL: "https://portal.example.ac.uk", trustedProxies: ["10.0.0.0/8"]) { client, db in
            let forwarded: HTTPFields = [.init("X-Forwarded-Proto")!: "http", .init("X-Forwarded-Host")!: "attacker.example"]
            // Signed for the attacker's URL: refused, because the peer (127.0.0.1) is not a trusted proxy.
            let attacker = try Harness.sign(url: "http://attacker.example/lti/launch", params: IndependentSigner.launchParameters(user: "eve"))
            let refused = try await Harness.post(client, body: attacker.body, headers: forwarded)
            #expect(refused.status == .unauthorized)
            #expect(String(buffer: refused.body).contains("invalid_signature"))
            // Signed for the configured public URL: accepted whatever the headers claim.
            let genuine = try Harness.sign(params: IndependentSigner.launchParameters(user: "eve"))
            let accepted = try await Harness.post(client, body: genuine.body, headers: forwarded)
            #expect(accepted.status == .seeOther)
            #expect(accepted.headers[.setCookie]?.contains("Secure") == true)
            #expect(try await TestDatabase.count(db, "SELECT count(*) FROM launches WHERE outcome = 'refused' AND reason = 'invalid_signature'") == 1)
        }
    }
}
