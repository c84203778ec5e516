@testable import Environments
import Foundation
import NIOHTTP1
import TestSupport
import Testing

/// The attacks of the security review, against a real `portal serve` process with its embedded
/// PostgreSQL and a real environment (the light image on Podman): every malformed request is
/// answered and closed, idle and slow connections are closed after the configured timeouts while
/// launches go on, oversized uploads leave no socket behind, a WebSocket ends with its session and
/// cross-origin WebSockets are refused — and after all of it SIGTERM still stops the portal and
/// its database. The raw clients are Python's own sockets and `websockets` (Tests/tools).
@Suite(
    "Hostile connections",
    .enabled(if: TestEnvironment.hasEngine && TestEnvironment.hasPython && (TestEnvironment.postgresBin != nil || TestEnvironment.requireAll)),
    .serialized
)
struct HostileConnectionTests {
    static func probe(_ port: Int, _ arguments: String...) async throws -> [String: Any] {
        let output = try await PythonTool.output("http_probe.py", ["127.0.0.1", "\(port)"] + arguments)
        return try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
    }

    static func number(_ value: Any?) -> Double { (value as? NSNumber)?.doubleValue ?? -1 }

    /// The number of file descriptors `pid` holds.
    static func descriptors(_ pid: Int32) throws -> Int {
        try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count
    }

    @Test func everyProbeIsAnsweredOrClosedAndSIGTERMStillStopsThePortalAndItsDatabase() async throws {
        let bin = try #require(TestEnvironment.postgresBin)
        let directory = try TestProfiles.directory("portal-hostile", profiles: ["light": TestProfiles.light()])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let port = try PortalProcess.freePort()
        let config = try PortalProcess.writeConfig(directory: directory, port: port, extra: """
            embedded_postgres:
              bin_dir: \(bin)
            http:
              header_timeout: 2s
              body_timeout: 2s
              keep_alive_timeout: 3s
              drain_timeout: 3s
            proxy:
              session_cache: 1s
            environments:
              engine: docker
              endpoint: \(try #require(TestEnvironment.engineEndpoint))
              profiles_dir: \(directory)/profiles
              default_profile: light
            """)
        let portal = try await PortalProcess(config: config, port: port)
        var stopped = false
        defer { if !stopped { portal.stop() } }
        let signed = try PortalHarness.signAll(
            ["hostile-a", "hostile-b", "hostile-a"].map { ("http://127.0.0.1:\(port)/lti/launch", IndependentSigner.launchParameters(user: $0)) }
        )
        let cookie = try await HostPoolTests.launchUntilReady(portal, body: signed[0].body)
        let enter = try await portal.get("/home?enter=1", cookie: cookie)
        let base = String(try #require(enter.headers["Location"].first).dropLast("lab".count))
        do {
            try await Self.attack(portal, base: base, cookie: cookie, signed: signed.map(\.body), directory: directory)
            stopped = true
        } catch {
            try await Self.removeContainers(servedAt: base)
            throw error
        }
        try await Self.removeContainers(servedAt: base)
    }

    static func attack(_ portal: PortalProcess, base: String, cookie: String, signed: [String], directory: String) async throws {
        let port = portal.port
        let origin = "http://127.0.0.1:\(port)"

        // Malformed requests: answered 400 (431 for too large a head, 414 for too long a target) and closed.
        let malformed = try await Self.probe(port, "malformed")
        let expected = [
            "bare LF": 400, "CL and TE": 400, "two Content-Lengths": 400, "obs-fold": 400, "lower-case method": 400, "1 MB header": 431,
            "100 KB target": 414, "HTTP/0.9": 400, "TLS on the plain port": 400, "10,000 headers": 431,
        ]
        for (name, status) in expected {
            let result = try #require(malformed[name] as? [String: Any], "\(name)")
            #expect(Self.number(result["status"]) == Double(status), "\(name): \(result)")
            #expect(result["closed"] as? Bool == true, "\(name): \(result)")
        }
        #expect(portal.log.contains("request refused"))

        // Idle and slow clients are closed after the configured limits (never before them).
        let silent = try await Self.probe(port, "silent")
        #expect(silent["closed"] as? Bool == true && Self.number(silent["seconds"]) >= 1.5, "\(silent)")
        let trickle = try await Self.probe(port, "trickle")
        #expect(Self.number(trickle["status"]) == 408 && trickle["closed"] as? Bool == true, "\(trickle)")
        #expect(Self.number(trickle["sent"]) < Self.number(trickle["length"]), "\(trickle)")
        let idle = try await Self.probe(port, "keepalive")
        #expect(Self.number(idle["status"]) == 200 && idle["closed"] as? Bool == true && Self.number(idle["idle_seconds"]) >= 2.5, "\(idle)")
        let paused = try await Self.probe(port, "body-pause")
        #expect(paused["closed"] as? Bool == true && Self.number(paused["seconds"]) >= 1.5, "\(paused)")
        let old = try await Self.probe(port, "http10")
        #expect(Self.number(old["status"]) == 200 && old["closed"] as? Bool == true, "\(old)")
        let late = try await Self.probe(port, "late-upgrade", base + "echo", cookie)
        #expect((late["statuses"] as? [Int]) == [200, 502] && late["closed"] as? Bool == true, "\(late)")

        // 500 slow connections at once: a launch still gets through, and every one of them is closed.
        let slow = try PythonTool.start("http_probe.py") { ["127.0.0.1", "\(port)", "slow", "500", $0.readyFile] }
        try await slow.ready()
        let during = try await portal.postForm("/lti/launch", body: signed[1])
        #expect(during.status == .seeOther)
        let slowResult = try #require(try JSONSerialization.jsonObject(with: Data(try await slow.output().utf8)) as? [String: Any])
        #expect(Self.number(slowResult["opened"]) == 500 && Self.number(slowResult["closed"]) == 500, "\(slowResult)")

        // Oversized launch forms with Connection: close leave no descriptor behind.
        let pid = portal.process.processIdentifier
        #expect((try await Self.probe(port, "oversized", "5")["statuses"] as? [Int]) == [400, 400, 400, 400, 400])
        try await Task.sleep(for: .seconds(1))
        let baseline = try Self.descriptors(pid)
        #expect((try await Self.probe(port, "oversized", "20")["statuses"] as? [Int]) == Array(repeating: 400, count: 20))
        let deadline = ContinuousClock.now + .seconds(120)
        var now = try Self.descriptors(pid)
        while now > baseline, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(200))
            now = try Self.descriptors(pid)
        }
        #expect(now <= baseline, "the portal holds \(now) descriptors, \(baseline) before the uploads")

