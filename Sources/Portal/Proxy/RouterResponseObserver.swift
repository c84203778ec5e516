import NIOCore
import NIOHTTPTypes

/// Tells the fast path when the router has written the end of a response, so the browser's next
/// request may be taken there. Sits right after the HTTP codec.
final class RouterResponseObserver: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let fastPath: RawProxyHandler

    init(fastPath: RawProxyHandler) {
        self.fastPath = fastPath
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let isEnd: Bool
        if case .end = unwrapOutboundIn(data) { isEnd = true } else { isEnd = false }
        context.write(data, promise: promise)
        if isEnd { fastPath.routerResponseEnded() }
    }
}
