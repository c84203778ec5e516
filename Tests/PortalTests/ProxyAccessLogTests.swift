import Foundation
import NIOHTTP1
import TestSupport
import Testing

/// Every request to an environment has a request id (`X-Request-Id`) and an access-log line at
/// `info` that says which proxy path carried it: the fast path, the router or the splice. A real
/// portal process at `log_level: info` and a light environment on Podman.
@Suite("Proxy access log", .enabled(if: TestEnvironment.hasEngine && TestEnvironment.hasPython), .serialized)
struct ProxyAccessLogTests {
    @Test func everyProxiedRequestHasAnIdAndALineNamingItsPath() async throws {
        let database = try await TestDatabase.create()
        let directory = try TestProfiles.directory("portal-access-log", profiles: ["light": TestProfiles.light()])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let port = try PortalProcess.freePort()
        let config = try PortalProcess.writeConfig(directory: directory, port: port, extra: """
            database:
              url: \(database.url)
            environments:
              engine: docker
              endpoint: \(try #require(TestEnvironment.engineEndpoint))
              profiles_dir: \(directory)/profiles
              default_profile: light
            """)
        let text = try String(contentsOfFile: config, encoding: .utf8).replacingOccurrences(of: "log_level: notice", with: "log_level: info")
        try text.write(toFile: config, atomically: true, encoding: .utf8)
        let portal = try await PortalProcess(config: config, port: port)
        defer { portal.stop() }
        let signed = try PortalHarness.sign(url: "http://127.0.0.1:\(port)/lti/launch", params: IndependentSigner.launchParameters(user: "logged-a"))
        let cookie = try await HostPoolTests.launchUntilReady(portal, body: signed.body)
        let base = String(try #require(try await portal.get("/home?enter=1", cookie: cookie).headers["Location"].first).dropLast("lab".count))
        do {
            // The first request fills the session cache (the router); the ones after it take the fast path.
            var ids = Set<String>()
            for _ in 0..<3 {
                let page = try await portal.get(base, cookie: cookie)
                #expect(page.status == .ok)
                ids.insert(try #require(page.headers["X-Request-Id"].first))
            }
            #expect(ids.count == 3)
            let echo = try PythonTool.start("ws_hold.py") { ["ws://127.0.0.1:\(port)\(base)echo", cookie, "http://127.0.0.1:\(port)", $0.readyFile] }
            try await echo.ready()
            echo.stop()
            let deadline = ContinuousClock.now + .seconds(120)
            var log = portal.log
            while !(["path=fast", "path=router", "path=splice"].allSatisfy { log.contains($0) }), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(200))
                log = portal.log
            }
            let lines = log.split(separator: "\n").filter { $0.contains("proxied") }
            for path in ["fast", "router", "splice"] {
                let line = lines.first { $0.contains("path=\(path)") }
                #expect(line != nil, "no access-log line for the \(path) path in:\n\(lines.joined(separator: "\n"))")
                #expect(line?.contains("target=\(base)") == true && line?.contains("hb.request.id=") == true, "\(line ?? "")")
            }
            #expect(lines.contains { line in line.contains("path=fast") && ids.contains { line.contains($0) } })
        } catch {
            try await HostileConnectionTests.removeContainers(servedAt: base)
            throw error
        }
        try await HostileConnectionTests.removeContainers(servedAt: base)
    }
}
