import AsyncHTTPClient
import Crypto
import Foundation
import HummingbirdTesting
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import PostgresNIO
@testable import Portal
import TestSupport
import Testing

/// What the proxy must not get wrong that Jupyter does not exercise easily: events and long polls
/// pass as they happen (never buffered to the end), headers are rewritten, uploads stream, and the
/// upstream is a unix socket (as with the process engine). The environment's server is a small
/// Python server (Tests/tools/stream_upstream.py) recorded as a ready environment; the portal,
/// its database and the launch are real. No engine: the proxy serves what the database knows.
@Suite("Proxy streaming and headers", .enabled(if: TestEnvironment.hasDatabase && TestEnvironment.hasPython), .serialized)
struct ProxyStreamingTests {
    static let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(redirectConfiguration: .disallow))

    /// A portal with one launched student whose ready environment is the stand-in server.
    struct StandIn {
        let port: Int
        let base: String
        let token: String
        var url: String { "http://127.0.0.1:\(port)\(base)" }

        func get(_ path: String, headers: [(String, String)] = []) async throws -> (HTTPClientResponse, String) {
            var request = HTTPClientRequest(url: url + path)
            request.headers.add(name: "Cookie", value: "portal_session=\(token)")
            request.headers.add(contentsOf: headers)
            let response = try await ProxyStreamingTests.client.execute(request, timeout: .seconds(30))
            return (response, String(buffer: try await response.body.collect(upTo: 1 << 20)))
        }
    }

    static func withStandIn(_ body: @escaping @Sendable (StandIn) async throws -> Void) async throws {
        // The profile the record names, and no engine at all.
        var profilesOnly = PortalConfiguration.EnvironmentsConfiguration()
        profilesOnly.profilesDirectory = try TestProfiles.directory("stand-in", profiles: ["course": TestProfiles.jupyter(memory: "256MiB")]) + "/profiles"
        try await PortalHarness.withPortal(environments: profilesOnly) { client, db in
            let port = try #require(client.port)
            let signed = try PortalHarness.sign(params: IndependentSigner.launchParameters(user: "stream-a", context: "OTHER-9"))
            let launch = try await PortalHarness.post(client, body: signed.body)
            let token = try #require(PortalHarness.sessionToken(launch))

            // The environment: a ready record whose upstream is the stand-in server's socket.
            var base = ""
            for try await (path) in try await db.query("SELECT '/user/' || u.slug || '/' || c.slug || '/' FROM users u, courses c").decode(String.self) {
                base = path
            }
            let socket = FileManager.default.temporaryDirectory.appendingPathComponent("up-\(UUID().uuidString.prefix(8)).sock").path
            let server = Process()
            server.executableURL = URL(fileURLWithPath: try #require(TestEnvironment.python))
            server.arguments = [TestEnvironment.repositoryRoot.appendingPathComponent("Tests/tools/stream_upstream.py").path, socket, base]
            server.standardOutput = FileHandle.nullDevice
            server.standardError = FileHandle.nullDevice
            try server.run()
            defer { kill(server.processIdentifier, SIGKILL) }
            for _ in 0..<100 where !FileManager.default.fileExists(atPath: socket) { try await Task.sleep(for: .milliseconds(100)) }
            let sealed = ByteBuffer(data: try EnvironmentStoreTests.box.seal("upstream-token"))
            let upstream = "unix:" + socket
            try await db.query(
                """
                INSERT INTO environments (user_id, course_id, profile_slug, profile_version, engine, state, container_name, upstream,
                                          token_sealed, home_volume, base_path, ready_at)
                SELECT u.id, c.id, 'course-env', 1, 'docker', 'ready', 'stand-in', \(upstream), \(sealed), 'none', \(base), now()
                FROM users u, courses c
                """
            )
            try await body(StandIn(port: port, base: base, token: token))
        }
    }

    @Test func eventsAndLongPollsFlowHeadersAreRewrittenAndUploadsStreamOverAUnixSocket() async throws {
        try await Self.withStandIn { standIn in
            let url = standIn.url
            let token = standIn.token
            let port = standIn.port

            // Server-sent events: the first event arrives while the stream is still open (the
            // server sends the second only after the client has seen the first and said so).
            var events = HTTPClientRequest(url: url + "events")
            events.headers.add(name: "Cookie", value: "portal_session=\(token)")
            let stream = try await Self.client.execute(events, timeout: .seconds(30))
            #expect(stream.headers["Content-Type"].first == "text/event-stream")
            var received = ""
            var acknowledged = false
            for try await chunk in stream.body {
                received += String(buffer: chunk)
                if !acknowledged, received.contains("data: one") {
                    acknowledged = true
                    #expect(try await standIn.get("ack").1 == "ok")
                }
            }
            #expect(received == "data: one\n\ndata: two\n\n")

            // A long poll is answered whenever the server answers, and other requests go on meanwhile.
            async let poll = standIn.get("poll")
            try await Task.sleep(for: .milliseconds(200))
            #expect(try await standIn.get("release").1 == "ok")
            #expect(try await poll.1 == "released")

            // Headers: the server's secret added, the portal's cookie, hop-by-hop fields and the
            // browser's credentials (its own copy of the secret header too) dropped, the browser's own
            // forwarding claims replaced, Host kept.
            let (_, json) = try await standIn.get(
                "headers",
                headers: [
                    ("Cookie", "theme=dark"), ("Connection", "keep-alive, X-Secret-Hop"), ("X-Secret-Hop", "1"), ("Authorization", "Basic ZXZpbA=="),
                    ("X-Portal-Secret", "forged"), ("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-Host", "evil.example"),
                ]
            )
            let pairs = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String]])
            let seen = Dictionary(pairs.map { ($0[0].lowercased(), $0[1]) }, uniquingKeysWith: { "\($0), \($1)" })
            #expect(seen["x-portal-secret"] == "upstream-token")
            #expect(seen["authorization"] == nil)
            #expect(seen["cookie"] == "theme=dark")
            #expect(seen["x-secret-hop"] == nil)
            #expect(seen["connection"] == nil)
            #expect(seen["x-forwarded-for"] == "127.0.0.1")
            #expect(seen["x-forwarded-proto"] == "https")
            #expect(seen["x-forwarded-host"] == "127.0.0.1:\(port)")
            #expect(seen["host"] == "127.0.0.1:\(port)")

            // A chunked upload of 8 MiB streams through intact.
            let size = 8 << 20
            var upload = HTTPClientRequest(url: url + "upload")
            upload.method = .POST
            upload.headers.add(name: "Cookie", value: "portal_session=\(token)")
            let piece = ByteBuffer(repeating: 0x5a, count: 1 << 16)
            upload.body = .stream((0..<(size / piece.readableBytes)).async.map { _ in piece }, length: .unknown)
            let uploaded = try await Self.client.execute(upload, timeout: .seconds(60))
            let answer = String(buffer: try await uploaded.body.collect(upTo: 1 << 16))
            let expected = SHA256Hex.of(Data(repeating: 0x5a, count: size))
            #expect(answer.contains(#""length": \#(size)"#))
            #expect(answer.contains(expected))
        }
    }

    /// One browser connection carrying requests the proxy's fast path forwards itself (body-less
    /// GETs and HEADs) and requests its router answers (uploads with a length or in chunks, a refusal
    /// without a session), written all at once, in 7-byte pieces, or one after another: every answer
    /// comes back whole and in order, read by Python's own HTTP parser, and an upstream answer
    /// delimited by closing ends the connection.
    @Test(arguments: ["pipelined", "trickle", "sequential"])
    func oneConnectionMixesForwardedAndRoutedRequestsInOrder(mode: String) async throws {
        try await Self.withStandIn { standIn in
            let output = try await PythonTool.output("pipeline_client.py", ["127.0.0.1", "\(standIn.port)", standIn.base, standIn.token, mode])
            struct Answer: Decodable {
                let status: Int
                let headers: [[String]]
                let length: Int
                let sha256: String
                let text: String
                func header(_ name: String) -> String? { headers.first { $0[0] == name }?[1] }
            }
            struct Run: Decodable {
                let responses: [Answer]
                let closed: Bool
                let upload: [String]
            }
            let run = try JSONDecoder().decode(Run.self, from: Data(output.utf8))
            try #require(run.responses.count == 8)
            let answers = run.responses
            #expect(answers[0].status == 200 && answers[0].text == "echo 1")
            #expect(answers[1].status == 200 && answers[1].length == 0 && answers[1].header("content-length") == "6")
            #expect(answers[2].status == 200 && answers[2].text.contains(#""length": 100000"#) && answers[2].text.contains(run.upload[0]))
            let lines = (0..<300).map { "line \($0)\n" }.joined()
            #expect(answers[3].status == 200 && answers[3].sha256 == SHA256Hex.of(Data(lines.utf8)))
            #expect(answers[4].status == 403)
            #expect(answers[5].status == 200 && answers[5].text.contains(#""length": 3000"#) && answers[5].text.contains(run.upload[1]))
            #expect(answers[6].status == 200 && answers[6].text == "echo 4")
            #expect(answers[7].status == 200 && answers[7].length == 12_000 && answers[7].header("connection") == "close")
            #expect(run.closed)
        }
    }
}

private enum SHA256Hex {
    static func of(_ data: Data) -> String {
        Crypto.SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }
}

extension Range where Bound == Int {
    /// The range as an async sequence, for streaming request bodies.
    var async: AsyncStream<Int> {
        AsyncStream { continuation in
            for value in self { continuation.yield(value) }
            continuation.finish()
        }
    }
}
