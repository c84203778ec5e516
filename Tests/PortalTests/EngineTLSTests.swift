import AsyncHTTPClient
import Environments
import Foundation
import PostgresNIO
@testable import Portal
import TestSupport
import Testing

/// A host reached over TCP with TLS client certificates: a TLS front that requires a client
/// certificate from its CA (Tests/tools/tls_engine_proxy.py, keys made with openssl) forwards to the
/// real Podman API. The portal's engine for such a host talks to it; one whose certificate comes
/// from another CA is refused.
@Suite("Engines over TLS", .enabled(if: TestEnvironment.hasEngine && TestEnvironment.hasPython))
struct EngineTLSTests {
    struct Info: Decodable {
        var port: Int
        var ca: String
        var cert: String
        var key: String
        var rogue_cert: String
        var rogue_key: String
    }

    @Test func aHostWithAClientCertificateIsReachedAndAForeignCertificateIsRefused() async throws {
        let endpoint = try #require(TestEnvironment.engineEndpoint)
        let socket = endpoint.replacingOccurrences(of: "unix://", with: "")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("engine-tls-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let front = Process()
        front.executableURL = URL(fileURLWithPath: try #require(TestEnvironment.python))
        front.arguments = [TestEnvironment.repositoryRoot.appendingPathComponent("Tests/tools/tls_engine_proxy.py").path, directory, socket]
        front.standardOutput = FileHandle.nullDevice
        front.standardError = FileHandle.nullDevice
        try front.run()
        defer { kill(front.processIdentifier, SIGKILL) }
        for _ in 0..<150 where !FileManager.default.fileExists(atPath: directory + "/info.json") { try await Task.sleep(for: .milliseconds(100)) }
        let info = try JSONDecoder().decode(Info.self, from: Data(contentsOf: URL(fileURLWithPath: directory + "/info.json")))

        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        let engines = HostEngines(hosts: HostRepository(client: .init(configuration: .init(host: "127.0.0.1", username: "none", password: nil, database: nil, tls: .disable))), http: http)
        func host(_ name: String, cert: String, key: String) -> Environments.Host {
            Environments.Host(
                name: name, endpoint: "tcp://127.0.0.1:\(info.port)", tls: .init(caFile: info.ca, certificateFile: cert, keyFile: key),
                capacity: Capacity(cpu: 1, memoryBytes: 1 << 30)
            )
        }
        let trusted = try #require(try engines.engine(of: host("tls", cert: info.cert, key: info.key)) as? DockerEngine)
        try await trusted.ping()
        #expect(try await trusted.imageExists(TestEnvironment.image))
        let rogue = try engines.engine(of: host("rogue", cert: info.rogue_cert, key: info.rogue_key))
        await #expect(throws: EngineError.self) { try await rogue.ping() }
        // Unreadable TLS files are a configuration error that names the files.
        #expect(throws: EngineError.self) { try engines.engine(of: host("missing", cert: directory + "/nope.pem", key: info.key)) }
        await engines.shutdown()
        try await http.shutdown()
    }
}
