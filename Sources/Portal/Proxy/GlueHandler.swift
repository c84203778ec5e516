import NIOCore

/// Joins two channels on one event loop byte for byte (a spliced WebSocket): what one reads the
/// other writes, a half-close crosses over, and a side reads only while the other can write, so a
/// slow peer slows the fast one instead of filling memory.
final class GlueHandler: ChannelDuplexHandler {
    typealias InboundIn = NIOAny
    typealias OutboundIn = NIOAny
    typealias OutboundOut = NIOAny

    private var partner: GlueHandler?
    private var context: ChannelHandlerContext?
    private var pendingRead = false
    private let onTraffic: @Sendable () -> Void

    private init(onTraffic: @escaping @Sendable () -> Void) {
        self.onTraffic = onTraffic
    }

    /// Two handlers that forward to each other; add one to each channel.
    static func pair(onTraffic: @escaping @Sendable () -> Void) -> (GlueHandler, GlueHandler) {
        let first = GlueHandler(onTraffic: onTraffic)
        let second = GlueHandler(onTraffic: onTraffic)
        first.partner = second
        second.partner = first
        return (first, second)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        partner?.context?.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        onTraffic()
        partner?.context?.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner?.context?.close(promise: nil)
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            partner?.context?.close(mode: .output, promise: nil)
        }
        if event is ChannelShouldQuiesceEvent {
            // The portal is shutting down: a WebSocket would keep it waiting for as long as the tab
            // stays open. Close it; Jupyter's client reconnects (to the next portal) by itself.
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        partner?.context?.close(promise: nil)
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, let partner, partner.pendingRead {
            partner.pendingRead = false
            partner.context?.read()
        }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if partner?.context?.channel.isWritable ?? false {
            context.read()
        } else {
            pendingRead = true
        }
    }
}

/// Holds what the environment's server sends between its `101 Switching Protocols` and the splice
/// (a server may speak first, and NIO forwards bytes that came with the 101), reading nothing more
/// meanwhile; removed once the ``GlueHandler`` is behind it, it passes on what it held.
final class SpliceBuffer: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    typealias OutboundIn = NIOAny

    static let name = "portal-splice-buffer"
    private var held: [NIOAny] = []
    private var closed = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        held.append(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {}

    func read(context: ChannelHandlerContext) {}  // until spliced, nobody takes the bytes

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
    }

    func removeHandler(context: ChannelHandlerContext, removalToken: ChannelHandlerContext.RemovalToken) {
        for data in held { context.fireChannelRead(data) }
        if !held.isEmpty { context.fireChannelReadComplete() }
        held = []
        if closed { context.fireChannelInactive() }
        context.read()  // the read held back, now that the splice takes the bytes
        context.leavePipeline(removalToken: removalToken)
    }
}
