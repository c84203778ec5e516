import AsyncHTTPClient
@testable import Environments
import Foundation
import HTTPTypes
import HummingbirdTesting
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import PostgresNIO
@testable import Portal
import TestSupport
import Testing

/// The environment lifecycle against a real container engine (Podman's Docker-compatible service)
/// and the real Jupyter image, with records in real PostgreSQL.
@Suite("Environments on a real engine", .enabled(if: TestEnvironment.hasEngine), .serialized)
struct PodmanLifecycleTests {
    static let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(redirectConfiguration: .disallow))

    struct Harness {
        var client: PostgresClient
        var store: EnvironmentRepository
        var engine: DockerEngine
        var installation: String
        var user: Int64
        var course: Int64

        func lifecycle(engine: (any Engine)? = nil, startTimeout: Duration = .seconds(90)) throws -> EnvironmentLifecycle {
            var logger = Logger(label: "lifecycle-test")
            logger.logLevel = .warning
            return EnvironmentLifecycle(
                engines: FixedEngines([("local", engine ?? self.engine)]), store: store, http: PodmanLifecycleTests.http, installationID: installation, logger: logger,
                jupyter: try TestPaths.jupyterConfig(), startTimeout: startTimeout
            )
        }

        func claim(_ profile: Profile, version: Int = 1) -> EnvironmentClaim {
            EnvironmentClaim(userID: user, courseID: course, profile: profile, profileVersion: version)
        }

        /// Polls until the environment reaches one of `states`.
        func wait(_ id: Int64, for states: Set<EnvironmentState>, timeout: Duration = .seconds(120)) async throws -> EnvironmentRecord {
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                if let record = try await store.find(id), states.contains(record.state) { return record }
                try await Task.sleep(for: .milliseconds(250))
            }
            throw MissingComponent("environment \(id) did not reach \(states) in time: \(String(describing: try await store.find(id)))")
        }

        func containers() async throws -> [EnvironmentInstance] {
            try await engine.list(installation: installation)
        }
    }

    static func profile(_ slug: String = "jupyter", image: String = TestEnvironment.image, command: [String]? = nil, memory: Int64 = 384 << 20) -> Profile {
        Profile(slug: slug, displayName: "Test \(slug)", image: image, command: command, cpu: 1, memoryBytes: memory, persistence: .disposable)
    }

    /// Runs `body` with a fresh database (migrated, one user and course, the profiles applied) and
    /// a unique installation id, then removes whatever the test left on the engine.
    func withHarness(profiles: [Profile] = [Self.profile()], _ body: @Sendable (Harness) async throws -> Void) async throws {
        let endpoint = try #require(TestEnvironment.engineEndpoint, "PORTAL_TEST_ENGINE is not set: run the tests with scripts/test.sh")
        let database = try await TestDatabase.create()
        try await database.withClient { client in
            try await MigrationRunner(migrations: try Migration.load(from: TestPaths.migrations), logger: Logger(label: "test")).run(on: client)
            let (user, course) = try await EnvironmentStoreTests.seed(client)
            for profile in profiles { _ = try await ProfileRepository(client: client).apply(profile, source: "test") }
            let installation = UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
            let engine = try DockerEngine(endpoint: endpoint, name: "local", client: Self.http)
            try await EnvironmentStoreTests.addHost(client, endpoint: endpoint)
            let harness = Harness(
                client: client, store: EnvironmentRepository(client: client, box: EnvironmentStoreTests.box, installationID: installation), engine: engine,
                installation: installation, user: user, course: course
            )
            do {
                try await body(harness)
            } catch {
                await Self.clean(harness)
                throw error
            }
            await Self.clean(harness)
        }
    }

    static func clean(_ harness: Harness) async {
        for container in (try? await harness.containers()) ?? [] { try? await harness.engine.removeContainer(container.id) }
    }

    /// `GET <base>api/status` straight to the server (not through the portal), with `secret` in its header.
    func status(_ record: EnvironmentRecord, token secret: String?) async throws -> UInt {
        var request = HTTPClientRequest(url: "http://\(record.upstream ?? "")\(record.basePath)api/status")
        if let secret { request.headers.add(name: JupyterCommand.secretHeader, value: secret) }
        let response = try await Self.http.execute(request, timeout: .seconds(5))
        _ = try await response.body.collect(upTo: 1 << 16)
        return response.status.code
    }

    @Test func startReadyTokenMemoryLimitAndStop() async throws {
        try await withHarness { h in
            let lifecycle = try h.lifecycle()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await lifecycle.run() }
                let record = try await lifecycle.ensure(h.claim(Self.profile()))
                let ready = try await h.wait(record.id, for: [.ready, .failed])
                #expect(ready.state == .ready, "\(ready.message ?? "")")
                #expect(try await status(ready, token: ready.token) == 200)
                #expect(try await status(ready, token: nil) == 403)
                #expect(try await status(ready, token: "wrong") == 403)
                let containers = try await h.containers()
                #expect(containers.count == 1)
                #expect(containers.first?.labels[Labels.environment] == String(record.id))

                // The memory limit holds: a process allocating past it is killed, the server survives.
                let container = try #require(containers.first)
                let stats = try await h.engine.stats(container.id)
                #expect(stats.memoryLimitBytes == 384 << 20)
                let hog = try PortalProcess.runCommand(["podman", "exec", container.id, "python3", "-c", "b = bytearray(800 * 1024 * 1024); print(len(b))"])
                #expect(hog.status != 0, "\(hog.output)")
                #expect(try await status(ready, token: ready.token) == 200)

                lifecycle.requestStop(record.id, reason: .student)
                let stopped = try await h.wait(record.id, for: [.stopped, .failed], timeout: .seconds(60))
                #expect(stopped.state == .stopped)
                #expect(try await h.containers().isEmpty)
                lifecycle.finish()
                try await group.waitForAll()
            }
        }
    }

    @Test func simultaneousLaunchesGetOneContainerAndARestartedPortalAdoptsIt() async throws {
        try await withHarness { h in
            let first = try h.lifecycle()
            let id = try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await first.run() }
                let ids = try await withThrowingTaskGroup(of: Int64.self) { claims in
                    for _ in 0..<2 { claims.addTask { try await first.ensure(h.claim(Self.profile())).id } }
                    var all = [Int64]()
                    for try await id in claims { all.append(id) }
                    return all
                }
                #expect(Set(ids).count == 1)
                let ready = try await h.wait(ids[0], for: [.ready, .failed])
                #expect(ready.state == .ready)
                #expect(try await h.containers().count == 1)
                first.finish()
                try await group.waitForAll()
                return ids[0]
            }
            // A new portal process: reconcile adopts the running environment and removes an orphan.
            let orphan = try await h.engine.createContainer(
                ContainerSpec(
                    name: "portal-orphan-\(h.installation.prefix(8))", image: TestEnvironment.image, command: ["sleep", "600"],
                    labels: [Labels.installation: h.installation], memoryBytes: 64 << 20, nanoCPUs: 100_000_000
                )
            )
            try await h.engine.startContainer(orphan)
            let second = try h.lifecycle()
            let result = try await second.reconcile()
            #expect(result.adopted == [id])
            #expect(result.removedContainers == ["portal-orphan-\(h.installation.prefix(8))"])
            #expect(try await h.containers().count == 1)
            #expect(try await h.store.find(id)?.state == .ready)

            // A container that vanished while the portal was away is marked stopped.
            try await h.engine.removeContainer(try #require(try await h.containers().first).id)
            let third = try h.lifecycle()
            let after = try await third.reconcile()
            #expect(after.vanished == [id])
            #expect(try await h.store.find(id)?.state == .stopped)
        }
    }

    /// A start another portal process began (it stopped before the server answered) is resumed by
    /// the next portal's reconcile and reaches ready.
    @Test func anInterruptedStartIsResumed() async throws {
        try await withHarness { h in
            let first = try h.lifecycle()
            let (claimed, created) = try await h.store.claim(h.claim(Self.profile()))
            #expect(created)
            // What the first portal got done before it stopped: container created and started.
            let record = try #require(try await h.store.update(claimed.id, EnvironmentChange(.starting, message: "Starting the server")))
            let id = try await h.engine.start(try first.specification(record))
            _ = try await h.store.update(record.id, EnvironmentChange(.starting, containerID: id))

            let second = try h.lifecycle()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await second.run() }
                let result = try await second.reconcile()
                #expect(result.adopted == [record.id])
                let ready = try await h.wait(record.id, for: [.ready, .failed])
                #expect(ready.state == .ready, "\(ready.message ?? "")")
                #expect(try await status(ready, token: ready.token) == 200)
                second.finish()
                try await group.waitForAll()
            }
        }
    }

    /// Course materials are copied into a persistent home on the first start and never over the
    /// student's edits; the home survives a stop.
    @Test func materialsSeedAPersistentHomeOnce() async throws {
        let materials = FileManager.default.temporaryDirectory.appendingPathComponent("materials-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: materials + "/week1", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: materials) }
        try "course version".write(toFile: materials + "/week1/notes.txt", atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: materials)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: materials + "/week1")
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: materials + "/week1/notes.txt")
        var seeded = Self.profile("with-materials")
        seeded.persistence = .persistent
        seeded.materials = .directory(materials)
        let profile = seeded
        try await withHarness(profiles: [profile]) { h in
            let lifecycle = try h.lifecycle()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await lifecycle.run() }
                let first = try await h.wait(try await lifecycle.ensure(h.claim(profile)).id, for: [.ready, .failed])
                #expect(first.state == .ready, "\(first.message ?? "")")
                #expect(try await contents(first, "week1/notes.txt") == "course version")
                try await save(first, "week1/notes.txt", "my own answer")
                lifecycle.requestStop(first.id, reason: .student)
                _ = try await h.wait(first.id, for: [.stopped, .failed], timeout: .seconds(60))

                let second = try await h.wait(try await lifecycle.ensure(h.claim(profile)).id, for: [.ready, .failed])
                #expect(second.id != first.id && second.homeVolume == first.homeVolume)
                #expect(try await contents(second, "week1/notes.txt") == "my own answer")
                lifecycle.requestStop(second.id, reason: .student)
                _ = try await h.wait(second.id, for: [.stopped, .failed], timeout: .seconds(60))
                try await h.engine.removeVolume(second.homeVolume)
                lifecycle.finish()
                try await group.waitForAll()
            }
        }
    }

    func contents(_ record: EnvironmentRecord, _ path: String) async throws -> String? {
        var request = HTTPClientRequest(url: "http://\(record.upstream ?? "")\(record.basePath)api/contents/\(path)?content=1&type=file&format=text")
        request.headers.add(name: JupyterCommand.secretHeader, value: record.token)
        let response = try await Self.http.execute(request, timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 1 << 20)
        let json = try JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any]
        return json?["content"] as? String
    }

    func save(_ record: EnvironmentRecord, _ path: String, _ text: String) async throws {
        var request = HTTPClientRequest(url: "http://\(record.upstream ?? "")\(record.basePath)api/contents/\(path)")
        request.method = .PUT
        request.headers.add(name: JupyterCommand.secretHeader, value: record.token)
        request.headers.add(name: "Content-Type", value: "application/json")
        let body = try JSONSerialization.data(withJSONObject: ["type": "file", "format": "text", "content": text])
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await Self.http.execute(request, timeout: .seconds(10))
        _ = try await response.body.collect(upTo: 1 << 20)
        #expect(response.status == .ok || response.status == .created)
    }

    @Test func failuresTellTheStudentWhyAndLeaveNothingBehind() async throws {
        let missing = Self.profile("missing-image", image: "localhost/no-such-image:1")
        let silent = Self.profile("never-ready", command: ["sleep", "600"])
        try await withHarness(profiles: [missing, silent, Self.profile()]) { h in
            let lifecycle = try h.lifecycle(startTimeout: .seconds(8))
            let down = try h.lifecycle(engine: try DockerEngine(endpoint: "unix:///nonexistent/podman.sock", client: Self.http))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await lifecycle.run() }
                group.addTask { await down.run() }

                let noImage = try await lifecycle.ensure(h.claim(missing))
                let failed = try await h.wait(noImage.id, for: [.failed, .ready])
                #expect(failed.state == .failed)
                #expect(failed.message?.contains("not installed") == true)

                let timeout = try await lifecycle.ensure(h.claim(silent))
                let timedOut = try await h.wait(timeout.id, for: [.failed, .ready])
                #expect(timedOut.message?.contains("did not start within 8 seconds") == true)
                #expect(try await h.containers().isEmpty)

                let unreachable = try await down.ensure(h.claim(Self.profile()))
                let engineDown = try await h.wait(unreachable.id, for: [.failed, .ready])
                #expect(engineDown.message?.contains("not answering") == true)
                #expect(try await h.containers().isEmpty)

                lifecycle.finish()
                down.finish()
                try await group.waitForAll()
            }
        }
    }
}

