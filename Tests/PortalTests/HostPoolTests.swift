import AsyncHTTPClient
@testable import Environments
import Foundation
import Logging
import NIOHTTP1
import PostgresNIO
import TestSupport
import Testing

/// Whole portals on a pool of two real hosts: two Podman API services, each in its own network
/// namespace with its own storage (scripts/engine/pool-hosts.sh). Containers are counted by the
/// engines, not by the portal.
@Suite("A pool of hosts", .enabled(if: TestEnvironment.hasPool), .serialized)
struct HostPoolTests {
    /// A running portal (or two) on a fresh database, with the pool's hosts declared.
    struct Setup {
        var directory: String
        var database: TestDatabase
        var replicas: [PortalProcess]
        var engines: [(name: String, engine: DockerEngine)]
        var config: String

        var installation: String {
            get async throws {
                try await TestDatabase.withClient(url: database.url) { client in
                    for try await id in try await client.query("SELECT id FROM installation").decode(String.self) { return id }
                    throw MissingComponent("no installation id")
                }
            }
        }

        /// Running containers of this portal on each host, as the engines count them.
        func running() async throws -> [String: Int] {
            let id = try await installation
            var counts = [String: Int]()
            for (name, engine) in engines {
                counts[name] = try await engine.listContainers(labels: [Labels.installation: id]).filter(\.running).count
            }
            return counts
        }

        func count(_ sql: String) async throws -> Int {
            try await TestDatabase.withClient(url: database.url) { try await TestDatabase.count($0, sql) }
        }

        /// Removes every container this portal left on the hosts.
        func clean() async {
            for replica in replicas { replica.stop() }
            guard let id = try? await installation else { return }
            for (_, engine) in engines {
                for container in (try? await engine.listContainers(labels: [Labels.installation: id])) ?? [] { try? await engine.removeContainer(container.id) }
            }
        }
    }

