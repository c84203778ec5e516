import NIOCore
import NIOHTTPTypes

/// Tells the connection's front handler when the router has written the end of a response, so the
/// browser's next request may be taken (and a connection that ends with it, ended). Sits right
/// after the HTTP codec.
final class RouterResponseObserver: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let connection: BrowserConnectionHandler

    init(connection: BrowserConnectionHandler) {
        self.connection = connection
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let isEnd: Bool
        if case .end = unwrapOutboundIn(data) { isEnd = true } else { isEnd = false }
        context.write(data, promise: promise)
        if isEnd { connection.routerResponseEnded() }
    }
}
