import NIOCore

/// The proxy's fast path, first in every browser connection's pipeline, in front of NIO's HTTP/1
/// parser. A body-less HTTP/1.1 request under `/user/` whose session and route are already in memory
/// is read from the bytes, its head rewritten line by line, and sent on a pooled byte-level
/// connection on the same event loop; the response head is rewritten the same way and its body
/// passed on unchanged (``RawUpstreamHandler``). No HTTP message types, no Swift task and no thread
/// hop per request, as in nginx.
///
/// Every other request — a session or route not cached yet, a refusal, a body, an upgrade, any other
/// path, anything the strict byte reader does not accept — is handed to NIO's parser exactly as the
/// browser sent it, and the router answers it with the same rules (``EnvironmentProxy``, which also
/// fills the caches read here). Request boundaries are followed through the bodies handed over, so
/// the next request is read from the right byte; after an upgrade or an unreadable request, the
/// rest of the connection goes to NIO. Responses stay in request order: a request is taken here
/// only when the router owes no response (``RouterResponseObserver`` says when it has answered).
final class RawProxyHandler: ChannelDuplexHandler, RemovableChannelHandler, RawUpstreamSink {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    private enum Mode {
        /// At the start of a request.
        case requests
        /// The rest of a request handed to the router: a body of this many bytes, or chunks.
        case handingBody(remaining: Int)
        case handingChunks(ChunkedScanner)
        /// Everything goes to NIO from here on.
        case passthrough
    }

    /// One request forwarded here (a class: it is updated in place as the exchange goes on).
    private final class Exchange {
        /// The browser's head as it came, for the router if the server cannot be reached.
        var request = ByteBuffer()
        let upstreamRequest: ByteBuffer
        let address: UpstreamAddress
        let isHEAD: Bool
        let keepAlive: Bool
        var connection: RawUpstreamConnection?
        var responseStarted = false
        var freshConnections = 0

        init(upstreamRequest: ByteBuffer, address: UpstreamAddress, isHEAD: Bool, keepAlive: Bool) {
            self.upstreamRequest = upstreamRequest
            self.address = address
            self.isHEAD = isHEAD
            self.keepAlive = keepAlive
        }
    }

    private let proxy: EnvironmentProxy
    private var context: ChannelHandlerContext?
    private var allocator = ByteBufferAllocator()
    private var mode = Mode.requests
    /// Bytes read from the browser and not dispatched yet.
    private var pending: ByteBuffer?
    /// Requests handed to the router whose responses have not ended.
    private var routerOutstanding = 0
    private var exchange: Exchange?
    /// The upstream connection of the last exchange, kept for the next request to the same server
    /// (most of a browser connection's requests go to one environment): the pool is the fallback.
    private var kept: RawUpstreamConnection?
    private var readPending = false
    /// Between `channelRead` and `channelReadComplete`.
    private var reading = false
    /// Bytes went to NIO's parser since the last `channelReadComplete`.
    private var handedThisRead = false
    /// The connection ends after the current exchange (a quiesce, or the browser closed its side).
    private var closeAfterExchange = false
    /// The session and route of this connection's last forwarded request (the next one is most
    /// likely the same student's, to the same environment): see ``session(_:)`` and ``route(_:)``.
    private var lastSession: (token: [UInt8], entry: SessionCache.Entry)?
    private var lastRoute: (prefix: [UInt8], version: Int, route: ProxyRoute)?
    /// Who the browser is, read once per connection: its address, whether it is a trusted proxy,
    /// and the scheme it used when that does not depend on what a trusted proxy says.
    private lazy var client: ProxyHeaders.Client = {
        let address = self.context?.channel.remoteAddress?.ipAddress
        return ProxyHeaders.Client(address: address, trusted: proxy.resolver.isTrusted(address), scheme: proxy.scheme(forwardedProto: nil, peer: address))
    }()
    /// Settings read on every request, copied out of ``EnvironmentProxy`` once.
    private let cookieName: String
    private let scope: SessionCache.Scope
    private let separateOrigin: Bool