    static let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(redirectConfiguration: .disallow))

    /// Starts `replicas` portals with the pool's hosts (each `cpu` cores, 4 GiB), the light profile at
    /// `profileCPU` cores, and `admission` YAML.
    static func setUp(replicas count: Int = 1, cpu: Double, profileCPU: Double, admission: String = "") async throws -> Setup {
        let pool = TestEnvironment.pool
        guard pool.count >= 2 else { throw MissingComponent("PORTAL_TEST_POOL names no two hosts: run the tests with scripts/test.sh (scripts/engine/pool-hosts.sh up)") }
        let database = try await TestDatabase.create()
        let directory = try TestProfiles.directory("portal-pool", profiles: ["light": TestProfiles.light(cpu: profileCPU)])
        let hosts = pool.map { "    - {name: \($0.name), endpoint: \"\($0.endpoint)\", cpu: \(cpu), memory: 4GiB}" }.joined(separator: "\n")
        let extra = """
            database:
              url: \(database.url)
            environments:
              engine: docker
              profiles_dir: \(directory)/profiles
              default_profile: light
              health_interval: 1s
              lost_after: 3s
              hosts:
            \(hosts)
            \(admission)
            """
        var replicas = [PortalProcess]()
        var config = ""
        do {
            for index in 0..<count {
                let port = try PortalProcess.freePort()
                config = try PortalProcess.writeConfig(directory: directory + "/replica-\(index)", port: port, extra: extra)
                var text = try String(contentsOfFile: config, encoding: .utf8)
                text = text.replacingOccurrences(of: #"public_url: http://127.0.0.1:\d+"#, with: "public_url: https://portal.example.ac.uk", options: .regularExpression)
                try text.write(toFile: config, atomically: true, encoding: .utf8)
                replicas.append(try await PortalProcess(config: config, port: port))
            }
        } catch {
            for replica in replicas { replica.stop() }
            throw error
        }
        let engines = try pool.map { ($0.name, try DockerEngine(endpoint: $0.endpoint, name: $0.name, client: http, publishAddress: Environments.Host.defaultPublishAddress(endpoint: $0.endpoint))) }
        return Setup(directory: directory, database: database, replicas: replicas, engines: engines, config: config)
    }

    /// Signed launches (oauthlib) of distinct students of one course.
    static func launches(_ count: Int, prefix: String) throws -> [String] {
        try PortalHarness.signAll((0..<count).map { ("https://portal.example.ac.uk/lti/launch", IndependentSigner.launchParameters(user: "\(prefix)-\($0)")) }).map(\.body)
    }

    /// Launches and waits until the environment is ready; returns the session cookie.
    static func launchUntilReady(_ portal: PortalProcess, body: String) async throws -> String {
        let launch = try await portal.postForm("/lti/launch", body: body)
        guard launch.status == .seeOther, let cookie = launch.headers["Set-Cookie"].first?.split(separator: ";").first.map(String.init) else {
            throw MissingComponent("launch answered \(launch.status): \(launch.body.prefix(300))")
        }
        let deadline = ContinuousClock.now + .seconds(90)
        while ContinuousClock.now < deadline {
            let status = try await portal.get("/environment/status", cookie: cookie)
            if status.body.contains("\"ready\"") { return cookie }
            if status.body.contains("\"failed\"") { throw MissingComponent("the environment failed: \(status.body)") }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw MissingComponent("the environment did not become ready")
    }

    static func control(_ arguments: String...) throws {
        let script = TestEnvironment.repositoryRoot.appendingPathComponent("scripts/engine/pool-hosts.sh").path
        let result = try PortalProcess.runCommand([script] + arguments)
        guard result.status == 0 else { throw MissingComponent("pool-hosts.sh \(arguments.joined(separator: " ")) failed: \(result.output)") }
    }

    /// Placement spreads over both hosts, a drained host gets nothing new, a full pool refuses, a
    /// host whose engine stops answering is marked down and its environments lost, and once it is
    /// back the containers of those environments are removed.
    @Test func placementDrainAndALostHost() async throws {
        let setup = try await Self.setUp(cpu: 1.5, profileCPU: 0.5)
        defer { try? Self.control("start-service", "2") }
        do {
            let portal = setup.replicas[0]
            let bodies = try Self.launches(8, prefix: "pool")
            var cookies = [String]()
            for body in bodies.prefix(4) { cookies.append(try await Self.launchUntilReady(portal, body: body)) }
            #expect(try await setup.running() == ["host1": 2, "host2": 2])
            // The proxy reaches an environment on each host through the address it is published on.
            for cookie in cookies.prefix(2) {
                let enter = try await portal.get("/home?enter=1", cookie: cookie)
                // The entry is JupyterLab (`…/lab`); the light server answers at the base path.
                let location = try #require(enter.headers["Location"].first)
                let page = try await portal.get(String(location.dropLast("lab".count)), cookie: cookie)
                #expect(page.status == .ok, "\(location): \(page.status) \(page.body.prefix(200))")
            }

            #expect(try PortalProcess.run(["host", "drain", "host1", "--config", setup.config]).status == 0)
            _ = try await Self.launchUntilReady(portal, body: bodies[4])
            #expect(try await setup.running() == ["host1": 2, "host2": 3])
            let full = try await portal.postForm("/lti/launch", body: bodies[5])
            #expect(full.status == .tooManyRequests && full.headers["Retry-After"].first == "60")
            #expect(full.body.contains("cannot start just now"))

            // host2's engine stops answering: down within a health interval, its three lost after 3 s.
            try Self.control("stop-service", "2")
            var lost = 0
            let deadline = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < deadline, lost < 3 {
                try await Task.sleep(for: .milliseconds(500))
                lost = try await setup.count("SELECT count(*) FROM environments WHERE engine = 'host2' AND state = 'stopped' AND stop_reason = 'host_lost'")
            }
            #expect(lost == 3)
            #expect(try PortalProcess.run(["host", "list", "--config", setup.config]).output.contains("host2\tdown\t"))
            // host1 is draining and host2 down: nowhere to go.
            #expect(try await portal.postForm("/lti/launch", body: bodies[6]).status == .serviceUnavailable)
            #expect(try PortalProcess.run(["host", "drain", "host1", "--undo", "--config", setup.config]).status == 0)
            _ = try await Self.launchUntilReady(portal, body: bodies[7])

            // host2 comes back: up again, and the containers of its lost environments are removed.
            try Self.control("start-service", "2")
            var counts = [String: Int]()
            let back = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < back {
                try await Task.sleep(for: .milliseconds(500))
                counts = (try? await setup.running()) ?? [:]
                if counts["host2"] == 0 { break }
            }
            #expect(counts == ["host1": 3, "host2": 0])
            #expect(try await setup.count("SELECT count(*) FROM admission_refusals WHERE reason IN ('no_capacity', 'no_host')") == 2)
        } catch {
            await setup.clean()
            throw error
        }
        await setup.clean()
    }

    /// A host that lacks an image gets it from another host through the two engines' APIs: here
    /// from the machine's own Podman to host1 (whose storage is its own), streamed, no registry.
    @Test func anImageMissingOnAHostIsCopiedFromAnother() async throws {
        let pool = TestEnvironment.pool
        let root = try DockerEngine(endpoint: try #require(TestEnvironment.engineEndpoint), name: "root", client: Self.http)
        let target = try DockerEngine(endpoint: pool[0].endpoint, name: pool[0].name, client: Self.http, publishAddress: Environments.Host.defaultPublishAddress(endpoint: pool[0].endpoint))
        let image = "localhost/portal-copytest:\(UUID().uuidString.prefix(8).lowercased())"
        let (repository, tag) = (String(image.split(separator: ":")[0]), String(image.split(separator: ":")[1]))
        _ = try await root.request(.POST, "/images/localhost/portal-light:1/tag?repo=\(repository)&tag=\(tag)", accept: [200, 201])
        func removeCopies() async {
            _ = try? await root.request(.DELETE, "/images/\(image)", accept: [200, 404])
            _ = try? await target.request(.DELETE, "/images/\(image)", accept: [200, 404])
        }
        do {
            try await copy(image, from: root, to: target, pool: pool)
        } catch {
            await removeCopies()
            throw error
        }
        await removeCopies()
    }

    private func copy(_ image: String, from root: DockerEngine, to target: DockerEngine, pool: [(name: String, endpoint: String)]) async throws {
        #expect(try await !target.imageExists(image))
        var target = target
        target.imageSources = ImageSources { [root, target] in [root, target] }
        try await target.copyImage(image)
        #expect(try await target.imageExists(image))
        // An image no host has is refused with a message saying so.
        await #expect(throws: EngineError.self) { try await target.copyImage("localhost/portal-nowhere:1") }
    }

    /// 200 students launch at once through two portal processes on one database against a course
    /// cap of 10: the engines never run more than 10, the rest are refused with the right page and
    /// every refusal is recorded.
    @Test func twoHundredSimultaneousLaunchesAgainstACourseCapOfTen() async throws {
        let setup = try await Self.setUp(
            replicas: 2, cpu: 8, profileCPU: 0.25,
            admission: "admission:\n  courses:\n    - {context_id: TM351-25J, max_running: 10}"
        )
        do {
            let bodies = try Self.launches(200, prefix: "burst")
            let sampling = Task {
                var most = 0
                while !Task.isCancelled {
                    most = max(most, (try? await setup.running().values.reduce(0, +)) ?? 0)
                    try? await Task.sleep(for: .milliseconds(200))
                }
                return most
            }
            let statuses = try await withThrowingTaskGroup(of: (HTTPResponseStatus, String).self) { group in
                for (index, body) in bodies.enumerated() {
                    group.addTask {
                        let reply = try await setup.replicas[index % 2].postForm("/lti/launch", body: body)
                        return (reply.status, reply.body)
                    }
                }
                var all = [(HTTPResponseStatus, String)]()
                for try await result in group { all.append(result) }
                return all
            }
            #expect(statuses.filter { $0.0 == .seeOther }.count == 10)
            let refused = statuses.filter { $0.0 == .tooManyRequests }
            #expect(refused.count == 190)
            #expect(refused.allSatisfy { $0.1.contains("course&#39;s 10 places") || $0.1.contains("course's 10 places") })
            // Wait for the ten to run, then keep sampling a little.
            let deadline = ContinuousClock.now + .seconds(90)
            while ContinuousClock.now < deadline, try await setup.count("SELECT count(*) FROM environments WHERE state = 'ready'") < 10 {
                try await Task.sleep(for: .milliseconds(500))
            }
            try await Task.sleep(for: .seconds(2))
            sampling.cancel()
            let most = await sampling.value
            let running = try await setup.running()
            #expect(running.values.reduce(0, +) == 10)
            #expect(most <= 10)
            #expect(running.values.allSatisfy { $0 > 0 }, "both hosts should be used: \(running)")
            #expect(try await setup.count("SELECT count(*) FROM admission_refusals WHERE reason = 'course_cap'") == 190)
            #expect(try await setup.count("SELECT count(*) FROM launches WHERE outcome = 'accepted'") == 200)
        } catch {
            await setup.clean()
            throw error
        }
        await setup.clean()
    }
}
