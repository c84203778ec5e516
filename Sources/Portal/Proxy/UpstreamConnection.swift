import NIOCore
import NIOHTTP1

/// The last handler of an upstream connection's pipeline, which says when each response has ended.
protocol UpstreamConnectionHandler: ChannelHandler {
    init()
    /// Runs on the event loop after each complete response, with whether the connection may carry
    /// another request. Set by ``PooledConnection``; cleared when the channel closes.
    var onResponseEnd: ((Bool) -> Void)? { get set }
    /// Adds what goes in front of this handler: an HTTP codec, or nothing for bytes.
    static func addCodec(to pipeline: ChannelPipeline.SynchronousOperations) throws
}

/// One keep-alive connection to an environment's server that ``UpstreamPool`` holds between
/// responses: through NIO's HTTP codec for the router (``UpstreamConnection``), or as bytes for the
/// fast path (``RawUpstreamConnection``).
final class PooledConnection<Handler: UpstreamConnectionHandler>: Sendable {
    let channel: any Channel
    let address: UpstreamAddress
    private let handler: NIOLoopBound<Handler>

    private init(channel: any Channel, address: UpstreamAddress, handler: NIOLoopBound<Handler>) {
        self.channel = channel
        self.address = address
        self.handler = handler
    }

    /// Connects on `eventLoop`; `onResponseEnd` runs after each complete response (on the loop).
    static func connect(
        to address: UpstreamAddress, on eventLoop: any EventLoop, timeout: TimeAmount,
        onResponseEnd: @escaping @Sendable (PooledConnection, Bool) -> Void
    ) -> EventLoopFuture<PooledConnection> {
        address.connect(on: eventLoop, timeout: timeout) { channel in
            channel.eventLoop.makeCompletedFuture {
                try Handler.addCodec(to: channel.pipeline.syncOperations)
                try channel.pipeline.syncOperations.addHandler(Handler())
            }
        }.flatMapThrowing { channel in
            channel.eventLoop.preconditionInEventLoop()
            // Reads happen only when a consumer wants them (back-pressure).
            try channel.syncOptions?.setOption(ChannelOptions.autoRead, value: false)
            let handler = try channel.pipeline.syncOperations.handler(type: Handler.self)
            let connection = PooledConnection(channel: channel, address: address, handler: NIOLoopBound(handler, eventLoop: channel.eventLoop))
            // A cycle while the channel is open, broken when it closes (the handler clears it).
            handler.onResponseEnd = { reusable in onResponseEnd(connection, reusable) }
            return connection
        }
    }

    /// The connection's handler (on the connection's event loop only).
    var handlerOnLoop: Handler { handler.value }
}

/// A connection of the router's path: HTTP messages, request bodies, streamed responses.
typealias UpstreamConnection = PooledConnection<UpstreamHandler>

/// A connection of the fast path: request heads and responses as bytes.
typealias RawUpstreamConnection = PooledConnection<RawUpstreamHandler>

extension UpstreamHandler: UpstreamConnectionHandler {
    static func addCodec(to pipeline: ChannelPipeline.SynchronousOperations) throws {
        try pipeline.addHTTPClientHandlers()
    }
}

extension RawUpstreamHandler: UpstreamConnectionHandler {
    static func addCodec(to pipeline: ChannelPipeline.SynchronousOperations) throws {}
}

extension PooledConnection where Handler == UpstreamHandler {
    /// Sends a request and waits for the response head. A request body is streamed from `body`,
    /// each part written once the previous one left, so a slow server slows the upload.
    func exchange<Body: AsyncSequence>(_ head: HTTPRequestHead, body: Body?) async throws -> UpstreamResponse where Body.Element == ByteBuffer {
        let promise = channel.eventLoop.makePromise(of: UpstreamResponse.self)
        channel.eventLoop.execute { self.handlerOnLoop.send(head, end: body == nil, promise: promise) }
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
