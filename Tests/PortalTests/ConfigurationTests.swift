import Environments
import Foundation
import PostgresNIO
@testable import Portal
import TestSupport
import Testing

@Suite("Configuration")
struct ConfigurationTests {
    func write(_ yaml: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("portal-\(UUID().uuidString).yaml").path
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func error(_ yaml: String, environment: [String: String] = [:]) throws -> ConfigurationError? {
        let path = try write(yaml)
        do {
            _ = try PortalConfiguration.load(path: path, environment: environment)
            return nil
        } catch {
            return error
        }
    }

    @Test func theExampleLoads() throws {
        let path = TestEnvironment.repositoryRoot.appendingPathComponent("examples/portal.yaml").path
        let configuration = try PortalConfiguration.load(path: path, environment: [:])
        #expect(configuration.listenPort == 8080)
        #expect(configuration.publicURL.absolute("/lti/launch") == "http://127.0.0.1:8080/lti/launch")
        #expect(configuration.consumers.map(\.key) == ["demo"])
        #expect(!configuration.isEmbedded == false)
        #expect(configuration.dataDirectory.hasSuffix("/data"))
        #expect(configuration.trustedProxies.count == 2)
    }

    @Test func defaultsAndEnvironmentOverrides() throws {
        let secretFile = try write("from-a-file\n")
        let path = try write(
            """
            lti:
              consumers:
                - key: moodle.example
                  secret_file: \(secretFile)
                - key: canvas
                  secret: inline
            """
        )
        let plain = try PortalConfiguration.load(path: path, environment: [:])
        #expect(plain.listenHost == "127.0.0.1" && plain.listenPort == 8080)
        #expect(plain.isEmbedded)
        #expect(plain.timestampWindow == .seconds(300))
        #expect(plain.consumers.map(\.secret) == ["from-a-file", "inline"])
        let overridden = try PortalConfiguration.load(
            path: path,
            environment: [
                "PORTAL_DATABASE_URL": "postgres://u:p@db:5432/portal", "PORTAL_LTI_SECRET_MOODLE_EXAMPLE": "from-env", "PORTAL_LISTEN": "0.0.0.0:9000",
                "PORTAL_SECRET_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
            ]
        )
        #expect(!overridden.isEmbedded)
        #expect(overridden.consumers[0].secret == "from-env")
        #expect(overridden.listenHost == "0.0.0.0" && overridden.listenPort == 9000)
        guard case .value = overridden.secretKey else {
            Issue.record("PORTAL_SECRET_KEY ignored")
            return
        }
    }

    @Test func errorsNameTheFileTheKeyAndTheReason() throws {
        let unknown = try #require(try error("listen: 127.0.0.1:80\npublik_url: http://x\n"))
        #expect(unknown.key == "publik_url")
        #expect(unknown.line == 2)
        #expect(unknown.reason.contains("unknown key"))
        #expect(unknown.description.contains(".yaml:2: publik_url: unknown key"))

        #expect(try error("listen: localhost\n")?.key == "listen")
        #expect(try error("public_url: ftp://x\n")?.key == "public_url")
        #expect(try error("database:\n  url: mysql://x\n")?.key == "database.url")
        #expect(try error("lti:\n  timestamp_window: forever\n")?.key == "lti.timestamp_window")
        #expect(try error("lti:\n  consumers:\n    - key: a\n")?.reason.contains("needs secret or secret_file") == true)
        #expect(try error("lti:\n  consumers:\n    - key: a\n      secret: x\n      secret_file: /y\n")?.reason.contains("not both") == true)
        #expect(try error("lti:\n  consumers:\n    - key: a\n      secret_file: /nonexistent/secret\n")?.key == "lti.consumers[0].secret_file")
        #expect(try error("lti:\n  consumers:\n    - {key: a, secret: x}\n    - {key: a, secret: y}\n")?.reason.contains("declared twice") == true)
        #expect(try error("trusted_proxies: [10.0.0.0/33]\n")?.key == "trusted_proxies[0]")
        #expect(try error("log_level: loud\n")?.key == "log_level")
        #expect(try error(": : :\n  - [")?.reason.contains("YAML") == true)
    }

    @Test func refusalRecordLimitsAndFrameAncestors() throws {
        let defaults = try PortalConfiguration.load(path: try write("listen: 127.0.0.1:8080\n"), environment: [:])
        #expect(defaults.refusalLimits == LaunchStore.RefusalLimits(perClient: 20, perMinute: 600))
        #expect(defaults.security.frameAncestorsDirective == "frame-ancestors 'self'")
        let set = try PortalConfiguration.load(
            path: try write(
                """
                lti:
                  refusal_records_per_client: 5
                  refusal_records_per_minute: 100
                security:
                  frame_ancestors: [https://Moodle.example.ac.uk/, "https://*.vle.example.ac.uk:8443"]
                """
            ),
            environment: [:]
        )
        #expect(set.refusalLimits == LaunchStore.RefusalLimits(perClient: 5, perMinute: 100))
        #expect(set.security.frameAncestorsDirective == "frame-ancestors 'self' https://moodle.example.ac.uk https://*.vle.example.ac.uk:8443")
        #expect(try error("lti:\n  refusal_records_per_client: 0\n")?.key == "lti.refusal_records_per_client")
        #expect(try error("security:\n  frame_ancestors: [\"https://x.example; script-src *\"]\n")?.key == "security.frame_ancestors[0]")
    }

    @Test func addressRanges() throws {
        let v4 = try #require(IPAddressRange("10.1.0.0/16"))
        #expect(v4.contains("10.1.200.3"))
        #expect(!v4.contains("10.2.0.1"))
        #expect(v4.contains("::ffff:10.1.2.3"))
        let v6 = try #require(IPAddressRange("fd00::/8"))
        #expect(v6.contains("fd12:3456::1"))
        #expect(!v6.contains("fe80::1"))
        #expect(try #require(IPAddressRange("127.0.0.1")).contains("127.0.0.1"))
        #expect(!(try #require(IPAddressRange("127.0.0.1")).contains("127.0.0.2")))
        #expect(IPAddressRange("nonsense") == nil)
    }

    @Test func databaseURLs() throws {
        let tcp = try DatabaseURL.configuration("postgres://portal:p%40ss@db.example:6432/portal?sslmode=disable")
        #expect(tcp.host == "db.example" && tcp.port == 6432 && tcp.username == "portal" && tcp.password == "p@ss" && tcp.database == "portal")
        let socket = try DatabaseURL.configuration("postgresql://portal@/portal?host=/var/run/postgresql")
        #expect(socket.unixSocketPath == "/var/run/postgresql/.s.PGSQL.5432")
        #expect(throws: DatabaseURLError.self) { try DatabaseURL.configuration("postgres://db/x?sslmode=sometimes") }
    }
}