/// A launch into a course whose profile runs on the real engine: the landing page shows progress,
/// reloading itself, until the environment is ready.
@Suite("Launch into an environment", .enabled(if: TestEnvironment.hasEngine && TestEnvironment.hasPython), .serialized)
struct LaunchIntoEnvironmentTests {
    @Test func aLaunchStartsTheCoursesEnvironmentAndTheLandingPageFollowsIt() async throws {
        let endpoint = try #require(TestEnvironment.engineEndpoint)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("profiles-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try """
            slug: course-env
            display_name: Course environment
            image: \(TestEnvironment.image)
            cpu: 1
            memory: 384MiB
            persistence: disposable
            match:
              context_labels: ["TM351-*"]
            """.write(toFile: directory + "/course.yaml", atomically: true, encoding: .utf8)
        var environments = PortalConfiguration.EnvironmentsConfiguration()
        environments.engine = .docker
        environments.endpoint = endpoint
        environments.profilesDirectory = directory
        try await PortalHarness.withPortal(environments: environments) { client, db in
            let signed = try PortalHarness.signAll([
                ("https://portal.example.ac.uk/lti/launch", IndependentSigner.launchParameters(user: "env-student", context: "TM351-25J")),
                ("https://portal.example.ac.uk/lti/launch", IndependentSigner.launchParameters(user: "env-student", context: "TM351-25J", extra: [("custom_profile", "nope")])),
            ])
            // A link naming a profile that does not exist: a clear page, a recorded refusal, nothing else.
            let unknown = try await PortalHarness.post(client, body: signed[1].body)
            #expect(unknown.status == .badRequest)
            #expect(String(buffer: unknown.body).contains("asks for the environment &quot;nope&quot;"))
            #expect(String(buffer: unknown.body).contains("unknown_profile"))
            #expect(try await TestDatabase.count(db, "SELECT count(*) FROM launches WHERE reason = 'unknown_profile'") == 1)
            #expect(try await TestDatabase.count(db, "SELECT count(*) FROM users") == 0)

            let launch = try await PortalHarness.post(client, body: signed[0].body)
            #expect(launch.status == .seeOther)
            let cookie: HTTPFields = [.cookie: "portal_session=\(try #require(PortalHarness.sessionToken(launch)))"]
            let first = try await client.execute(uri: "/home", method: .get, headers: cookie)
            let page = String(buffer: first.body)
            #expect(page.contains("Course environment"))
            if !page.contains("Your environment is ready") {
                #expect(first.headers[.init("Refresh")!] == "2; url=home?enter=1")
                #expect(page.contains(#"<meta http-equiv="refresh" content="2; url=home?enter=1">"#))
            }
            var state = ""
            let deadline = ContinuousClock.now + .seconds(120)
            while ContinuousClock.now < deadline {
                let status = try await client.execute(uri: "/environment/status", method: .get, headers: cookie)
                let json = try JSONSerialization.jsonObject(with: Data(buffer: status.body)) as? [String: Any]
                state = json?["state"] as? String ?? ""
                if state == "ready" || state == "failed" { break }
                try await Task.sleep(for: .milliseconds(500))
            }
            #expect(state == "ready")
            let ready = try await client.execute(uri: "/home", method: .get, headers: cookie)
            #expect(String(buffer: ready.body).contains("Your environment is ready"))
            #expect(ready.headers[.init("Refresh")!] == nil)
            // The token never reaches the browser.
            for try await sealed in try await db.query("SELECT token_sealed FROM environments").decode(ByteBuffer.self) {
                #expect(sealed.readableBytes > 0)
            }
            // Stop it through the page's form (with its form token), as the student would.
            let formToken = try #require(String(buffer: ready.body).firstMatch(of: /name="form_token" value="([^"]+)"/)?.1)
            var headers = cookie
            headers[.contentType] = "application/x-www-form-urlencoded"
            let forged = try await client.execute(uri: "/environment/stop", method: .post, headers: headers, body: ByteBuffer(string: "form_token=forged"))
            #expect(forged.status == .forbidden)
            let stop = try await client.execute(uri: "/environment/stop", method: .post, headers: headers, body: ByteBuffer(string: "form_token=\(formToken)"))
            #expect(stop.status == .seeOther)
            let stopDeadline = ContinuousClock.now + .seconds(60)
            while ContinuousClock.now < stopDeadline {
                if try await TestDatabase.count(db, "SELECT count(*) FROM environments WHERE state = 'stopped' AND stop_reason = 'student'") == 1 { break }
                try await Task.sleep(for: .milliseconds(500))
            }
            #expect(try await TestDatabase.count(db, "SELECT count(*) FROM environments WHERE state = 'stopped' AND stop_reason = 'student'") == 1)
        }
    }
}
