import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A keep-alive connection to an environment's server that the pool can hold.
protocol PooledUpstream: AnyObject, Sendable {
    var channel: any Channel { get }
    var address: UpstreamAddress { get }
}

/// One keep-alive HTTP/1.1 connection to an environment's server, through NIO's HTTP codec (the
/// router's path: request bodies, streamed responses).
final class UpstreamConnection: PooledUpstream {
    let channel: any Channel
    let address: UpstreamAddress
    private let handler: NIOLoopBound<UpstreamHandler>

    private init(channel: any Channel, address: UpstreamAddress, handler: NIOLoopBound<UpstreamHandler>) {
        self.channel = channel
        self.address = address
        self.handler = handler
    }

    /// Connects on `eventLoop`; `onResponseEnd` runs after each complete response (on the loop).
    static func connect(
        to address: UpstreamAddress, on eventLoop: any EventLoop, timeout: TimeAmount,
        onResponseEnd: @escaping @Sendable (UpstreamConnection, Bool) -> Void
    ) -> EventLoopFuture<UpstreamConnection> {
        address.connect(on: eventLoop, timeout: timeout) { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHTTPClientHandlers()
                try channel.pipeline.syncOperations.addHandler(UpstreamHandler())
            }
        }.flatMapThrowing { channel in
            channel.eventLoop.preconditionInEventLoop()
            // Reads happen only when a consumer wants them (back-pressure).
            try channel.syncOptions?.setOption(ChannelOptions.autoRead, value: false)
            let handler = try channel.pipeline.syncOperations.handler(type: UpstreamHandler.self)
            let connection = UpstreamConnection(channel: channel, address: address, handler: NIOLoopBound(handler, eventLoop: channel.eventLoop))
            // A cycle while the channel is open, broken when it closes (`UpstreamHandler.channelInactive`).
            handler.onResponseEnd = { reusable in onResponseEnd(connection, reusable) }
            return connection
        }
    }

    /// Sends a request and waits for the response head. A request body is streamed from `body`,
    /// each part written once the previous one left, so a slow server slows the upload.
    func exchange<Body: AsyncSequence>(_ head: HTTPRequestHead, body: Body?) async throws -> UpstreamResponse where Body.Element == ByteBuffer {
        let promise = channel.eventLoop.makePromise(of: UpstreamResponse.self)
        let handler = self.handler
        channel.eventLoop.execute { handler.value.send(head, end: body == nil, promise: promise) }
        if let body {
            do {
                for try await buffer in body {
                    try await channel.writeAndFlush(HTTPClientRequestPart.body(.byteBuffer(buffer)))
                }
                try await channel.writeAndFlush(HTTPClientRequestPart.end(nil))
            } catch {
                channel.close(promise: nil)
                _ = try? await promise.futureResult.get()
                throw error
            }
        }
        return try await promise.futureResult.get()
    }
}

/// Keep-alive connections to environment servers, reused across requests and kept on the event
/// loop of the browser connection that asked, so that forwarding does not hop threads. The fast
/// path's byte-level connections (``RawUpstreamConnection``) and the router's HTTP ones are kept
/// apart.
final class UpstreamPool: Sendable {
    private struct Key: Hashable {
        var address: UpstreamAddress
        var loop: ObjectIdentifier
        var raw: Bool
    }

    private struct Idle {
        var connection: any PooledUpstream
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
        let found = idleConnection(address, on: eventLoop)
        if let found { return (found, true) }
        return (try await connect(address, on: eventLoop).get(), false)
    }

    /// An idle connection to `address` on `eventLoop`, if one is ready now.
    func idleConnection(_ address: UpstreamAddress, on eventLoop: any EventLoop) -> UpstreamConnection? {
        takeIdle(Key(address: address, loop: ObjectIdentifier(eventLoop), raw: false)) as? UpstreamConnection
    }

    /// An idle fast-path connection to `address` on `eventLoop`, if one is ready now.
    func idleRawConnection(_ address: UpstreamAddress, on eventLoop: any EventLoop) -> RawUpstreamConnection? {
        takeIdle(Key(address: address, loop: ObjectIdentifier(eventLoop), raw: true)) as? RawUpstreamConnection
    }

    private func takeIdle(_ key: Key) -> (any PooledUpstream)? {
        let now = ContinuousClock.now
        var stale = [any PooledUpstream]()
        let found: (any PooledUpstream)? = idle.withLock { table in
            while let candidate = table[key]?.popLast() {
                if candidate.connection.channel.isActive, now - candidate.since < idleLifetime { return candidate.connection }
                stale.append(candidate.connection)
            }
            return nil
        }
        for connection in stale { connection.channel.close(promise: nil) }
        return found
    }

    /// A new connection to `address` on `eventLoop`, returned to the pool after each response.
    func connect(_ address: UpstreamAddress, on eventLoop: any EventLoop) -> EventLoopFuture<UpstreamConnection> {
        UpstreamConnection.connect(to: address, on: eventLoop, timeout: connectTimeout) { [weak self] connection, reusable in
            guard reusable, let self else { return connection.channel.close(promise: nil) }
            self.release(connection, raw: false)
        }
    }

    /// A new fast-path connection to `address` on `eventLoop`, returned to the pool after each response.
    func connectRaw(_ address: UpstreamAddress, on eventLoop: any EventLoop) -> EventLoopFuture<RawUpstreamConnection> {
        RawUpstreamConnection.connect(to: address, on: eventLoop, timeout: connectTimeout) { [weak self] connection, reusable in
            guard reusable, let self else { return connection.channel.close(promise: nil) }
            self.release(connection, raw: true)
        }
    }

    private func release(_ connection: any PooledUpstream, raw: Bool) {
        let key = Key(address: connection.address, loop: ObjectIdentifier(connection.channel.eventLoop), raw: raw)
        let kept = idle.withLock { table in
            guard table[key, default: []].count < maxIdlePerServer else { return false }
            table[key, default: []].append(Idle(connection: connection, since: .now))
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
        for entry in closing { entry.connection.channel.close(promise: nil) }
    }

    /// Closes every idle connection (shutdown).
    func closeAll() {
        let closing = idle.withLock { table in
            defer { table.removeAll() }
            return table.values.flatMap { $0 }
        }
        for entry in closing { entry.connection.channel.close(promise: nil) }
    }
}
