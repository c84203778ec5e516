import AsyncHTTPClient
import Environments
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import NIOHTTP1
import PostgresNIO
@testable import Portal
import TestSupport
import Testing

/// How the portal authenticates to a student's server: a per-environment secret header the server's
/// identity provider (Jupyter/jupyter_server_config.py, put into the container before it starts)
/// checks and removes. Real portal, real PostgreSQL, Podman and the real Jupyter image, with an app
/// behind jupyter-server-proxy that echoes what it receives. Part of "The proxy" suite, so that it
/// runs one at a time with the other end-to-end proxy tests.
extension ProxyTests {
    /// A profile whose own `command` starts Jupyter with an echo app behind jupyter-server-proxy at
    /// `<base>echo/` (the portal's Jupyter configuration reaches it all the same).
    static func echoEnvironments() throws -> PortalConfiguration.EnvironmentsConfiguration {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("profiles-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let echo = try String(contentsOf: TestEnvironment.repositoryRoot.appendingPathComponent("Tests/tools/header_echo.py"), encoding: .utf8)
        // traitlets reads the value as a Python literal, which knows no JSON `\/`.
        let servers = try JSONSerialization.data(withJSONObject: ["echo": ["command": ["python3", "-c", echo, "{port}"], "timeout": 60]], options: .withoutEscapingSlashes)
        let profile: [String: Any] = [
            "slug": "echo-env", "display_name": "Echo environment", "image": TestEnvironment.image, "cpu": 1, "memory": "512MiB",
            "persistence": "disposable", "match": ["context_labels": ["TM351-*"]],
            "command": [
                "/bin/sh", "-c", #"exec jupyter server --no-browser --ip=0.0.0.0 --port=8888 --ServerApp.base_url="$PORTAL_BASE_PATH" "$@""#, "sh",
                "--ServerProxy.servers=" + String(decoding: servers, as: UTF8.self),
            ],
        ]
        // YAML is a superset of JSON: no quoting of the script to get wrong.
        try JSONSerialization.data(withJSONObject: profile, options: .withoutEscapingSlashes).write(to: URL(fileURLWithPath: directory + "/echo.yaml"))
        var environments = try Self.environments()
        environments.profilesDirectory = directory
        return environments
    }

    /// The fields an app received, by lower-cased name.
    static func echoedFields(_ json: String) throws -> [String: String] {
        let pairs = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String]], "not a header list: \(json)")
        return Dictionary(pairs.map { ($0[0].lowercased(), $0[1]) }, uniquingKeysWith: { "\($0), \($1)" })
    }

    /// What an app behind the server must never receive: any credential of the portal.
    static func expectNoPortalCredential(_ json: String, secret: String) throws {
        let seen = try echoedFields(json)
        #expect(seen["authorization"] == nil, "\(json)")
        #expect(seen[JupyterCommand.secretHeader.lowercased()] == nil, "\(json)")
        #expect(seen["cookie"] == "theme=dark", "\(json)")
        #expect(!json.contains(secret) && !json.contains("forged") && !json.contains("portal_session") && !json.contains("portal_environment"), "\(json)")
    }

    @Test func noPageCarriesTheSecretAppsAndKernelsNeverSeeItAndTheServerRefusesEveryoneElse() async throws {
        try await PortalHarness.withPortal(environments: try Self.echoEnvironments()) { client, db in
            try await Self.removingContainers(db) {
                let port = try #require(client.port)
                let (cookie, entry) = try await Self.launchIntoLab(client, user: "secret-a")
                let base = String(entry.dropLast("lab".count))
                let secret = try await Self.token(db)
                #expect(secret.count > 20)

                // No page under the prefix carries the secret or any token, whatever Jupyter renders:
                // JupyterLab, the server's root, its login redirect, HTML 404s.
                let html: HTTPFields = [.cookie: cookie, .accept: "text/html"]
                for path in ["", "lab", "lab/tree/nothing.ipynb", "tree", "login", "login?next=\(base)lab", "static/nope.js", "nope", "api/status"] {
                    let response = try await client.execute(uri: base + path, method: .get, headers: html)
                    let text = String(buffer: response.body) + "\(response.headers)"
                    #expect(response.status.code < 500, "\(path): \(response.status)")
                    #expect(!text.contains(secret), "\(path)")
                    #expect(text.firstMatch(of: /data-jupyter-api-token="[^"]/) == nil, "\(path): \(text.prefix(2000))")
                    #expect(text.firstMatch(of: /"token": *"[^"]/) == nil, "\(path)")
                }
                let lab = try await client.execute(uri: entry, method: .get, headers: html)
                #expect(lab.status == .ok && String(buffer: lab.body).contains(#""hubPrefix": "/""#))
                // Authenticated through the portal, the login URL is only a way on.
                let login = try await client.execute(uri: base + "login?next=\(base)lab", method: .get, headers: html)
                #expect(login.status == .found && login.headers[.location] == base + "lab")

                // An app behind jupyter-server-proxy, over HTTP and WebSocket, receives no
                // credential of the portal, even when the browser forges them.
                let forged: HTTPFields = [.cookie: cookie + "; theme=dark", .authorization: "Basic ZXZpbA==", HTTPField.Name(JupyterCommand.secretHeader)!: "forged"]
                let echoed = try await client.execute(uri: base + "echo/", method: .get, headers: forged)
                #expect(echoed.status == .ok, "\(String(buffer: echoed.body).suffix(500))")
                try Self.expectNoPortalCredential(String(buffer: echoed.body), secret: secret)
                let overWebSocket = try await PythonTool.output(
                    "jupyter_ws.py", ["ask", "http://127.0.0.1:\(port)\(base)echo/ws", cookie + "; theme=dark", "Authorization=Basic ZXZpbA==", "\(JupyterCommand.secretHeader)=forged"]
                )
                #expect(try Self.echoedFields(overWebSocket)["upgrade"] == "websocket")
                try Self.expectNoPortalCredential(overWebSocket, secret: secret)

                // Nor does a kernel: the server removed the secret from the environment it passes on.
                let code = "import os; print(sorted(k for k in os.environ if k.startswith('PORTAL_SERVER') or k == 'JUPYTER_TOKEN'))"
                let run = try await PythonTool.output("jupyter_ws.py", ["execute", "http://127.0.0.1:\(port)\(base)", cookie, code])
                #expect(run.contains(#""output": "[]\n""#), "\(run)")

                // Straight to the server, not through the portal: nothing without the secret.
                var upstream = ""
                for try await value in try await db.query("SELECT upstream FROM environments WHERE state = 'ready'").decode(String.self) { upstream = value }
                let direct = "http://\(upstream)\(base)"
                func get(_ path: String, _ headers: [(String, String)]) async throws -> PortalProcess.Reply {
                    var request = HTTPClientRequest(url: direct + path)
                    request.headers.add(contentsOf: headers)
                    return try await PortalProcess.execute(request)
                }
                #expect(try await get("api/status", []).status == .forbidden)
                #expect(try await get("api/status", [(JupyterCommand.secretHeader, "wrong")]).status == .forbidden)
                #expect(try await get("api/status", [(JupyterCommand.secretHeader, secret + "x")]).status == .forbidden)
                #expect(try await get("api/status", [("Authorization", "token \(secret)")]).status == .forbidden)
                #expect(try await get("api/contents", [(JupyterCommand.secretHeader, "")]).status == .forbidden)
                #expect(try await get("api/status", [(JupyterCommand.secretHeader, secret)]).status == .ok)
                let page = try await get("lab", [("Accept", "text/html")])
                #expect(page.status == .found && page.headers["Location"].first?.contains("\(base)login") == true)
                let form = try await get("login?next=\(base)lab", [("Accept", "text/html")])
                #expect(form.status == .forbidden)
                #expect(!form.body.contains("<form") && !form.body.lowercased().contains("password"))
                #expect(try await get("echo/", []).status == .found)
            }
        }
    }
}
