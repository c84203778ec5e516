import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import NIOFoundationCompat
@testable import Portal
import TestSupport
import Testing

/// Cross-site request forgery against a student's real Jupyter server (Podman, the portal's image):
/// a page of another site, with the student's cookie, can neither write a file, start a kernel,
/// open a terminal nor drive one over a WebSocket, on any proxy path (a body: the router; no body:
/// the fast path, which leaves what it refuses to the router; an upgrade: the splice). The
/// student's own pages (and programs, which send neither `Origin` nor `Sec-Fetch-Site`) still can.
@Suite("Cross-origin requests to environments", .enabled(if: TestEnvironment.hasEngine && TestEnvironment.hasPython), .serialized)
struct ProxyOriginTests {
    struct Probe: Decodable {
        var contents: Int
        var kernels: Int
        var terminals: Int
        var terminal: String?
        var websocket: Int?
        var output: String?
    }

    static func probe(_ base: String, _ cookie: String, _ claim: String, terminal: String? = nil) async throws -> Probe {
        let output = try await PythonTool.output("origin_probe.py", [base, cookie, claim] + (terminal.map { [$0] } ?? []))
        return try JSONDecoder().decode(Probe.self, from: Data(output.utf8))
    }

    @Test func pagesOfOtherSitesCannotDriveAStudentsServerButItsOwnPagesCan() async throws {
        try await PortalHarness.withPortal(
            environments: try ProxyTests.environments(memory: "768MiB"), configure: { $0.security.frameAncestors = ["https://vle.example.ac.uk"] }
        ) { client, db in
            try await ProxyTests.removingContainers(db) {
                let port = try #require(client.port)
                let (cookie, entry) = try await ProxyTests.launchIntoLab(client, user: "origin-a")
                let path = String(entry.dropLast("lab".count))
                let base = "http://127.0.0.1:\(port)\(path)"

                // The environment's own origin (the public URL): everything works, a shell included.
                let own = try await Self.probe(base, cookie, "origin:https://portal.example.ac.uk")
                #expect(own.contents == 201 && own.kernels == 201 && own.terminals == 200)
                #expect(own.websocket == 101 && own.output == "42")
                let terminal = try #require(own.terminal)

                // Another site, a sandboxed frame, or a browser saying the request is cross-site: nothing.
                for claim in ["origin:http://evil.example", "origin:null", "origin:https://portal.example.ac.uk.evil.example", "fetch:cross-site", "fetch:same-site"] {
                    let refused = try await Self.probe(base, cookie, claim, terminal: terminal)
                    #expect(refused.contents == 403, "\(claim)")
                    #expect(refused.kernels == 403, "\(claim)")
                    #expect(refused.terminals == 403, "\(claim)")
                    #expect(refused.websocket == 403, "\(claim)")
                    #expect(refused.output == nil, "\(claim)")
                }

                // A same-origin fetch without Origin, and a program (neither header), are served.
                for claim in ["fetch:same-origin", "none"] {
                    let allowed = try await Self.probe(base, cookie, claim)
                    #expect(allowed.contents == 201 && allowed.kernels == 201 && allowed.terminals == 200, "\(claim)")
                    #expect(allowed.websocket == 101 && allowed.output == "42", "\(claim)")
                }

                // The server holds exactly what the three allowed runs made.
                let listing: HTTPFields = [.cookie: cookie, .accept: "application/json"]
                let kernels = try await client.execute(uri: path + "api/kernels", method: .get, headers: listing)
                #expect(Self.count(kernels.body) == 3)
                let terminals = try await client.execute(uri: path + "api/terminals", method: .get, headers: listing)
                #expect(Self.count(terminals.body) == 3)
                let contents = try await client.execute(uri: path + "api/contents", method: .get, headers: listing)
                let listed = (try JSONSerialization.jsonObject(with: Data(buffer: contents.body)) as? [String: Any])?["content"] as? [[String: Any]]
                #expect(listed?.filter { ($0["name"] as? String)?.hasPrefix("Untitled") == true }.count == 3)

                // The refusal says why, as a problem document for a script and a page for a browser.
                let script = try await client.execute(
                    uri: path + "api/kernels", method: .post, headers: [.cookie: cookie, .origin: "http://evil.example", .contentType: "application/json"],
                    body: ByteBuffer(string: "{}")
                )
                #expect(script.status == .forbidden)
                #expect(script.headers[.contentType] == "application/problem+json")
                #expect(String(buffer: script.body).contains("another site"))
                // Reading is not a change: a page of the student's own server still opens when linked from elsewhere.
                let page = try await client.execute(uri: entry, method: .get, headers: [.cookie: cookie, .accept: "text/html", .origin: "http://evil.example"])
                #expect(page.status == .ok)

                // Jupyter's pages are the student's alone: never cached, no referrer to other sites, and
                // framed by the VLE the configuration names instead of Jupyter's own `frame-ancestors 'self'`.
                let missing = try await client.execute(uri: path + "static/nope.js", method: .get, headers: [.cookie: cookie, .accept: "text/html"])
                for response in [page, missing] {
                    #expect(response.headers[.contentType]?.hasPrefix("text/html") == true)
                    #expect(response.headers[.cacheControl] == "no-store")
                    #expect(response.headers[values: .contentSecurityPolicy].allSatisfy { $0.hasSuffix("frame-ancestors 'self' https://vle.example.ac.uk") })
                    #expect(response.headers[values: .contentSecurityPolicy].joined().components(separatedBy: "frame-ancestors").count == 2)
                    #expect(response.headers[HTTPField.Name("Referrer-Policy")!] == "same-origin")
                }
            }
        }
    }

    /// The number of objects in a JSON array.
    static func count(_ body: ByteBuffer) -> Int {
        (try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [Any])?.count ?? -1
    }
}
