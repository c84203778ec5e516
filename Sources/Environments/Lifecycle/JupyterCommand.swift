import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// How the portal starts, authenticates to and probes a single-user Jupyter server.
///
/// Every server gets the portal's Jupyter configuration (``JupyterConfig``: `Jupyter/` in the
/// repository) at ``configPath``, named by `JUPYTER_CONFIG_PATH`, whatever its command. Its identity
/// provider accepts exactly the requests that carry the environment's secret in ``secretHeader``,
/// which the portal adds to every request it forwards (and to its own probes) and never lets a
/// browser send; the server renders no token into any page and offers no login form.
public enum JupyterCommand {
    /// The request header carrying the environment's secret to its server.
    public static let secretHeader = "X-Portal-Secret"
    /// The environment variable the server reads the secret from (and removes, so that kernels,
    /// terminals and proxied apps do not inherit it). Never on a command line.
    public static let secretVariable = "PORTAL_SERVER_SECRET"
    /// Where the portal's Jupyter configuration files are inside every environment; the server's
    /// `JUPYTER_CONFIG_PATH` (Jupyter's highest-precedence config directory).
    public static let configPath = "/etc/portal/jupyter"

    /// `jupyter server` serving under `basePath` on `port`. Authentication, the forwarded headers
    /// it trusts and the hub settings that make JupyterLab lead back to the portal come from the
    /// configuration at ``configPath``, so that a profile's own `command` gets them too.
    public static func arguments(basePath: String, port: Int) -> [String] {
        ["jupyter", "server", "--no-browser", "--ip=0.0.0.0", "--port=\(port)", "--ServerApp.base_url=\(basePath)"]
    }

    /// The variables every server gets: its secret and where the portal's configuration is.
    public static func environment(secret: String) -> [String: String] {
        [secretVariable: secret, "JUPYTER_CONFIG_PATH": configPath]
    }

    /// The URL of `path` on the server at `upstream` (`host:port` or `unix:/socket`).
    public static func url(upstream: String, path: String) -> String {
        if upstream.hasPrefix("unix:") {
            let socket = String(upstream.dropFirst("unix:".count))
            return "http+unix://\(socket.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? socket)\(path)"
        }
        return "http://\(upstream)\(path)"
    }

    /// Whether the server at `upstream` answers `GET <basePath>api/status` with 200 for `secret`.
    public static func isReady(http: HTTPClient, upstream: String, basePath: String, secret: String) async -> Bool {
        await status(http: http, upstream: upstream, basePath: basePath, secret: secret, timeout: .seconds(2)) != nil
    }

    /// The body of a 200 answer to `GET <basePath>api/status` with `secret`; `nil` otherwise.
    static func status(http: HTTPClient, upstream: String, basePath: String, secret: String, timeout: TimeAmount) async -> ByteBuffer? {
        var request = HTTPClientRequest(url: url(upstream: upstream, path: "\(basePath)api/status"))
        request.headers.add(name: "Host", value: "localhost")
        request.headers.add(name: secretHeader, value: secret)
        do {
            let response = try await http.execute(request, timeout: timeout)
            let body = try await response.body.collect(upTo: 1 << 16)
            return response.status.code == 200 ? body : nil
        } catch {
            return nil
        }
    }
}
