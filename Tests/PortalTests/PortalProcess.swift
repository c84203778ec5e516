import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import TestSupport
import Testing

/// A real `portal` process started from the built binary, for tests that need whole processes:
/// two replicas on one database, the embedded cluster's lifecycle, the CLI.
final class PortalProcess: @unchecked Sendable {
    // Invariant: `process` is only touched from the test that owns this object.
    let process: Process
    let port: Int
    let logPath: String

    static var binary: String { TestEnvironment.productsDirectory.appendingPathComponent("portal").path }

    /// A free TCP port on loopback.
    static func freePort() throws -> Int {
        let channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).wait()
        defer { try? channel.close().wait() }
        return try #require(channel.localAddress?.port)
    }

    /// Writes a configuration file listening on `port` and returns its path.
    static func writeConfig(directory: String, port: Int, extra: String) throws -> String {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/portal-\(port).yaml"
        let yaml = """
            listen: 127.0.0.1:\(port)
            public_url: http://127.0.0.1:\(port)
            data_dir: \(directory)/data
            log_level: notice
            templates_dir: \(TestPaths.templates)
            migrations_dir: \(TestPaths.migrations)
            jupyter_dir: \(TestPaths.jupyter)
            secret_key: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=
            lti:
              consumers:
                - key: vle
                  secret: vle-secret
            \(extra)
            """
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Runs `portal ARGS…` to completion; returns its exit status and output.
    static func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try runCommand([binary] + arguments)
    }

    /// Runs a program (looked up on PATH unless absolute) to completion; returns its exit status and output.
    static func runCommand(_ command: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = command
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("portal-cli-\(UUID().uuidString).log").path
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        try handle.close()
        return (process.terminationStatus, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
    }

    /// Starts `portal serve --config CONFIG` and waits until `/healthz` answers 200.
    init(config: String, port: Int, timeout: Duration = .seconds(60)) async throws {
        self.port = port
        logPath = config + ".log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = ["serve", "--config", config]
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if !process.isRunning { break }
            if let response = try? await get("/healthz"), response.status == .ok { return }
            try await Task.sleep(for: .milliseconds(200))
        }
        let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        stop()
        throw MissingComponent("portal serve did not become healthy on port \(port):\n\(log)")
    }

    /// SIGTERM, then waits for the process to exit.
    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    struct Reply: Sendable {
        var status: HTTPResponseStatus
        var headers: HTTPHeaders
        var body: String
    }

    func get(_ path: String, cookie: String? = nil, headers: [(String, String)] = []) async throws -> Reply {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        if let cookie { request.headers.add(name: "Cookie", value: cookie) }
        request.headers.add(contentsOf: headers)
        return try await Self.execute(request)
    }

    func postForm(_ path: String, body: String, cookie: String) async throws -> Reply {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.headers.add(name: "Cookie", value: cookie)
        request.body = .bytes(ByteBuffer(string: body))
        return try await Self.execute(request)
    }

    func postForm(_ path: String, body: String) async throws -> Reply {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.body = .bytes(ByteBuffer(string: body))
        return try await Self.execute(request)
    }

    /// A client that does not follow redirects, so tests see the portal's 303s. Never shut down: it
    /// lives as long as the test process.
    static let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(redirectConfiguration: .disallow))

    static func execute(_ request: HTTPClientRequest) async throws -> Reply {
        let response = try await client.execute(request, timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 1 << 20)
        return Reply(status: response.status, headers: response.headers, body: String(buffer: body))
    }
}
