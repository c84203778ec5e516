import AsyncHTTPClient
@testable import Environments
import Foundation
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import PostgresNIO
@testable import Portal
import TestSupport
import Testing

/// The sandboxed process engine: a real jupyter-server in bubblewrap, records in real PostgreSQL.
@Suite("The process engine", .enabled(if: TestEnvironment.hasProcessEngine), .serialized)
struct ProcessEngineTests {
    static let http = PodmanLifecycleTests.http

    func request(_ record: EnvironmentRecord, _ path: String, method: HTTPMethod = .GET, body: String? = nil) async throws -> (UInt, String) {
        var request = HTTPClientRequest(url: JupyterCommand.url(upstream: record.upstream ?? "", path: record.basePath + path))
        request.method = method
        request.headers.add(name: "Host", value: "localhost")
        if !record.token.isEmpty { request.headers.add(name: JupyterCommand.secretHeader, value: record.token) }
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await Self.http.execute(request, timeout: .seconds(30))
        return (response.status.code, String(buffer: try await response.body.collect(upTo: 1 << 20)))
    }

    /// The processes on this host whose command line and environment contain the given texts, with
    /// their environments (root reads every `/proc/<pid>/environ`).
    static func processes(commandContaining command: String, environmentContaining marker: String) -> [Int32: String] {
        var found = [Int32: String]()
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(name), let line = FileManager.default.contents(atPath: "/proc/\(name)/cmdline"),
                String(decoding: line, as: UTF8.self).contains(command), let environ = FileManager.default.contents(atPath: "/proc/\(name)/environ")
            else { continue }
            let environment = String(decoding: environ.map { $0 == 0 ? 0x0A : $0 }, as: UTF8.self)
            if environment.contains(marker) { found[pid] = environment }
        }
        return found
    }

    @Test func aSandboxedServerStartsAndCannotSeeAnotherStudentsHome() async throws {
        let venv = try #require(TestEnvironment.processVenv, "PORTAL_TEST_PROCESS_VENV is not set: run the tests with scripts/test.sh")
        let database = try await TestDatabase.create()
        // A long root: the servers' unix sockets must still fit in 108 bytes.
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("process-engine-\(UUID().uuidString)/with/a/rather/long/data/directory").path
        defer { try? FileManager.default.removeItem(atPath: root.components(separatedBy: "/with/").first ?? root) }
        try await database.withClient { client in
            try await MigrationRunner(migrations: try Migration.load(from: TestPaths.migrations), logger: Logger(label: "test")).run(on: client)
            let (alice, course) = try await EnvironmentStoreTests.seed(client)
            var bob: Int64 = 0
            for try await id in try await client.query("INSERT INTO users (consumer_key, lti_user_id, slug) VALUES ('vle', 'u2', 'slugu2') RETURNING id").decode(Int64.self) { bob = id }
            let profile = Profile(slug: "local", displayName: "Local", command: nil, cpu: 0.5, memoryBytes: 512 << 20, persistence: .persistent)
            _ = try await ProfileRepository(client: client).apply(profile, source: "test")
            var logger = Logger(label: "process-engine-test")
            logger.logLevel = .warning
            let engine = try ProcessEngine(root: root, venv: venv, logger: logger)
            let store = EnvironmentRepository(client: client, box: EnvironmentStoreTests.box, installationID: UUID().uuidString)
            try await EnvironmentStoreTests.addHost(client, kind: .process, endpoint: "process")
            let lifecycle = EnvironmentLifecycle(
                engines: FixedEngines([("local", engine)]), store: store, http: Self.http, installationID: "process-test", logger: logger, jupyter: try TestPaths.jupyterConfig()
            )
            let harness = PodmanLifecycleTests.Harness(client: client, store: store, engine: try DockerEngine(endpoint: "unix:///unused", client: Self.http), installation: "x", user: alice, course: course)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await lifecycle.run() }
                let a = try await lifecycle.ensure(EnvironmentClaim(userID: alice, courseID: course, profile: profile, profileVersion: 1))
                let b = try await lifecycle.ensure(EnvironmentClaim(userID: bob, courseID: course, profile: profile, profileVersion: 1))
                let readyA = try await harness.wait(a.id, for: [.ready, .failed])
                let readyB = try await harness.wait(b.id, for: [.ready, .failed])
                let logA = engine.sandboxLogs(readyA.containerName, lines: 20)
                #expect(readyA.state == .ready, "\(readyA.message ?? "") \(logA)")
                #expect(readyB.state == .ready, "\(readyB.message ?? "")")
                #expect(readyA.upstream?.hasPrefix("unix:") == true)
                #expect(try await request(readyA, "api/status").0 == 200)
                var wrong = readyA
                wrong.token = readyB.token
                #expect(try await request(wrong, "api/status").0 == 403)
                wrong.token = ""
                #expect(try await request(wrong, "api/status").0 == 403)
                // The server got the portal's Jupyter configuration (bound read-only into the sandbox):
                // no page carries its secret or any token, and there is no login form.
                for path in ["", "lab", "tree", "static/nope.js"] {
                    let page = try await request(readyA, path).1
                    #expect(!page.contains(readyA.token) && page.firstMatch(of: /data-jupyter-api-token="[^"]/) == nil, "\(path)")
                    #expect(page.firstMatch(of: /"token": *"[^"]/) == nil, "\(path)")
                }
                let login = try await request(wrong, "login")
                #expect(login.0 == 403 && !login.1.contains("<form"))

                // Bob writes a file; Alice's sandbox cannot see it, nor the homes around hers.
                let secret = #"{"type":"file","format":"text","content":"bob's secret"}"#
                #expect(try await request(readyB, "api/contents/secret.txt", method: .PUT, body: secret).0 == 201)
                let bobHome = root + "/homes/" + readyB.homeVolume
                #expect(FileManager.default.fileExists(atPath: bobHome + "/secret.txt"))
                let (created, kernel) = try await request(readyA, "api/kernels", method: .POST, body: #"{"name":"python3"}"#)
                #expect(created == 201, "\(kernel)")
                // The kernel did not inherit the server's secret: the server removed it when it read it.
                let kernels = Self.processes(commandContaining: "ipykernel", environmentContaining: "PORTAL_BASE_PATH=\(readyA.basePath)")
                #expect(!kernels.isEmpty)
                for environment in kernels.values {
                    #expect(!environment.contains(JupyterCommand.secretVariable) && !environment.contains(readyA.token))
                }
                // The contents API is rooted at the home; a path outside it is refused.
                #expect(try await request(readyA, "api/contents/../\(readyB.homeVolume)/secret.txt").0 != 200)
                let homes = try await request(readyA, "api/contents/").1
                #expect(!homes.contains("secret.txt"))

                // Code running in a sandbox (as a student's kernel would) finds neither Bob's home nor
                // the host's homes directory, whatever path it tries.
                let script = """
                    import os
                    for p in ["\(bobHome)/secret.txt", "\(root)/homes", "/home/slugu2", "/root", "\(root)/state"]:
                        try:
                            print("READ", p, open(p).read() if os.path.isfile(p) else os.listdir(p))
                        except Exception as e:
                            print("DENIED", p, type(e).__name__)
                    print("HOME", sorted(os.listdir("/home")), "UID", os.getuid())
                    print("FILE", open("/etc/portal/probe/hello.txt").read())
                    try:
                        open("/etc/portal/probe/hello.txt", "w")
                        print("WROTE")
                    except OSError as e:
                        print("UNWRITABLE", type(e).__name__)
                    """
                let probe = try await engine.start(
                    EnvironmentSpec(
                        name: "probe", image: nil, command: [venv + "/bin/python3", "-c", script], basePath: "/", memoryBytes: 256 << 20, nanoCPUs: 500_000_000,
                        home: .init(name: "probe-home"), files: [.init(path: "/etc/portal/probe/hello.txt", contents: Data("hello, sandbox".utf8))]
                    )
                )
                var output = ""
                let probeDeadline = ContinuousClock.now + .seconds(600)
                while output.isEmpty {
                    if case .exited(_, _, let log) = try await engine.poll(probe) { output = log; break }
                    guard ContinuousClock.now < probeDeadline else { Issue.record("the probe never exited"); break }
                    try await Task.sleep(for: .milliseconds(100))
                }
                #expect(output.components(separatedBy: "DENIED").count - 1 == 5, "\(output)")
                #expect(!output.contains("READ") && !output.contains("bob's secret"), "\(output)")
                #expect(output.contains("HOME ['student']"), "\(output)")
                #expect(!output.contains("UID 0"), "\(output)")
                #expect(output.contains("FILE hello, sandbox") && output.contains("UNWRITABLE") && !output.contains("WROTE"), "\(output)")
                try await engine.stop(probe, timeout: .seconds(10))
                #expect(!FileManager.default.fileExists(atPath: root + "/files/" + probe))
                try await engine.deleteHome("probe-home")

                // The memory limit is the profile's.
                let stats = try await engine.stats(readyA.containerName)
                #expect(stats.memoryLimitBytes == 512 << 20)
                #expect(stats.pids > 0)

                lifecycle.requestStop(a.id, reason: .student)
                lifecycle.requestStop(b.id, reason: .student)
                #expect(try await harness.wait(a.id, for: [.stopped, .failed], timeout: .seconds(60)).state == .stopped)
                #expect(try await harness.wait(b.id, for: [.stopped, .failed], timeout: .seconds(60)).state == .stopped)
                #expect(try engine.listSandboxes(labels: [:]).isEmpty)
                lifecycle.finish()
                try await group.waitForAll()
            }
        }
    }
}
