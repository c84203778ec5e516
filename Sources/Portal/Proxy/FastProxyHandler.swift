import NIOCore
import NIOHTTP1

/// The proxy's fast path. A body-less request under `/user/` whose session and route are already
/// in memory is forwarded here, on the browser connection's event loop, to a pooled upstream
/// connection on the same loop: no Swift task and no thread hop per request, as in nginx.
/// Everything else — a session or route not cached yet, a refusal, a request with a body, an
/// upgrade, any other path — goes on to the router unchanged, where ``EnvironmentProxy`` applies the
/// same rules (and fills the caches this path reads).
///
/// Sits between NIO's HTTP/1 codec and Hummingbird's; responses stay in request order: a request is
/// taken here only when the router has nothing outstanding, and requests that arrive during an
/// exchange wait for it.
final class FastProxyHandler: ChannelDuplexHandler, RemovableChannelHandler, UpstreamSink {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private struct Exchange {
        var head: HTTPRequestHead
        var upstreamHead: HTTPRequestHead
        var address: UpstreamAddress
        var connection: UpstreamConnection?
        var requestEnded = false
        var responseStarted = false
        var attempts = 0
    }

    private let proxy: EnvironmentProxy
    private var context: ChannelHandlerContext?
    /// Whether the current request's remaining parts belong to the router.
    private var passing = false
    /// Requests handed to the router whose responses have not ended.
    private var routerOutstanding = 0
    private var exchange: Exchange?
    /// Parts of later requests that arrived during an exchange.
    private var queued: [HTTPServerRequestPart] = []
    private var readPending = false
    /// The exchange ended before the browser's request did: its remaining parts are dropped.
    private var discardingRequest = false

    init(proxy: EnvironmentProxy) {
        self.proxy = proxy
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    // MARK: Browser → portal

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        process(unwrapInboundIn(data), context: context)
    }

    private func process(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        if discardingRequest {
            if case .end = part { discardingRequest = false }
            return
        }
        if passing {
            context.fireChannelRead(wrapInboundOut(part))
            if case .end = part { passing = false }
            return
        }
        if var current = exchange, !current.requestEnded {
            if case .end = part { current.requestEnded = true }
            exchange = current
            return  // body-less: nothing to forward
        }
        if exchange != nil || !queued.isEmpty {
            queued.append(part)
            return
        }
        guard case .head(let head) = part, routerOutstanding == 0, let (route, address) = fastRoute(head, context: context) else {
            if case .head = part {
                routerOutstanding += 1
                passing = true
            }
            context.fireChannelRead(wrapInboundOut(part))
            return
        }
        route.touch()
        let peer = context.channel.remoteAddress?.ipAddress
        let client = ProxyHeaders.Client(
            address: peer, trusted: proxy.resolver.isTrusted(peer), scheme: proxy.scheme(forwardedProto: head.headers["x-forwarded-proto"].first, peer: peer)
        )
        let upstreamHead = ProxyHeaders.request(
            method: head.method.rawValue, target: head.uri, authority: head.headers["host"].first,
            headers: head.headers.lazy.filter { $0.name.lowercased() != "host" }, client: client, authorization: route.authorization,
            dropCookies: EnvironmentProxy.portalCookies
        )
        exchange = Exchange(head: head, upstreamHead: upstreamHead, address: address)
        if let connection = proxy.pool.idleConnection(address, on: context.eventLoop) {
            begin(on: connection, reused: true)
        } else {
            connect(context: context)
        }
    }