    init(proxy: EnvironmentProxy) {
        self.proxy = proxy
        self.cookieName = proxy.cookieName
        self.scope = proxy.scope
        self.separateOrigin = proxy.environmentsURL != nil
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.allocator = context.channel.allocator
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        if let connection = kept {
            kept = nil
            proxy.pool.checkIn(connection)
        }
    }

    // MARK: Browser → portal

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .passthrough = mode, pending == nil {
            handedThisRead = true
            context.fireChannelRead(data)
            return
        }
        reading = true
        var bytes = unwrapInboundIn(data)
        if var earlier = pending {
            pending = nil  // one owner, so appending does not copy the storage
            earlier.writeBuffer(&bytes)
            pending = earlier
        } else {
            pending = bytes
        }
        dispatch(context: context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        reading = false
        // NIO's handlers behind this one only need it after bytes were handed to them.
        if handedThisRead {
            handedThisRead = false
            context.fireChannelReadComplete()
        }
        // After an upgrade (a WebSocket spliced byte for byte) or an unreadable request, the rest of
        // the connection is NIO's: step out of its way.
        if case .passthrough = mode, pending == nil, exchange == nil {
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }

    /// Takes the pending bytes as far as they go: forwards a request, hands bytes to NIO, or waits.
    private func dispatch(context: ChannelHandlerContext) {
        var handed = false
        defer { if handed, !reading { context.fireChannelReadComplete() } }
        while var bytes = pending, bytes.readableBytes > 0 {
            switch mode {
            case .passthrough:
                pending = nil
                hand(bytes, context: context, handed: &handed)
                return
            case .handingBody(let remaining):
                let count = min(remaining, bytes.readableBytes)
                hand(bytes.take(count), context: context, handed: &handed)
                mode = count == remaining ? .requests : .handingBody(remaining: remaining - count)
            case .handingChunks(var scanner):
                switch bytes.withUnsafeReadableBytes({ scanner.scan($0) }) {
                case .more:
                    hand(bytes.take(bytes.readableBytes), context: context, handed: &handed)
                    mode = .handingChunks(scanner)
                case .end(let count):
                    hand(bytes.take(count), context: context, handed: &handed)
                    mode = .requests
                case .invalid:
                    mode = .passthrough  // NIO's parser will say what is wrong
                    continue
                }
            case .requests:
                guard exchange == nil, routerOutstanding == 0 else { return }
                switch start(&bytes, context: context) {
                case .wait: return
                case .forwarded: break
                case .handed(let head, let next):
                    routerOutstanding += 1
                    hand(head, context: context, handed: &handed)
                    mode = next
                }
            }
            pending = bytes.readableBytes > 0 ? bytes : nil
        }
        pending = nil
    }

    private func hand(_ bytes: ByteBuffer, context: ChannelHandlerContext, handed: inout Bool) {
        context.fireChannelRead(wrapInboundOut(bytes))
        handed = true
        handedThisRead = handedThisRead || reading
    }

    private enum Start {
        /// The head is not complete yet.
        case wait
        /// Sent upstream; the exchange runs.
        case forwarded
        /// For the router: the head, and what follows it.
        case handed(ByteBuffer, Mode)
    }

    /// Reads the head at the start of `bytes` and forwards it, or says what goes to the router.
    private func start(_ bytes: inout ByteBuffer, context: ChannelHandlerContext) -> Start {
        let decision = bytes.withUnsafeReadableBytes { raw -> (Int, Mode, Exchange?)? in
            switch RawHTTP.parseHead(raw) {
            case .incomplete:
                return nil
            case .invalid:
                return (0, .passthrough, nil)
            case .complete(let head):
                guard let request = RawRequest(raw, head) else { return (0, .passthrough, nil) }
                if request.framed.upgrade { return (0, .passthrough, nil) }  // NIO's upgrader splices it
                let exchange = self.exchange(for: request, raw, context: context)
                switch request.framed.framing {
                case .length(let count): return (head.length, .handingBody(remaining: count), exchange)
                case .chunked: return (head.length, .handingChunks(ChunkedScanner()), exchange)
                case .none, .untilClose: return (head.length, .requests, exchange)
                }
            }
        }
        guard let (length, next, found) = decision else { return .wait }
        guard length > 0 else {
            mode = .passthrough
            return .forwarded  // the loop hands everything over
        }
        let head = bytes.take(length)
        guard let found else { return .handed(head, next) }
        found.request = head
        exchange = found
        if let connection = kept, connection.address == found.address, connection.channel.isActive, connection.handlerOnLoop.isIdle {
            begin(on: connection)
        } else if let connection = proxy.pool.idleConnection(RawUpstreamConnection.self, to: found.address, on: context.eventLoop) {
            begin(on: connection)
        } else {
            connect(context: context)
        }
        return .forwarded
    }

    /// The exchange for a request the fast path takes, or `nil` to leave it to the router.
    private func exchange(for request: RawRequest, _ raw: UnsafeRawBufferPointer, context: ChannelHandlerContext) -> Exchange? {
        guard request.http11, request.framed.framing == .none, request.targetHasPrefix(raw, "/user/") else { return nil }
        if separateOrigin {
            let onEnvironmentOrigin = proxy.isEnvironmentOrigin(
                authority: request.value(raw, of: .host), forwardedHost: request.value(raw, of: .forwardedInfo, named: "x-forwarded-host"),
                peer: client.address
            )
            guard onEnvironmentOrigin else { return nil }
        }
        guard let token = request.cookie(raw, named: cookieName), let session = session(UnsafeRawBufferPointer(rebasing: raw[token])),
            let route = route(UnsafeRawBufferPointer(rebasing: raw[request.target])), route.isServing, route.userID == session.userID,
            let address = route.upstream
        else { return nil }
        route.touch()
        var client = self.client
        if client.trusted {
            client.scheme = proxy.scheme(forwardedProto: request.value(raw, of: .forwardedInfo, named: "x-forwarded-proto"), peer: client.address)
        }
        let upstreamRequest = request.upstreamHead(
            raw, client: client, authorization: route.authorization, dropCookies: EnvironmentProxy.portalCookies, allocator: allocator
        )
        return Exchange(
            upstreamRequest: upstreamRequest, address: address, isHEAD: request.isHEAD(raw), keepAlive: request.isKeepAlive
        )
    }

    /// The session of a cookie token if it is cached: the one this connection's last request had
    /// while it is fresh, else the shared cache's (which the router fills).
    private func session(_ token: UnsafeRawBufferPointer) -> SessionCache.Entry? {
        if let last = lastSession, last.token.withUnsafeBytes({ RawHTTP.same($0, token) }), last.entry.validUntil > .now { return last.entry }
        let found = proxy.sessions.cached(token: String(decoding: token, as: UTF8.self), scope: scope)
        lastSession = found.map { (Array(token), $0) }
        return found
    }

    /// The route for a request target: the one this connection's last request had while the route
    /// table has not changed, else the table's.
    private func route(_ target: UnsafeRawBufferPointer) -> ProxyRoute? {
        let version = proxy.routes.version  // before the lookup: a change after it makes the memo stale
        if let last = lastRoute, last.version == version, target.count >= last.prefix.count,
            last.prefix.withUnsafeBytes({ RawHTTP.same($0, UnsafeRawBufferPointer(rebasing: target[..<$0.count])) })
        {
            return last.route
        }
        let found = proxy.routes.route(forTarget: target)
        lastRoute = found.map { (Array($0.basePath.utf8), version, $0) }
        return found
    }

    private func connect(context: ChannelHandlerContext) {
        guard let current = exchange else { return }
        current.freshConnections += 1
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        proxy.pool.connect(RawUpstreamConnection.self, to: current.address, on: context.eventLoop).whenComplete { result in
            switch result {
            case .success(let connection): bound.value.begin(on: connection)
            case .failure(let error): bound.value.upstreamFailed(error, beforeResponse: true)
            }
        }
    }

    private func begin(on connection: RawUpstreamConnection) {
        guard let current = exchange else {
            connection.channel.close(promise: nil)  // the browser went away meanwhile
            return
        }
        current.connection = connection
        if let other = kept, other !== connection { proxy.pool.checkIn(other) }
        kept = nil
        connection.handlerOnLoop.send(current.upstreamRequest, isHEAD: current.isHEAD, browserKeepAlive: current.keepAlive && !closeAfterExchange, sink: self)
    }

    // MARK: Server → browser

    func upstreamWrite(_ buffer: ByteBuffer) -> Bool {
        guard let context else { return false }
        exchange?.responseStarted = true
        context.write(wrapOutboundOut(.byteBuffer(buffer)), promise: nil)
        return context.channel.isWritable
    }

    func upstreamReadComplete() {
        context?.flush()
    }

    func upstreamEnd(closing: Bool, reusable: Bool) -> Bool {
        guard let context, let current = exchange else { return false }
        exchange = nil
        if closing || closeAfterExchange {
            closeAfterFlush(context: context)
            return false
        }
        kept = reusable ? current.connection : nil
        context.flush()
        resume(context: context)
        return reusable
    }

    func upstreamFailed(_ error: any Error, beforeResponse: Bool) {
        guard let context, let current = exchange else { return }
        current.connection?.channel.close(promise: nil)
        guard beforeResponse, !current.responseStarted else {
            exchange = nil
            context.close(promise: nil)  // the response was cut short; the browser must see that
            return
        }
        if current.freshConnections < 1 {
            connect(context: context)  // a kept-alive connection the server had closed: once more, fresh
            return
        }
        // The router answers it (it tries once more and shows the right page).
        exchange = nil
        routerOutstanding += 1
        context.fireChannelRead(wrapInboundOut(current.request))
        if reading { handedThisRead = true } else { context.fireChannelReadComplete() }
        resume(context: context)
    }

    /// Writes out what is queued, then closes.
    private func closeAfterFlush(context: ChannelHandlerContext) {
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.byteBuffer(ByteBuffer())), promise: written)
        written.futureResult.whenComplete { _ in context.close(promise: nil) }
    }

    // MARK: Flow

    /// The router has written the end of a response.
    func routerResponseEnded() {
        routerOutstanding = max(0, routerOutstanding - 1)
        if routerOutstanding == 0, let context { resume(context: context) }
    }

    /// Goes on with the requests that waited, then reads again if a read was held back.
    private func resume(context: ChannelHandlerContext) {
        if pending != nil { dispatch(context: context) }
        if readPending, !isHolding {
            readPending = false
            context.read()
        }
    }

    /// Bytes are waiting for an exchange or the router: read no more until they are taken.
    private var isHolding: Bool {
        guard pending != nil, case .requests = mode else { return false }
        return exchange != nil || routerOutstanding > 0
    }

    func read(context: ChannelHandlerContext) {
        if isHolding { readPending = true } else { context.read() }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { exchange?.connection?.handlerOnLoop.resume() }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        let ours: Bool
        if case .requests = mode, routerOutstanding == 0 { ours = true } else { ours = false }
        switch event {
        case is ChannelShouldQuiesceEvent where ours:
            // Hummingbird's handler would close at once: it does not see this handler's exchanges.
            if exchange == nil { context.close(promise: nil) } else { closeAfterExchange = true }
        case ChannelEvent.inputClosed where ours && exchange != nil:
            closeAfterExchange = true
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let current = exchange {
            exchange = nil
            current.connection?.channel.close(promise: nil)  // mid-exchange: not reusable
        }
        pending = nil
        context.fireChannelInactive()
    }
}

extension ByteBuffer {
    /// The next `count` readable bytes (at most what there is), moving the reader index past them.
    fileprivate mutating func take(_ count: Int) -> ByteBuffer {
        readSlice(length: Swift.min(count, readableBytes)) ?? ByteBuffer()
    }
}
