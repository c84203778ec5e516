import NIOCore
import NIOPosix
import Synchronization

/// Keep-alive connections to environment servers, reused across requests and kept on the event
/// loop of the browser connection that asked, so that forwarding does not hop threads. The fast
/// path's byte-level connections (``RawUpstreamConnection``) and the router's HTTP ones are kept
/// apart.
final class UpstreamPool: Sendable {
    private struct Key: Hashable {
        var address: UpstreamAddress
        var loop: ObjectIdentifier
        /// Which kind of connection (its handler's type).
        var kind: ObjectIdentifier
    }

    private struct Idle {
        var connection: any Sendable
        var channel: any Channel
        var since: ContinuousClock.Instant
    }

    let connectTimeout: TimeAmount
    let maxIdlePerServer: Int
    let idleLifetime: Duration
    private let idle = Mutex<[Key: [Idle]]>([:])

    init(connectTimeout: TimeAmount = .seconds(5), maxIdlePerServer: Int = 64, idleLifetime: Duration = .seconds(30)) {
        self.connectTimeout = connectTimeout
        self.maxIdlePerServer = maxIdlePerServer
        self.idleLifetime = idleLifetime
    }

    /// An idle connection to `address` on `eventLoop`, or a new one; `reused` says which.
    func acquire(_ address: UpstreamAddress, on eventLoop: any EventLoop) async throws -> (connection: UpstreamConnection, reused: Bool) {
        if let found = idleConnection(UpstreamConnection.self, to: address, on: eventLoop) { return (found, true) }
        return (try await connect(UpstreamConnection.self, to: address, on: eventLoop).get(), false)
    }

    /// An idle connection of this kind to `address` on `eventLoop`, if one is ready now.
    func idleConnection<Handler>(
        _ kind: PooledConnection<Handler>.Type, to address: UpstreamAddress, on eventLoop: any EventLoop
    ) -> PooledConnection<Handler>? {
        let key = Key(address: address, loop: ObjectIdentifier(eventLoop), kind: ObjectIdentifier(Handler.self))
        let now = ContinuousClock.now
        var stale = [any Channel]()
        let found = idle.withLock { table -> (any Sendable)? in
            while let candidate = table[key]?.popLast() {
                if candidate.channel.isActive, now - candidate.since < idleLifetime { return candidate.connection }
                stale.append(candidate.channel)
            }
            return nil
        }
        for channel in stale { channel.close(promise: nil) }
        return found as? PooledConnection<Handler>
    }

    /// A new connection of this kind to `address` on `eventLoop`, returned to the pool after each
    /// response that leaves it reusable.
    func connect<Handler>(
        _ kind: PooledConnection<Handler>.Type, to address: UpstreamAddress, on eventLoop: any EventLoop
    ) -> EventLoopFuture<PooledConnection<Handler>> {
        kind.connect(to: address, on: eventLoop, timeout: connectTimeout) { [weak self] connection, reusable in
            guard reusable, let self else { return connection.channel.close(promise: nil) }
            self.checkIn(connection)
        }
    }

    /// Keeps a connection that is between requests for whoever asks next on its event loop (or
    /// closes it when it is closing anyway or the pool is full).
    func checkIn<Handler>(_ connection: PooledConnection<Handler>) {
        guard connection.channel.isActive else { return connection.channel.close(promise: nil) }
        let key = Key(address: connection.address, loop: ObjectIdentifier(connection.channel.eventLoop), kind: ObjectIdentifier(Handler.self))
        let kept = idle.withLock { table in
            guard table[key, default: []].count < maxIdlePerServer else { return false }
            table[key, default: []].append(Idle(connection: connection, channel: connection.channel, since: .now))
            return true
        }
        if !kept { connection.channel.close(promise: nil) }
    }

    /// Closes every idle connection to `address` (its environment stopped).
    func drop(_ address: UpstreamAddress) {
        let closing = idle.withLock { table in
            let keys = table.keys.filter { $0.address == address }
            return keys.flatMap { table.removeValue(forKey: $0) ?? [] }
        }
        for entry in closing { entry.channel.close(promise: nil) }
    }

    /// Closes every idle connection (shutdown).
    func closeAll() {
        let closing = idle.withLock { table in
            defer { table.removeAll() }
            return table.values.flatMap { $0 }
        }
        for entry in closing { entry.channel.close(promise: nil) }
    }
}
