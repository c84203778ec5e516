import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
@testable import Portal
import TestSupport
import Testing

/// A VLE that shows the portal in an iframe, in a browser that blocks third-party cookies: the
/// launch's cookie never comes back, and the student is offered a new window instead of a broken frame.
@Suite("Launches in iframes without cookies", .enabled(if: TestEnvironment.hasDatabase && TestEnvironment.hasPython))
struct HandoverTests {
    @Test func aBrowserThatDropsTheCookieContinuesTheLaunchInANewWindowOnce() async throws {
        try await PortalHarness.withPortal(publicURL: "http://portal.test") { client, _ in
            let signed = try PortalHarness.sign(url: "http://portal.test/lti/launch")
            let launch = try await PortalHarness.post(client, body: signed.body)
            #expect(launch.status == .seeOther)
            let location = try #require(launch.headers[.location])

            // The frame follows the redirect without the cookie.
            let blocked = try await client.execute(uri: location, method: .get)
            #expect(blocked.status == .ok)
            let page = String(buffer: blocked.body)
            #expect(page.contains("Open in a new window"))
            #expect(blocked.headers[.init("Referrer-Policy")!] == "no-referrer")
            let link = String(try #require(page.firstMatch(of: /href="(\/launch\/continue\?code=[^"]+)" target="_blank"/)?.1))

            // The new window (first-party) gets its own session cookie and goes on; the link works once.
            let continued = try await client.execute(uri: link, method: .get)
            #expect(continued.status == .seeOther)
            #expect(continued.headers[.location] == "/home?enter=1")
            let token = try #require(PortalHarness.sessionToken(continued))
            #expect(try #require(continued.headers[.setCookie]).contains("HttpOnly"))
            #expect(try await client.execute(uri: link, method: .get).status == .forbidden)
            let home = try await client.execute(uri: "/home", method: .get, headers: [.cookie: "portal_session=\(token)"])
            #expect(home.status == .ok)
            #expect(String(buffer: home.body).contains("Student student-1"))

            // Without a genuine launch marker it is the ordinary "start from your course" page.
            #expect(try await client.execute(uri: "/home?enter=1&launch=forged", method: .get).status == .unauthorized)
        }
    }
}
