import AsyncHTTPClient
import Foundation
import NIOHTTP1
import PostgresNIO
import TestSupport
import Testing

/// Two portal processes on one database, as behind a load balancer: both route a student to the
/// environment one of them started, and both hear when it stops (LISTEN/NOTIFY).
@Suite("Proxy replicas", .enabled(if: TestEnvironment.hasEngine && TestEnvironment.hasPython), .serialized)
struct ProxyReplicaTests {
    @Test func bothReplicasRouteAStudentAndBothHearWhenTheEnvironmentStops() async throws {
        let database = try await TestDatabase.create()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("portal-replicas-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory + "/profiles", withIntermediateDirectories: true)
        try """
            slug: course-env
            display_name: Course environment
            image: \(TestEnvironment.image)
            memory: 384MiB
            persistence: disposable
            match:
              context_labels: ["TM351-*"]
            """.write(toFile: directory + "/profiles/course.yaml", atomically: true, encoding: .utf8)
        let endpoint = try #require(TestEnvironment.engineEndpoint)
        let extra = """
            database:
              url: \(database.url)
            environments:
              engine: docker
              endpoint: \(endpoint)
              profiles_dir: \(directory)/profiles
            """
        var replicas = [PortalProcess]()
        defer { for replica in replicas { replica.stop() } }
        for name in ["a", "b"] {
            let port = try PortalProcess.freePort()
            let config = try PortalProcess.writeConfig(directory: directory + "/" + name, port: port, extra: extra)
            var text = try String(contentsOfFile: config, encoding: .utf8)
            text = text.replacingOccurrences(of: #"public_url: http://127.0.0.1:\d+"#, with: "public_url: https://portal.example.ac.uk", options: .regularExpression)
            try text.write(toFile: config, atomically: true, encoding: .utf8)
            replicas.append(try await PortalProcess(config: config, port: port))
        }
        let (a, b) = (replicas[0], replicas[1])

        // The link asks to open a given notebook: the student lands there, inside the environment.
        let signed = try PortalHarness.sign(params: IndependentSigner.launchParameters(user: "replica-student", extra: [("custom_path", "lab/tree/notes.ipynb")]))
        let launch = try await a.postForm("/lti/launch", body: signed.body)
        #expect(launch.status == .seeOther)
        let cookie = try #require(launch.headers["Set-Cookie"].first?.split(separator: ";").first.map(String.init))
        var entry = ""
        let deadline = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < deadline, entry.isEmpty {
            let home = try await a.get("/home?enter=1", cookie: cookie)
            if home.status == .seeOther, let location = home.headers["Location"].first { entry = location } else { try await Task.sleep(for: .milliseconds(500)) }
        }
        #expect(entry.hasPrefix("/user/"))
        #expect(entry.hasSuffix("/lab/tree/notes.ipynb"))
        let base = String(entry.dropLast("lab/tree/notes.ipynb".count))

        // Both replicas forward the student's requests.
        for replica in [a, b] {
            let status = try await replica.get(base + "api/status", cookie: cookie)
            #expect(status.status == .ok)
            #expect(status.body.contains("last_activity"))
        }

        // Stopped through A; B hears of it and stops forwarding (instead of trying the dead server).
        let page = try await a.get("/home", cookie: cookie)
        let formToken = try #require(page.body.firstMatch(of: /name="form_token" value="([^"]+)"/)?.1)
        let stop = try await a.postForm("/environment/stop", body: "form_token=\(formToken)", cookie: cookie)
        #expect(stop.status == .seeOther)
        var answer = HTTPResponseStatus.ok
        let stopDeadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < stopDeadline {
            answer = try await b.get(base + "api/status", cookie: cookie).status
            if answer == .notFound { break }
            try await Task.sleep(for: .milliseconds(250))
        }
        #expect(answer == .notFound)
        let stopped = try await b.get(entry, cookie: cookie, headers: [("Accept", "text/html")])
        #expect(stopped.body.contains("Your environment has stopped"))
    }
}
