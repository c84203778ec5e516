import AsyncHTTPClient

/// Asks a started server whether it answers yet: the same for every engine, so that a backend
/// only has to say where the server is (``EnvironmentStatus/running(upstream:)``).
public protocol ReadinessProbe: Sendable {
    /// Whether the server at `upstream` (`host:port` or `unix:/path`) answers under `basePath`.
    func isReady(upstream: String, basePath: String, secret: String) async -> Bool
}

/// Jupyter's `GET <base>api/status` with the server's secret, answered 200.
public struct JupyterProbe: ReadinessProbe {
    let http: HTTPClient

    public init(http: HTTPClient) {
        self.http = http
    }

    public func isReady(upstream: String, basePath: String, secret: String) async -> Bool {
        await JupyterCommand.isReady(http: http, upstream: upstream, basePath: basePath, secret: secret)
    }
}
