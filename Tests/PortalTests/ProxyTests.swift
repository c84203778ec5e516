import AsyncHTTPClient
import Crypto
@testable import Environments
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import PostgresNIO
@testable import Portal
import TestSupport
import Testing

/// The proxy end to end: real portal, real PostgreSQL, Podman and the real Jupyter image; launches
/// signed by oauthlib; WebSockets driven by the `websockets` library.
@Suite("The proxy", .enabled(if: TestEnvironment.hasEngine && TestEnvironment.hasPython), .serialized)
struct ProxyTests {
    /// An environments section with one profile for `TM351-*` courses.
    static func environments(idleTimeout: String = "1h", memory: String = "384MiB") throws -> PortalConfiguration.EnvironmentsConfiguration {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("profiles-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try """
            slug: course-env
            display_name: Course environment
            image: \(TestEnvironment.image)
            cpu: 1
            memory: \(memory)
            idle_timeout: \(idleTimeout)
            persistence: disposable
            match:
              context_labels: ["TM351-*"]
            """.write(toFile: directory + "/course.yaml", atomically: true, encoding: .utf8)
        var environments = PortalConfiguration.EnvironmentsConfiguration()
        environments.engine = .docker
        environments.endpoint = try #require(TestEnvironment.engineEndpoint)
        environments.profilesDirectory = directory
        return environments
    }

    /// Follows `/home?enter=1` until the environment is ready and the portal sends the browser in.
    static func enter(_ client: any TestClientProtocol, cookie: String, location: String = "/home?enter=1") async throws -> String {
        let deadline = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < deadline {
            let response = try await client.execute(uri: location, method: .get, headers: [.cookie: cookie, .accept: "text/html"])
            if response.status == .seeOther, let next = response.headers[.location], !next.hasPrefix("/home") { return next }
            #expect(response.status == .ok)
            try await Task.sleep(for: .milliseconds(500))
        }
        throw MissingComponent("the environment did not become ready within 120 s")
    }

    /// Launches `user` into a `TM351-*` course and waits until the portal sends the browser into its
    /// environment; returns the session cookie and the entry (`<base>lab`).
    static func launchIntoLab(_ client: any TestClientProtocol, user: String) async throws -> (cookie: String, entry: String) {
        let signed = try PortalHarness.sign(params: IndependentSigner.launchParameters(user: user, context: "TM351-25J"))
        let launch = try await PortalHarness.post(client, body: signed.body)
        let cookie = "portal_session=\(try #require(PortalHarness.sessionToken(launch)))"
        return (cookie, try await enter(client, cookie: cookie, location: try #require(launch.headers[.location])))
    }

    /// Runs `body`, then removes whatever containers the portal under test started.
    static func removingContainers(_ db: PostgresClient, _ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch {
            await removeContainers(db)
            throw error
        }
        await removeContainers(db)
    }

    static func removeContainers(_ db: PostgresClient) async {
        guard let endpoint = TestEnvironment.engineEndpoint, let engine = try? DockerEngine(endpoint: endpoint, client: PodmanLifecycleTests.http),
            let installation = try? await EnvironmentsRuntime.installationID(db)
        else { return }
        for container in (try? await engine.listContainers(labels: [Labels.installation: installation])) ?? [] { try? await engine.removeContainer(container.id) }
    }

    static func token(_ db: PostgresClient) async throws -> String {
        let box = try SecretBox(source: .value("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="))
        for try await sealed in try await db.query("SELECT token_sealed FROM environments ORDER BY id DESC LIMIT 1").decode(ByteBuffer.self) {
            return try box.open(Data(buffer: sealed))
        }
        throw MissingComponent("no environment")
    }

    @Test func aStudentWorksInJupyterLabThroughThePortalNobodyElseGetsInAndAnIdleEnvironmentIsCulled() async throws {
        var proxy = PortalConfiguration.ProxyConfiguration()
        proxy.cullInterval = .seconds(2)
        proxy.activityInterval = .seconds(1)
        try await PortalHarness.withPortal(environments: try Self.environments(idleTimeout: "1m", memory: "768MiB"), proxy: proxy) { client, db in
            try await Self.removingContainers(db) {
                let port = try #require(client.port)
                let signed = try PortalHarness.signAll([
                    ("https://portal.example.ac.uk/lti/launch", IndependentSigner.launchParameters(user: "proxy-a", context: "TM351-25J")),
                    ("https://portal.example.ac.uk/lti/launch", IndependentSigner.launchParameters(user: "proxy-b", context: "OTHER-1")),
                ])
                let launchA = try await PortalHarness.post(client, body: signed[0].body)
                let launchB = try await PortalHarness.post(client, body: signed[1].body)
                let cookieA = "portal_session=\(try #require(PortalHarness.sessionToken(launchA)))"
                let cookieB = "portal_session=\(try #require(PortalHarness.sessionToken(launchB)))"
                var received = [String]()  // everything A's browser got, to look for the server's token

                // Progress, then straight into JupyterLab.
                let entry = try await Self.enter(client, cookie: cookieA, location: try #require(launchA.headers[.location]))
                #expect(entry.hasPrefix("/user/"))
                #expect(entry.hasSuffix("/lab"))
                let base = String(entry.dropLast("lab".count))
                let lab = try await client.execute(uri: entry, method: .get, headers: [.cookie: cookieA, .accept: "text/html"])
                #expect(lab.status == .ok)
                #expect(String(buffer: lab.body).contains("jupyter-config-data"))
                received.append(String(buffer: lab.body) + "\(lab.headers)")

                // A contents API round trip.
                let json: HTTPFields = [.cookie: cookieA, .contentType: "application/json"]
                let put = try await client.execute(
                    uri: base + "api/contents/hello.txt", method: .put, headers: json,
                    body: ByteBuffer(string: #"{"type": "file", "format": "text", "content": "hello through the portal"}"#)
                )
                #expect(put.status == .created)
                let get = try await client.execute(uri: base + "api/contents/hello.txt", method: .get, headers: [.cookie: cookieA])
                #expect(String(buffer: get.body).contains("hello through the portal"))
                received += [String(buffer: put.body), String(buffer: get.body), "\(get.headers)"]

                // A kernel runs code over a WebSocket through the portal.
                let url = "http://127.0.0.1:\(port)\(base)"
                let run = try await PythonTool.output("jupyter_ws.py", ["execute", url, cookieA])
                #expect(run.contains(#""output": "42\n""#))
                #expect(run.contains(#""subprotocol": "v1.kernel.websocket.jupyter.org""#))

                // 50 MB up and down, intact.
                var bytes = [UInt8](repeating: 0, count: 50 << 20)
                var generator = SystemRandomNumberGenerator()
                for index in stride(from: 0, to: bytes.count, by: 8) {
                    withUnsafeBytes(of: generator.next() as UInt64) { bytes.replaceSubrange(index..<index + 8, with: $0) }
                }
                let upload = #"{"type": "file", "format": "base64", "content": "\#(Data(bytes).base64EncodedString())"}"#
                let stored = try await client.execute(uri: base + "api/contents/big.bin", method: .put, headers: json, body: ByteBuffer(string: upload))
                #expect(stored.status == .created)
                let download = try await client.execute(uri: base + "files/big.bin", method: .get, headers: [.cookie: cookieA])
                #expect(download.status == .ok)
                #expect(download.body.readableBytes == bytes.count)
                #expect(SHA256.hash(data: Data(buffer: download.body)) == SHA256.hash(data: bytes))

                // Student B and nobody at all get nowhere, over HTTP or WebSocket.
                let other = try await client.execute(uri: entry, method: .get, headers: [.cookie: cookieB, .accept: "text/html"])
                #expect(other.status == .forbidden)
                #expect(String(buffer: other.body).contains("This is not your environment"))
                let otherAPI = try await client.execute(uri: base + "api/contents/hello.txt", method: .get, headers: [.cookie: cookieB])
                #expect(otherAPI.status == .forbidden)
                #expect(otherAPI.headers[.contentType] == "application/problem+json")
                let nobody = try await client.execute(uri: entry, method: .get, headers: [.accept: "text/html"])
                #expect(nobody.status == .forbidden)
                #expect(String(buffer: nobody.body).contains("Please start from your course"))
                #expect(try await PythonTool.output("jupyter_ws.py", ["handshake", url, cookieB]).contains(#""status": 403"#))
                #expect(try await PythonTool.output("jupyter_ws.py", ["handshake", url, "-"]).contains(#""status": 403"#))
                // The owner gets through to the server, which answers for itself (no such kernel).
                #expect(try await PythonTool.output("jupyter_ws.py", ["handshake", url, cookieA]).contains(#""status": 404"#))

                // The server's token is in nothing the browser received.
                let token = try await Self.token(db)
                #expect(token.count > 20)
                for text in received { #expect(!text.contains(token)) }

                // Left alone, the environment is stopped by the idle culler, which records why.
                let deadline = ContinuousClock.now + .seconds(120)
                while ContinuousClock.now < deadline {
                    if try await TestDatabase.count(db, "SELECT count(*) FROM environments WHERE state = 'stopped' AND stop_reason = 'idle'") == 1 { break }
                    try await Task.sleep(for: .seconds(1))
                }
                #expect(try await TestDatabase.count(db, "SELECT count(*) FROM environments WHERE state = 'stopped' AND stop_reason = 'idle'") == 1)
                #expect(try await TestDatabase.count(db, "SELECT count(*) FROM environments WHERE last_activity_at > ready_at") == 1)
                let stopped = try await client.execute(uri: entry, method: .get, headers: [.cookie: cookieA, .accept: "text/html"])
                #expect(stopped.status == .notFound)
                #expect(String(buffer: stopped.body).contains("Your environment has stopped"))
            }
        }
    }

    /// A request to the portal's port for `host` (the origin the browser believes it talks to).
    static func fetch(port: Int, host: String, _ path: String, cookie: String? = nil, html: Bool = false) async throws -> PortalProcess.Reply {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.headers.replaceOrAdd(name: "Host", value: host)
        if let cookie { request.headers.add(name: "Cookie", value: cookie) }
        if html { request.headers.add(name: "Accept", value: "text/html") }
        return try await PortalProcess.execute(request)
    }

    @Test func environmentsOnTheirOwnOriginAreEnteredWithAOneTimeCodeAndThePortalOriginServesNone() async throws {
        var proxy = PortalConfiguration.ProxyConfiguration()
        proxy.environmentsURL = try #require(PublicURL("http://env.portal.test"))
        try await PortalHarness.withPortal(publicURL: "http://portal.test", environments: try Self.environments(), proxy: proxy) { client, db in
            try await Self.removingContainers(db) {
                let port = try #require(client.port)
                let signed = try PortalHarness.sign(url: "http://portal.test/lti/launch", params: IndependentSigner.launchParameters(user: "origin-a"))
                let launch = try await PortalHarness.post(client, body: signed.body)
                let setCookie = try #require(launch.headers[.setCookie])
                #expect(setCookie.contains("SameSite=Lax") && !setCookie.contains("Secure"))  // plain http: no Secure, no SameSite=None
                let cookie = "portal_session=\(try #require(PortalHarness.sessionToken(launch)))"

                var handover = ""
                let deadline = ContinuousClock.now + .seconds(120)
                while ContinuousClock.now < deadline, handover.isEmpty {
                    let home = try await Self.fetch(port: port, host: "portal.test", "/home?enter=1", cookie: cookie, html: true)
                    if home.status == .seeOther, let location = home.headers["Location"].first { handover = location } else { try await Task.sleep(for: .milliseconds(500)) }
                }
                #expect(handover.hasPrefix("http://env.portal.test/_portal/enter?code="))
                let path = String(handover.dropFirst("http://env.portal.test".count))
                var base = ""
                for try await value in try await db.query("SELECT base_path FROM environments").decode(String.self) { base = value }

                // The portal's origin serves no environment content.
                let onPortal = try await Self.fetch(port: port, host: "portal.test", base + "lab", cookie: cookie, html: true)
                #expect(onPortal.status == .seeOther && onPortal.headers["Location"].first == "/home?enter=1")
                #expect(try await Self.fetch(port: port, host: "portal.test", base + "api/status", cookie: cookie).status == .notFound)

                // The code opens a session of the environment origin, once.
                let enter = try await Self.fetch(port: port, host: "env.portal.test", path)
                #expect(enter.status == .seeOther)
                #expect(enter.headers["Location"].first == base + "lab")
                let environmentCookie = try #require(enter.headers["Set-Cookie"].first)
                #expect(environmentCookie.hasPrefix("portal_environment=") && environmentCookie.contains("HttpOnly"))
                #expect(try await Self.fetch(port: port, host: "env.portal.test", path).status == .forbidden)
                let envCookie = String(environmentCookie.prefix { $0 != ";" })
                let lab = try await Self.fetch(port: port, host: "env.portal.test", base + "lab", cookie: envCookie, html: true)
                #expect(lab.status == .ok)
                #expect(lab.body.contains("jupyter-config-data"))

                // Each origin's session is worth nothing on the other; portal pages are not served there.
                #expect(try await Self.fetch(port: port, host: "env.portal.test", base + "api/status", cookie: cookie).status == .forbidden)
                let envToken = envCookie.dropFirst("portal_environment=".count)
                #expect(try await Self.fetch(port: port, host: "portal.test", "/home", cookie: "portal_session=\(envToken)").status == .unauthorized)
                #expect(try await Self.fetch(port: port, host: "env.portal.test", "/home", cookie: envCookie).status == .notFound)
                #expect(try await Self.fetch(port: port, host: "env.portal.test", "/environment/status", cookie: envCookie).status == .notFound)
            }
        }
    }

    @Test(.enabled(if: TestEnvironment.hasProcessEngine))
    func aSandboxedProcessEnvironmentIsReachedThroughItsUnixSocket() async throws {
        var environments = try Self.environments()
        environments.engine = .process
        environments.venv = try #require(TestEnvironment.processVenv)
        try await PortalHarness.withPortal(environments: environments) { client, db in
            let port = try #require(client.port)
            let signed = try PortalHarness.sign(params: IndependentSigner.launchParameters(user: "process-a"))
            let launch = try await PortalHarness.post(client, body: signed.body)
            let cookie = "portal_session=\(try #require(PortalHarness.sessionToken(launch)))"
            let entry = try await Self.enter(client, cookie: cookie, location: try #require(launch.headers[.location]))
            var upstream = ""
            for try await value in try await db.query("SELECT upstream FROM environments WHERE state = 'ready'").decode(String.self) { upstream = value }
            #expect(upstream.hasPrefix("unix:/"))
            let lab = try await client.execute(uri: entry, method: .get, headers: [.cookie: cookie, .accept: "text/html"])
            #expect(lab.status == .ok)
            #expect(String(buffer: lab.body).contains("jupyter-config-data"))
            let run = try await PythonTool.output("jupyter_ws.py", ["execute", "http://127.0.0.1:\(port)\(entry.dropLast("lab".count))", cookie])
            #expect(run.contains(#""output": "42\n""#))
        }
    }
}
