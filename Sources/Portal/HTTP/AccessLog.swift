import Logging
import NIOCore

/// The access log: one line per request at `info`, written only when the logger is that verbose.
/// Portal pages log `request` (``AccessLogMiddleware``); requests to environments log `proxied`,
/// with `path` saying which of the proxy's paths carried it — `fast` (the byte-level fast path),
/// `router` (NIO's parser and the router: bodies, refusals, what was not cached) or `splice` (a
/// WebSocket handshake) — and `target` the address without its query.
enum AccessLog {
    /// Which proxy path carried a request.
    enum ProxyPath: String, Sendable {
        case fast, router, splice
    }

    /// Milliseconds to one decimal.
    static func milliseconds(_ elapsed: Duration) -> Double {
        let milliseconds = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        return (milliseconds * 10).rounded() / 10
    }

    /// Milliseconds to one decimal, from NIO's clock.
    static func milliseconds(since start: NIODeadline) -> Double {
        ((Double((NIODeadline.now() - start).nanoseconds) / 1e5).rounded()) / 10
    }

    /// The line of a request to an environment.
    static func proxied(
        _ logger: Logger, path: ProxyPath, method: String, target: Substring, status: Int, milliseconds: Double, peer: String?, requestID: String?
    ) {
        guard logger.logLevel <= .info else { return }
        var metadata: Logger.Metadata = [
            "path": "\(path.rawValue)", "method": "\(method)", "target": "\(target.prefix { $0 != "?" })", "status": "\(status)", "ms": "\(milliseconds)",
            "peer": "\(peer ?? "-")",
        ]
        if let requestID, logger[metadataKey: "hb.request.id"] == nil { metadata["hb.request.id"] = "\(requestID)" }
        logger.info("proxied", metadata: metadata)
    }
}
