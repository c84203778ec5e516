import AsyncHTTPClient
import Foundation
import NIOCore

/// What a Jupyter server says about its own activity (`GET <base>api/status`): the last time a
/// kernel or a client did anything, which counts even when no browser is connected (a long
/// computation).
public struct ServerActivity: Sendable, Equatable {
    public var lastActivity: Date?
    public var connections: Int
    public var kernels: Int

    public init(lastActivity: Date?, connections: Int, kernels: Int) {
        self.lastActivity = lastActivity
        self.connections = connections
        self.kernels = kernels
    }

    /// Asks the server at `upstream`; `nil` when it does not answer.
    public static func fetch(http: HTTPClient, upstream: String, basePath: String, secret: String) async -> ServerActivity? {
        guard let body = await JupyterCommand.status(http: http, upstream: upstream, basePath: basePath, secret: secret, timeout: .seconds(5)) else {
            return nil
        }
        return parse(Data(body.readableBytesView))
    }

    /// Parses the JSON of `/api/status`.
    static func parse(_ data: Data) -> ServerActivity? {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let text = object["last_activity"] as? String
        let date = text.flatMap { formatter.date(from: $0) ?? ISO8601DateFormatter().date(from: $0) }
        return ServerActivity(lastActivity: date, connections: object["connections"] as? Int ?? 0, kernels: object["kernels"] as? Int ?? 0)
    }
}

/// When a running environment should be stopped: past its profile's maximum lifetime, or idle for
/// longer than its idle timeout (the later of the proxy's and the server's own last activity).
public enum CullingPolicy {
    public static func decide(
        now: Date, startedAt: Date, lastActivity: Date?, idleTimeout: TimeInterval, maxLifetime: TimeInterval
    ) -> StopReason? {
        if now.timeIntervalSince(startedAt) >= maxLifetime { return .maxLifetime }
        let last = max(lastActivity ?? startedAt, startedAt)
        if now.timeIntervalSince(last) >= idleTimeout { return .idle }
        return nil
    }
}
