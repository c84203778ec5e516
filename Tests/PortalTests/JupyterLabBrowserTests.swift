import Foundation
import NIOHTTP1
import TestSupport
import Testing

/// JupyterLab through the portal in a real browser (Debian's chromium, driven by Selenium): the
/// requests are the browser's own, with its `Origin`, `Sec-Fetch-*` and cookies, so this is where
/// the origin rule and the server's authentication must not get in a student's way. The student
/// creates a notebook from the launcher and runs a cell on its kernel (a POST and a WebSocket of
/// the page's own), and the page carries no token.
@Suite("JupyterLab in a real browser", .enabled(if: TestEnvironment.hasEngine && TestEnvironment.hasBrowser), .serialized)
struct JupyterLabBrowserTests {
    struct Run: Decodable {
        var title: String
        var output: String?
        var token_in_page: String?
        var errors: [String]
        var stage: String
        var statusbar: String?
        var cell: String?
        var failure: String?
    }

    @Test func aStudentRunsACellInJupyterLabInChromiumThroughThePortal() async throws {
        let database = try await TestDatabase.create()
        let directory = try TestProfiles.directory("portal-browser", profiles: ["course": TestProfiles.jupyter(memory: "768MiB")])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let port = try PortalProcess.freePort()
        let config = try PortalProcess.writeConfig(directory: directory, port: port, extra: """
            database:
              url: \(database.url)
            environments:
              engine: docker
              endpoint: \(try #require(TestEnvironment.engineEndpoint))
              profiles_dir: \(directory)/profiles
              default_profile: course-env
            """)
        let portal = try await PortalProcess(config: config, port: port)
        defer { portal.stop() }
        let origin = "http://127.0.0.1:\(port)"
        let signed = try PortalHarness.sign(url: origin + "/lti/launch", params: IndependentSigner.launchParameters(user: "browser-a"))
        let cookie = try await HostPoolTests.launchUntilReady(portal, body: signed.body)
        let lab = try #require(try await portal.get("/home?enter=1", cookie: cookie).headers["Location"].first)
        do {
            let token = String(cookie.dropFirst("portal_session=".count))
            // Kept for looking at when the test fails (the scratch directory goes).
            let screenshot = FileManager.default.temporaryDirectory.appendingPathComponent("portal-browser-lab.png").path
            let output = try await PythonTool.output("browser_lab.py", [origin, lab, "portal_session", token, screenshot])
            let run = try JSONDecoder().decode(Run.self, from: Data(output.utf8))
            #expect(run.output == "42", "\(run)\n\(portal.log.suffix(3000))")
            #expect(run.token_in_page?.isEmpty == true)
            #expect(!run.errors.contains { $0.contains(" 403") }, "the browser was refused something: \(run.errors)")
        } catch {
            try await HostileConnectionTests.removeContainers(servedAt: String(lab.dropLast("lab".count)))
            throw error
        }
        try await HostileConnectionTests.removeContainers(servedAt: String(lab.dropLast("lab".count)))
    }
}
