import NIOCore
import NIOPosix

/// Where an environment's server listens, as the lifecycle records it: `host:port`, or
/// `unix:/path/to/socket` for the process engine.
enum UpstreamAddress: Hashable, Sendable, CustomStringConvertible {
    case tcp(host: String, port: Int)
    case unix(path: String)

    /// Parses the recorded form; `nil` for anything else.
    init?(_ recorded: String) {
        if recorded.hasPrefix("unix:") {
            let path = String(recorded.dropFirst("unix:".count))
            guard path.hasPrefix("/") else { return nil }
            self = .unix(path: path)
            return
        }
        guard let colon = recorded.lastIndex(of: ":"), let port = Int(recorded[recorded.index(after: colon)...]), (1...65535).contains(port) else {
            return nil
        }
        var host = String(recorded[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return nil }
        self = .tcp(host: host, port: port)
    }

    var description: String {
        switch self {
        case .tcp(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unix(let path): "unix:\(path)"
        }
    }

    /// Opens a TCP or unix-socket connection with `initializer` run on the new channel.
    /// `halfClosure` lets the peer close its sending side while we keep writing (a spliced WebSocket).
    func connect(
        on eventLoop: any EventLoop, timeout: TimeAmount, halfClosure: Bool = false,
        initializer: @escaping @Sendable (any Channel) -> EventLoopFuture<Void>
    ) -> EventLoopFuture<any Channel> {
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelOption(ChannelOptions.allowRemoteHalfClosure, value: halfClosure)
            .channelInitializer(initializer)
        switch self {
        case .tcp(let host, let port):
            return bootstrap.channelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1).connect(host: host, port: port)
        case .unix(let path):
            return bootstrap.connect(unixDomainSocketPath: path)
        }
    }
}
