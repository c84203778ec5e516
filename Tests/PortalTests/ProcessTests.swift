import AsyncHTTPClient
import Foundation
import LTI
import NIOHTTP1
import TestSupport
import Testing

@Suite("Whole portal processes", .enabled(if: TestEnvironment.hasDatabase && TestEnvironment.hasPython), .serialized)
struct ProcessTests {
    func scratch() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("portal-proc-\(UUID().uuidString.prefix(8))").path
    }

    /// Two portal processes on one database act as replicas: a launch accepted by one is a replay to
    /// the other, and the user it created is the same for both.
    @Test func aNonceUsedOnOneReplicaIsRefusedByTheOther() async throws {
        let database = try await TestDatabase.create()
        let directory = scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let portA = try PortalProcess.freePort()
        let portB = try PortalProcess.freePort()
        // Both replicas are reached at one public URL (the load balancer's).
        let extra = "database:\n  url: \(database.url)\n"
        let configA = try PortalProcess.writeConfig(directory: directory + "/a", port: portA, extra: extra)
        let configB = try PortalProcess.writeConfig(directory: directory + "/b", port: portB, extra: extra)
        for config in [configA, configB] {
            var text = try String(contentsOfFile: config, encoding: .utf8)
            text = text.replacingOccurrences(of: #"public_url: http://127.0.0.1:\d+"#, with: "public_url: https://portal.example.ac.uk", options: .regularExpression)
            try text.write(toFile: config, atomically: true, encoding: .utf8)
        }
        let a = try await PortalProcess(config: configA, port: portA)
        defer { a.stop() }
        let b = try await PortalProcess(config: configB, port: portB)
        defer { b.stop() }

        let signed = try PortalHarness.sign(params: IndependentSigner.launchParameters(user: "replica-user"))
        let first = try await a.postForm("/lti/launch", body: signed.body)
        #expect(first.status == .seeOther, "\(first.body.components(separatedBy: "<code>").last ?? "")")
        let replay = try await b.postForm("/lti/launch", body: signed.body)
        #expect(replay.status == .unauthorized)
        #expect(replay.body.contains("replayed_nonce"))
        let replayA = try await a.postForm("/lti/launch", body: signed.body)
        #expect(replayA.status == .unauthorized)

        // A fresh launch on B finds the same user; its session works on A.
        let again = try PortalHarness.sign(params: IndependentSigner.launchParameters(user: "replica-user"))
        let second = try await b.postForm("/lti/launch", body: again.body)
        #expect(second.status == .seeOther)
        let cookie = try #require(second.headers["Set-Cookie"].first?.split(separator: ";").first.map(String.init))
        let home = try await a.get("/home", cookie: cookie)
        #expect(home.status == .ok)
        #expect(home.body.contains("Student replica-user"))
        try await database.withClient { client in
            let users = try await TestDatabase.count(client, "SELECT count(*) FROM users")
            let accepted = try await TestDatabase.count(client, "SELECT count(*) FROM launches WHERE outcome = 'accepted'")
            let refused = try await TestDatabase.count(client, "SELECT count(*) FROM launches WHERE outcome = 'refused' AND reason = 'replayed_nonce'")
            #expect(users == 1 && accepted == 2 && refused == 2)
        }
    }

    /// Without database.url the portal runs its own PostgreSQL: created on first start, reused with
    /// its data on restart, stopped with the portal.
    @Test(.enabled(if: TestEnvironment.postgresBin != nil || TestEnvironment.requireAll))
    func theEmbeddedDatabaseLivesAndDiesWithThePortal() async throws {
        let bin = try #require(TestEnvironment.postgresBin, "PORTAL_TEST_PG_BIN is not set")
        let directory = scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let port = try PortalProcess.freePort()
        let config = try PortalProcess.writeConfig(directory: directory, port: port, extra: "embedded_postgres:\n  bin_dir: \(bin)\n")
        let cluster = directory + "/data/postgres"

        let first = try await PortalProcess(config: config, port: port, timeout: .seconds(120))
        #expect(FileManager.default.fileExists(atPath: cluster + "/PG_VERSION"))
        #expect(FileManager.default.fileExists(atPath: cluster + "/postmaster.pid"))
        let signed = try PortalHarness.sign(url: "http://127.0.0.1:\(port)/lti/launch", params: IndependentSigner.launchParameters(user: "embedded-user"))
        let launch = try await first.postForm("/lti/launch", body: signed.body)
        #expect(launch.status == .seeOther)
        let cookie = try #require(launch.headers["Set-Cookie"].first?.split(separator: ";").first.map(String.init))
        first.stop()
        #expect(first.process.terminationStatus == 0, "\(first.log)")
        // A clean stop: the cluster is down and left no pid file.
        #expect(!FileManager.default.fileExists(atPath: cluster + "/postmaster.pid"), "\(first.log)")

        let second = try await PortalProcess(config: config, port: port, timeout: .seconds(120))
        defer { second.stop() }
        let home = try await second.get("/home", cookie: cookie)
        #expect(home.status == .ok)
        #expect(home.body.contains("Student embedded-user"))
        // The same nonce is still refused after the restart: nonces are durable.
        let replay = try await second.postForm("/lti/launch", body: signed.body)
        #expect(replay.status == .unauthorized)

        // A second portal on the same data directory is refused instead of sharing the cluster.
        let otherPort = try PortalProcess.freePort()
        let otherConfig = try PortalProcess.writeConfig(directory: directory, port: otherPort, extra: "embedded_postgres:\n  bin_dir: \(bin)\n")
        let clash = try PortalProcess.run(["serve", "--config", otherConfig])
        #expect(clash.status != 0)
        #expect(clash.output.contains("another portal is already serving"))
    }

    @Test func theConsumerCommandsManageSealedSecrets() async throws {
        let database = try await TestDatabase.create()
        let directory = scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let port = try PortalProcess.freePort()
        let config = try PortalProcess.writeConfig(directory: directory, port: port, extra: "database:\n  url: \(database.url)\n")

        let added = try PortalProcess.run(["consumer", "add", "--config", config, "--key", "moodle-prod", "--name", "Moodle production"])
        #expect(added.status == 0, "\(added.output)")
        let secretLine = try #require(added.output.split(separator: "\n").first { $0.hasPrefix("Secret:") })
        let secret = secretLine.dropFirst("Secret:".count).trimmingCharacters(in: .whitespaces)
        #expect(secret.count >= 40)
        #expect(added.output.contains("Launch URL:   http://127.0.0.1:\(port)/lti/launch"))

        let listed = try PortalProcess.run(["consumer", "list", "--config", config])
        #expect(listed.status == 0)
        #expect(listed.output.contains("moodle-prod\tMoodle production\tyes\tdatabase"))
        #expect(listed.output.contains("vle\t"))
        #expect(!listed.output.contains(secret))

        let duplicate = try PortalProcess.run(["consumer", "add", "--config", config, "--key", "moodle-prod", "--secret", "x"])
        #expect(duplicate.status != 0)
        #expect(duplicate.output.contains("exists already"))

        try await database.withClient { client in
            // Sealed at rest: the secret is not in the row.
            let plain = try await TestDatabase.count(client, "SELECT count(*) FROM consumers WHERE position(convert_to('\(secret)', 'UTF8') in secret_sealed) > 0")
            #expect(plain == 0)
        }

        // A launch signed with the generated secret is accepted by a running portal.
        let portal = try await PortalProcess(config: config, port: port)
        let signed = try PortalHarness.sign(url: "http://127.0.0.1:\(port)/lti/launch", key: "moodle-prod", secret: secret)
        #expect(try await portal.postForm("/lti/launch", body: signed.body).status == .seeOther)
        portal.stop()

        let removed = try PortalProcess.run(["consumer", "remove", "--config", config, "--key", "moodle-prod"])
        #expect(removed.status == 0)
        let missing = try PortalProcess.run(["consumer", "remove", "--config", config, "--key", "moodle-prod"])
        #expect(missing.status != 0)
        #expect(missing.output.contains("no consumer"))
    }

    /// `portal launch-link` prints a page whose form is a launch the portal accepts, once.
    @Test func aLaunchLinkPageLaunches() async throws {
        let database = try await TestDatabase.create()
        let directory = scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let port = try PortalProcess.freePort()
        let config = try PortalProcess.writeConfig(directory: directory, port: port, extra: "database:\n  url: \(database.url)\n")
        let page = try PortalProcess.run(["launch-link", "--config", config, "--key", "vle", "--roles", "Instructor", "--custom", "profile=tm351"])
        #expect(page.status == 0)
        #expect(page.output.contains("action=\"http://127.0.0.1:\(port)/lti/launch\""))
        let inputs = try Regex(#"<input type="hidden" name="([^"]*)" value="([^"]*)">"#)
        let unescape = { (text: Substring) in
            text.replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
                .replacingOccurrences(of: "&amp;", with: "&")
        }
        let form = page.output.matches(of: inputs).map { match in
            let name = unescape(match.output[1].substring ?? ""), value = unescape(match.output[2].substring ?? "")
            return PercentEncoding.encode(name) + "=" + PercentEncoding.encode(value)
        }.joined(separator: "&")
        #expect(form.contains("custom_profile=tm351"))
        let portal = try await PortalProcess(config: config, port: port)
        defer { portal.stop() }
        #expect(try await portal.postForm("/lti/launch", body: form).status == .seeOther)
        #expect(try await portal.postForm("/lti/launch", body: form).status == .unauthorized)
        let unknown = try PortalProcess.run(["launch-link", "--config", config, "--key", "nobody"])
        #expect(unknown.status != 0 && unknown.output.contains("no consumer"))
    }

    @Test func theProfileAndCourseCommands() async throws {
        let database = try await TestDatabase.create()
        let directory = scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = try PortalProcess.writeConfig(directory: directory, port: try PortalProcess.freePort(), extra: "database:\n  url: \(database.url)\n")
        let examples = TestEnvironment.repositoryRoot.appendingPathComponent("examples/profiles").path
        let first = try PortalProcess.run(["profile", "apply", "--config", config, examples])
        #expect(first.status == 0, "\(first.output)")
        #expect(first.output.contains("demo: created (version 1)") && first.output.contains("tm351: created (version 1)"))
        let again = try PortalProcess.run(["profile", "apply", "--config", config, examples])
        #expect(again.output.contains("demo: unchanged (version 1)"))
        let listed = try PortalProcess.run(["profile", "list", "--config", config])
        #expect(listed.output.contains("tm351\t1\tTM351 Data management and analysis\tlocalhost/portal-jupyter:1\t1.0\t2 GB"))

        let bad = directory + "/bad.yaml"
        try "slug: x\ndisplay_name: X\nimage: i\nmemory: plenty\n".write(toFile: bad, atomically: true, encoding: .utf8)
        let refused = try PortalProcess.run(["profile", "apply", "--config", config, bad])
        #expect(refused.status != 0)
        #expect(refused.output.contains("\(bad):4: memory: expected a size"))

        let unknown = try PortalProcess.run(["course", "map", "--config", config, "--context-id", "TM351-25J", "--profile", "nope"])
        #expect(unknown.status != 0 && unknown.output.contains("no profile \"nope\""))
        let mapped = try PortalProcess.run(["course", "map", "--config", config, "--context-id", "TM351-25J", "--profile", "tm351"])
        #expect(mapped.status == 0, "\(mapped.output)")
        let mappings = try PortalProcess.run(["course", "mappings", "--config", config])
        #expect(mappings.output.contains("*\tTM351-25J\ttm351"))
        #expect(try PortalProcess.run(["course", "unmap", "--config", config, "--context-id", "TM351-25J"]).status == 0)
        #expect(try PortalProcess.run(["course", "unmap", "--config", config, "--context-id", "TM351-25J"]).status != 0)
    }

    @Test func theHostAndReportCommands() async throws {
        let database = try await TestDatabase.create()
        let directory = scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = try PortalProcess.writeConfig(directory: directory, port: try PortalProcess.freePort(), extra: "database:\n  url: \(database.url)\n")
        let added = try PortalProcess.run([
            "host", "add", "gpu-1", "--config", config, "--endpoint", "tcp://10.0.0.5:2375", "--cpu", "16", "--memory", "64GiB", "--gpu", "0:A100",
            "--gpu", "1:A100", "--label", "pool=gpu",
        ])
        #expect(added.status == 0, "\(added.output)")
        #expect(try PortalProcess.run(["host", "add", "gpu-1", "--config", config, "--endpoint", "tcp://10.0.0.5:2375", "--cpu", "1", "--memory", "1GiB"]).output.contains("already exists"))
        let badMemory = try PortalProcess.run(["host", "add", "x", "--config", config, "--endpoint", "tcp://h:1", "--cpu", "1", "--memory", "lots"])
        #expect(badMemory.status != 0 && badMemory.output.contains("--memory"))
        #expect(try PortalProcess.run(["host", "drain", "gpu-1", "--config", config]).status == 0)
        let listed = try PortalProcess.run(["host", "list", "--config", config])
        #expect(listed.output.contains("gpu-1\tdraining (unknown)\ttcp://10.0.0.5:2375\t0\t0/16\t0/65536\t0/2 0:A100,1:A100\tpool=gpu"), "\(listed.output)")
        #expect(try PortalProcess.run(["host", "drain", "nope", "--config", config]).status != 0)
        #expect(try PortalProcess.run(["host", "remove", "gpu-1", "--config", config]).status == 0)
        #expect(try PortalProcess.run(["host", "list", "--config", config]).output.contains("No hosts"))

        let report = try PortalProcess.run(["report", "usage", "--config", config, "--from", "2026-01-01", "--to", "2026-01-31", "--by", "profile"])
        #expect(report.status == 0 && report.output.contains("profile,currency,runs,refused,cpu_core_hours,memory_gib_hours,gpu_hours,cost\r\n"), "\(report.output)")
        let badReport = try PortalProcess.run(["report", "usage", "--config", config, "--from", "2026-01-31", "--to", "2026-01-01"])
        #expect(badReport.status != 0 && badReport.output.contains("--to must not be before --from"))
    }

    @Test func aBadConfigurationStopsWithTheFileKeyAndReason() throws {
        let directory = scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/bad.yaml"
        try "listen: 127.0.0.1:8080\nlti:\n  timestamp_window: soon\n".write(toFile: path, atomically: true, encoding: .utf8)
        let result = try PortalProcess.run(["serve", "--config", path])
        #expect(result.status != 0)
        #expect(result.output.contains("\(path):3: lti.timestamp_window: expected a duration"))
        let help = try PortalProcess.run(["consumer", "add", "--help"])
        #expect(help.status == 0 && help.output.contains("--secret-file"))
    }
}