    /// The route to forward `head` to here, or `nil` to leave the request to the router.
    private func fastRoute(_ head: HTTPRequestHead, context: ChannelHandlerContext) -> (ProxyRoute, UpstreamAddress)? {
        guard head.uri.hasPrefix("/user/"), !head.headers.contains(name: "upgrade"), !head.headers.contains(name: "transfer-encoding"),
            head.headers["content-length"].allSatisfy({ $0 == "0" })
        else { return nil }
        if proxy.environmentsURL != nil {
            let onEnvironmentOrigin = proxy.isEnvironmentOrigin(
                authority: head.headers["host"].first, forwardedHost: head.headers["x-forwarded-host"].first,
                peer: context.channel.remoteAddress?.ipAddress
            )
            guard onEnvironmentOrigin else { return nil }
        }
        guard let token = head.headers["cookie"].lazy.compactMap({ CookieHeader.value(named: self.proxy.cookieName, in: $0) }).first,
            let session = proxy.sessions.cached(token: token, scope: proxy.scope),
            let route = proxy.routes.route(forPath: Substring(head.uri)), route.isServing, route.userID == session.userID,
            let address = route.upstream
        else { return nil }
        return (route, address)
    }

    private func connect(context: ChannelHandlerContext) {
        guard let address = exchange?.address else { return }
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        proxy.pool.connect(address, on: context.eventLoop).whenComplete { result in
            switch result {
            case .success(let connection): bound.value.begin(on: connection, reused: false)
            case .failure(let error): bound.value.upstreamFailed(error, beforeHead: true)
            }
        }
    }

    private func begin(on connection: UpstreamConnection, reused: Bool) {
        guard var current = exchange else {
            connection.channel.close(promise: nil)  // the browser went away meanwhile
            return
        }
        current.connection = connection
        current.attempts += reused ? 0 : 1
        exchange = current
        connection.handlerOnLoop.send(current.upstreamHead, end: true, sink: self)
    }

    // MARK: Server → browser

    func upstreamHead(_ head: HTTPResponseHead) {
        guard let context, var current = exchange else { return }
        current.responseStarted = true
        exchange = current
        var response = HTTPResponseHead(version: current.head.version, status: head.status, headers: ProxyHeaders.responseHeaders(head.headers))
        if !current.head.isKeepAlive { response.headers.replaceOrAdd(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(response)), promise: nil)
    }

    func upstreamBody(_ buffer: ByteBuffer) -> Bool {
        guard let context else { return false }
        context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        return context.channel.isWritable
    }

    func upstreamReadComplete() {
        context?.flush()
    }

    func upstreamEnd() {
        guard let context, let current = exchange else { return }
        exchange = nil
        discardingRequest = !current.requestEnded
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        if !current.head.isKeepAlive {
            context.close(promise: nil)
            return
        }
        resumeQueued(context: context)
    }

    func upstreamFailed(_ error: any Error, beforeHead: Bool) {
        guard let context, let current = exchange else { return }
        if beforeHead, !current.responseStarted {
            if current.attempts < 1 {
                connect(context: context)  // a kept-alive connection the server had closed: once more, fresh
                return
            }
            // Let the router answer (it tries once more and shows the right page).
            exchange = nil
            routerOutstanding += 1
            context.fireChannelRead(wrapInboundOut(.head(current.head)))
            if current.requestEnded {
                context.fireChannelRead(wrapInboundOut(.end(nil)))
            } else {
                passing = true
            }
            context.fireChannelReadComplete()
            resumeQueued(context: context)
            return
        }
        exchange = nil
        context.close(promise: nil)  // the response was cut short; the browser must see that
    }

    // MARK: Flow

    private func resumeQueued(context: ChannelHandlerContext) {
        while exchange == nil, !queued.isEmpty {
            process(queued.removeFirst(), context: context)
        }
        if queued.isEmpty, readPending {
            readPending = false
            context.read()
        }
    }

    func read(context: ChannelHandlerContext) {
        if queued.isEmpty { context.read() } else { readPending = true }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        context.write(data, promise: promise)
        if case .end = unwrapOutboundIn(data) {
            routerOutstanding -= 1
            if routerOutstanding == 0, exchange == nil, !queued.isEmpty { resumeQueued(context: context) }
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { exchange?.connection?.handlerOnLoop.resume() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let current = exchange {
            exchange = nil
            current.connection?.channel.close(promise: nil)  // mid-exchange: not reusable
        }
        context.fireChannelInactive()
    }
}