        // WebSockets: another site's page is refused; the student's own socket ends with its session.
        let echo = "ws://127.0.0.1:\(port)\(base)echo"
        let foreign = try PythonTool.start("ws_hold.py") { [echo, cookie, "http://evil.example", $0.readyFile] }
        #expect(try await foreign.output().contains(#""status": 403"#))
        #expect(portal.log.contains("cross-origin request refused"))
        let held = try PythonTool.start("ws_hold.py") { [echo, cookie, origin, $0.readyFile] }
        try await held.ready()
        let relaunch = try await portal.postForm("/lti/launch", body: signed[2], cookie: cookie)  // the same browser launches again
        #expect(relaunch.status == .seeOther)
        let heldResult = try await held.output()
        #expect(heldResult.contains(#""echo": "ping through the portal""#) && !heldResult.contains(#""closed_after": null"#), "\(heldResult)")
        #expect(portal.log.contains("websocket closed: its session ended"))

        // After all of that, with a WebSocket and a slow client still open, SIGTERM ends the portal
        // and its embedded PostgreSQL.
        let newCookie = try #require(relaunch.headers["Set-Cookie"].first?.split(separator: ";").first.map(String.init))
        let open = try PythonTool.start("ws_hold.py") { [echo, newCookie, origin, $0.readyFile] }
        try await open.ready()
        let lingering = try PythonTool.start("http_probe.py") { ["127.0.0.1", "\(port)", "slow", "20", $0.readyFile] }
        try await lingering.ready()
        portal.process.terminate()
        let exitDeadline = ContinuousClock.now + .seconds(120)
        while portal.process.isRunning, ContinuousClock.now < exitDeadline { try await Task.sleep(for: .milliseconds(100)) }
        #expect(!portal.process.isRunning, "the portal did not exit after SIGTERM:\n\(portal.log.suffix(2000))")
        #expect(!FileManager.default.fileExists(atPath: directory + "/data/postgres/postmaster.pid"), "the embedded PostgreSQL is still running")
        _ = try await open.output()
        _ = try await lingering.output()
    }

    /// Removes the containers of the installation whose environment is served at `base` (they
    /// outlive the portal: the next start adopts them).
    static func removeContainers(servedAt base: String) async throws {
        let engine = try DockerEngine(endpoint: try #require(TestEnvironment.engineEndpoint), client: PodmanLifecycleTests.http)
        let user = String(base.split(separator: "/")[1])
        guard let installation = try await engine.listContainers(labels: [Labels.user: user]).first?.labels[Labels.installation] else { return }
        for container in try await engine.listContainers(labels: [Labels.installation: installation]) { try await engine.removeContainer(container.id) }
    }
}
