import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// How the portal starts and probes a single-user Jupyter server.
public enum JupyterCommand {
    /// `jupyter server` serving under `basePath` on `port`, trusting the portal's forwarded headers.
    /// The token comes from `JUPYTER_TOKEN` in the environment, never from the command line (which
    /// any process on the host can read).
    ///
    /// JupyterLab writes the server's token into every page it serves (`page_config.token`) unless
    /// it believes it runs under JupyterHub, so the `hub_*` settings below make it leave the token
    /// out: the portal adds the token to each forwarded request and the browser never needs it.
    /// They also make Lab's "Hub Control Panel" menu item lead to the portal's `/home` page.
    public static func arguments(basePath: String, port: Int) -> [String] {
        [
            "jupyter", "server", "--no-browser", "--ip=0.0.0.0", "--port=\(port)", "--ServerApp.base_url=\(basePath)",
            "--ServerApp.trust_xheaders=True", "--ServerApp.allow_remote_access=True",
            "--ServerApp.tornado_settings=hub_prefix=/", "--ServerApp.tornado_settings=hub_host=",
            "--ServerApp.tornado_settings=user=student",
        ]
    }

    /// The URL of `path` on the server at `upstream` (`host:port` or `unix:/socket`).
    public static func url(upstream: String, path: String) -> String {
        if upstream.hasPrefix("unix:") {
            let socket = String(upstream.dropFirst("unix:".count))
            return "http+unix://\(socket.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? socket)\(path)"
        }
        return "http://\(upstream)\(path)"
    }

    /// Whether the server at `upstream` answers `GET <basePath>api/status` with 200 for `token`.
    public static func isReady(http: HTTPClient, upstream: String, basePath: String, token: String) async -> Bool {
        await status(http: http, upstream: upstream, basePath: basePath, token: token, timeout: .seconds(2)) != nil
    }

    /// The body of a 200 answer to `GET <basePath>api/status` with `token`; `nil` otherwise.
    static func status(http: HTTPClient, upstream: String, basePath: String, token: String, timeout: TimeAmount) async -> ByteBuffer? {
        var request = HTTPClientRequest(url: url(upstream: upstream, path: "\(basePath)api/status"))
        request.headers.add(name: "Host", value: "localhost")
        request.headers.add(name: "Authorization", value: "token \(token)")
        do {
            let response = try await http.execute(request, timeout: timeout)
            let body = try await response.body.collect(upTo: 1 << 16)
            return response.status.code == 200 ? body : nil
        } catch {
            return nil
        }
    }
}
