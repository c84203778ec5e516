import NIOCore
import NIOHTTP1

/// A response body arriving from an environment's server. The connection reads from its socket
/// only while the consumer (the browser's connection) keeps up, so large downloads are never
/// buffered, and a server that dies mid-body ends the sequence with an error, not a clean end.
typealias UpstreamBody = NIOThrowingAsyncSequenceProducer<
    ByteBuffer, any Error, NIOAsyncSequenceProducerBackPressureStrategies.HighLowWatermark, UpstreamHandler.Demand
>

/// The head of an upstream response and its body.
struct UpstreamResponse: Sendable {
    enum Body: Sendable {
        /// The whole body arrived with the head (small responses: no stream to set up).
        case complete(ByteBuffer)
        /// The rest of the body streams in.
        case stream(UpstreamBody)
    }

    var head: HTTPResponseHead
    var body: Body
}

/// Why an upstream exchange failed.
enum UpstreamError: Error, CustomStringConvertible {
    /// The connection closed before a response head arrived; safe to retry an idempotent request
    /// on a fresh connection when this one had been reused.
    case closedBeforeResponse
    /// The connection closed in the middle of a response body.
    case closedMidResponse
    /// A request was sent on a connection that is already busy (a bug).
    case busy
    /// The server answered a WebSocket upgrade with this status instead of 101.
    case refusedUpgrade(status: Int)

    var description: String {
        switch self {
        case .closedBeforeResponse: "the environment's server closed the connection before answering"
        case .closedMidResponse: "the environment's server closed the connection in the middle of its answer"
        case .busy: "an upstream connection was used for two requests at once"
        case .refusedUpgrade(let status): "the environment's server answered the WebSocket upgrade with \(status)"
        }
    }
}

/// The last handler of an upstream HTTP/1.1 connection: one exchange at a time, reading only on
/// demand (`autoRead` is off), and telling its ``UpstreamConnection`` when a response has ended
/// so the connection can go back to the pool.
final class UpstreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    /// The body consumer's demand, delivered on the connection's event loop.
    struct Demand: NIOAsyncSequenceProducerDelegate {
        let handler: NIOLoopBound<UpstreamHandler>
        /// Which exchange the body belongs to: a late signal about an earlier response must not
        /// touch the next one on the same connection.
        let exchange: Int

        func produceMore() {
            handler.eventLoop.execute { self.handler.value.demandResumed(self.exchange) }
        }

        func didTerminate() {
            handler.eventLoop.execute { self.handler.value.consumerFinished(self.exchange) }
        }
    }

    /// Bodies up to this size that arrive with their head are handed over whole.
    static let wholeBodyLimit = 64 * 1024

    private enum State {
        case idle
        case awaitingHead(EventLoopPromise<UpstreamResponse>)
        /// The head is here; body parts of the same read are collected before deciding to stream.
        case collecting(EventLoopPromise<UpstreamResponse>, HTTPResponseHead, ByteBuffer?)
        case streaming(UpstreamBody.Source, keepAlive: Bool)
        /// The body ended for the consumer but `didTerminate` may still arrive.
        case closed
    }

    private var state = State.idle
    private var context: ChannelHandlerContext?
    private var demand = true
    private var skippingInformational = false
    private var exchange = 0
    /// Called on the event loop when a response has been read to its end; `true` when the
    /// connection may carry another request.
    var onResponseEnd: ((Bool) -> Void)?

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        onResponseEnd = nil
    }

    /// Starts an exchange: writes `head` (and the end of the request when `end`), then reads.
    func send(_ head: HTTPRequestHead, end: Bool, promise: EventLoopPromise<UpstreamResponse>) {
        guard let context, case .idle = state else {
            promise.fail(context == nil ? UpstreamError.closedBeforeResponse : UpstreamError.busy)
            return
        }
        state = .awaitingHead(promise)
        exchange += 1
        demand = true
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if end { context.write(wrapOutboundOut(.end(nil)), promise: nil) }
        context.flush()
        context.read()
    }

    /// 100 Continue and friends: the real head follows (a 101 is the real answer to an upgrade).
    private static func isInformational(_ head: HTTPResponseHead) -> Bool {
        head.status.code >= 100 && head.status.code < 200 && head.status != .switchingProtocols
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch (part, state) {
        case (.head(let head), .awaitingHead(let promise)):
            if Self.isInformational(head) {
                skippingInformational = true
                return
            }
            state = .collecting(promise, head, nil)
        case (.body(var buffer), .collecting(let promise, let head, let collected)):
            if var collected {
                collected.writeBuffer(&buffer)
                buffer = collected
            }
            state = .collecting(promise, head, buffer)
            if buffer.readableBytes > Self.wholeBodyLimit { startStreaming(context: context) }
        case (.body(let buffer), .streaming(let source, _)):
            if source.yield(buffer) == .stopProducing { demand = false }
        case (.end, .awaitingHead) where skippingInformational:
            skippingInformational = false
        case (.end, .collecting(let promise, let head, let collected)):
            state = .idle
            promise.succeed(UpstreamResponse(head: head, body: .complete(collected ?? context.channel.allocator.buffer(capacity: 0))))
            onResponseEnd?(head.isKeepAlive && context.channel.isActive)
        case (.end, .streaming(let source, let keepAlive)):
            source.finish()
            state = .idle
            onResponseEnd?(keepAlive && context.channel.isActive)
        default:
            // Bytes from the server while no request is outstanding: the connection is unusable.
            fail(UpstreamError.closedBeforeResponse)
            context.close(promise: nil)
        }
    }

    /// The body goes on beyond what has arrived: hand the consumer a stream.
    private func startStreaming(context: ChannelHandlerContext) {
        guard case .collecting(let promise, let head, let collected) = state else { return }
        let producer = UpstreamBody.makeSequence(
            elementType: ByteBuffer.self,
            backPressureStrategy: .init(lowWatermark: 2, highWatermark: 8),
            finishOnDeinit: false,
            delegate: Demand(handler: NIOLoopBound(self, eventLoop: context.eventLoop), exchange: exchange)
        )
        state = .streaming(producer.source, keepAlive: head.isKeepAlive)
        if let collected, producer.source.yield(collected) == .stopProducing { demand = false }
        promise.succeed(UpstreamResponse(head: head, body: .stream(producer.sequence)))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if case .collecting = state { startStreaming(context: context) }
        switch state {
        case .awaitingHead: context.read()
        case .streaming where demand: context.read()
        case .idle: context.read()  // notice the server closing an idle keep-alive connection
        default: break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(nil)
        onResponseEnd = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(error)
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            fail(nil)
            context.close(promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func demandResumed(_ exchange: Int) {
        guard exchange == self.exchange else { return }
        demand = true
        if case .streaming = state { context?.read() }
    }

    /// The consumer stopped reading: fine after the end; in the middle of a body the rest can never
    /// be read, so the connection cannot be reused.
    private func consumerFinished(_ exchange: Int) {
        if exchange == self.exchange, case .streaming = state {
            state = .closed
            context?.close(promise: nil)
        }
    }

    private func fail(_ error: (any Error)?) {
        switch state {
        case .awaitingHead(let promise), .collecting(let promise, _, _):
            promise.fail(error ?? UpstreamError.closedBeforeResponse)
        case .streaming(let source, _):
            source.finish(error ?? UpstreamError.closedMidResponse)
        case .idle, .closed:
            break
        }
        state = .closed
    }
}
