import Logging
import NIOCore

/// The first handler of every browser connection, in front of NIO's HTTP/1 parser. It reads each
/// request head from the bytes itself (``RawRequest``, strict), so that:
///
/// - a request that is malformed or over a limit is answered here (`400`, `414`, `431`) and the
///   connection closed, before any route sees it;
/// - every wait has a limit (``ConnectionDeadlines``): the head, a pause in the body, the idle
///   time between requests; a connection that ends while the browser may still be sending is read
///   out and closed (lingering), so no socket stays open, and shutdown closes every connection
///   within `http.drain_timeout`;
/// - request boundaries are followed through the bodies handed to NIO, so the next request is read
///   from the right byte, and responses stay in request order: a request is taken only when the
///   one before it has been answered (``RouterResponseObserver`` says when the router has);
/// - with environments, the proxy's fast path forwards a body-less request under `/user/` whose
///   session and route are already in memory straight from the bytes, on a pooled byte-level
///   connection on the same event loop (see the `+FastPath` extension): no HTTP message types, no
///   Swift task and no thread hop per request, as in nginx.
///
/// Everything else — the portal's pages, bodies, refusals, routes not cached yet — is handed to
/// NIO's parser exactly as the browser sent it, and the router answers it. A WebSocket upgrade (the
/// first request NIO sees on the connection) hands the rest of the connection to NIO's upgrader.
final class BrowserConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler, RawUpstreamSink {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    /// What the connection is told and how it is limited.
    struct Settings {
        var limits: RequestLimits
        var deadlines: ConnectionDeadlines.Settings
        var pages: Pages
        var securityHeaders: SecurityHeaders
    }

    let proxy: EnvironmentProxy
    let settings: Settings
    let logger: Logger
    var context: ChannelHandlerContext?
    var allocator = ByteBufferAllocator()
    /// Where the connection is in its stream of requests (the protocol's state; the rest here is I/O).
    var flow = RequestFlow()
    /// Bytes read from the browser and not dispatched yet.
    var pending: ByteBuffer?
    var exchange: Exchange?
    /// The upstream connection of the last exchange, kept for the next request to the same server
    /// (most of a browser connection's requests go to one environment): the pool is the fallback.
    var kept: RawUpstreamConnection?
    var readPending = false
    /// A read passed through to the socket and no bytes came yet (a body's pause is the browser's).
    var wantsRead = false
    /// Between `channelRead` and `channelReadComplete`.
    var reading = false
    /// Bytes went to NIO's parser since the last `channelReadComplete`.
    var handedThisRead = false
    var deadlines: ConnectionDeadlines
    /// Reads request heads from the pending bytes.
    var headReader: HeadReader
    var timer: Scheduled<Void>?
    var timerAt: NIODeadline?
    /// The session and route of this connection's last forwarded request (the next one is most
    /// likely the same student's, to the same environment): see ``session(_:)`` and ``route(_:)``.
    var lastSession: (token: [UInt8], entry: SessionCache.Entry)?
    var lastRoute: (prefix: [UInt8], version: Int, route: ProxyRoute)?
    /// Who the browser is, read once per connection: its address, whether it is a trusted proxy,
    /// and the scheme it used when that does not depend on what a trusted proxy says.
    lazy var client: ProxyHeaders.Client = {
        let address = self.context?.channel.remoteAddress?.ipAddress
        return ProxyHeaders.Client(address: address, trusted: proxy.resolver.isTrusted(address), scheme: proxy.scheme(forwardedProto: nil, peer: address))
    }()

    init(proxy: EnvironmentProxy, settings: Settings, logger: Logger) {
        self.proxy = proxy
        self.settings = settings
        self.logger = logger
        self.deadlines = ConnectionDeadlines(settings: settings.deadlines, now: .now())
        self.headReader = HeadReader(limits: settings.limits)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.allocator = context.channel.allocator
        settle(context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        timer?.cancel()
        timer = nil
        if let connection = kept {
            kept = nil
            proxy.pool.checkIn(connection)
        }
    }

    // MARK: Browser → portal

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        wantsRead = false
        if flow.ending {
            deadlines.received(now: .now())
            return  // read and dropped
        }
        if case .passthrough = flow.mode, pending == nil {
            handedThisRead = true
            context.fireChannelRead(data)
            return
        }
        reading = true
        deadlines.received(now: .now())
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
        if case .passthrough = flow.mode, pending == nil, !flow.ending, !flow.quiescing {
            context.fireChannelReadComplete()  // a spliced WebSocket: nothing to follow or limit
            return
        }
        reading = false
        // NIO's handlers behind this one only need it after bytes were handed to them.
        if handedThisRead {
            handedThisRead = false
            context.fireChannelReadComplete()
        }
        if flow.ending { context.read() }  // nobody behind asks any more: keep draining the socket
        settle(context: context)
    }

    /// Takes the pending bytes as far as they go, as ``RequestFlow`` says: hands bytes to NIO,
    /// reads a head and forwards or hands or refuses its request, or waits.
    func dispatch(context: ChannelHandlerContext) {
        var handed = false
        defer { if handed, !reading { context.fireChannelReadComplete() } }
        while var bytes = pending, bytes.readableBytes > 0 {
            switch bytes.withUnsafeReadableBytes({ flow.next($0) }) {
            case .hand(let count):
                hand(bytes.take(count), context: context, handed: &handed)
            case .readHead:
                guard start(&bytes, context: context, handed: &handed) else { return }  // incomplete, or refused
            case .hold:
                return
            case .invalidBody:
                // The router is reading this body: end the connection, it sees the body cut short.
                pending = nil
                logger.notice("request refused", metadata: ["reason": "malformed chunked body", "peer": "\(client.address ?? "-")"])
                close(context: context)
                return
            case .drop:
                pending = nil
                return
            }
            pending = bytes.readableBytes > 0 ? bytes : nil
        }
    }

    func hand(_ bytes: ByteBuffer, context: ChannelHandlerContext, handed: inout Bool) {
        context.fireChannelRead(wrapInboundOut(bytes))
        handed = true
        handedThisRead = handedThisRead || reading
    }

    /// What the head at the start of the pending bytes is.
    private enum Decision {
        case wait
        case refused(RequestProblem)
        case upgrade
        case request(length: Int, framing: RawHTTP.Framing, keepAlive: Bool, exchange: Exchange?)
    }

    /// Reads the head at the start of `bytes` and forwards, hands or refuses its request; `false`
    /// when nothing more can be done with the bytes now (the head is incomplete, or refused).
    private func start(_ bytes: inout ByteBuffer, context: ChannelHandlerContext, handed: inout Bool) -> Bool {
        let decision = bytes.withUnsafeReadableBytes { raw -> Decision in
            switch headReader.read(raw) {
            case nil:
                return .wait
            case .failure(let problem):
                return .refused(problem)
            case .success(let (head, request)):
                let upgrade = request.framed.upgrade
                if upgrade, !flow.handedToNIO, request.isWebSocketUpgrade(raw) { return .upgrade }
                // Any other upgrade is an ordinary request, answered, and then the connection closes.
                let keepAlive = request.isKeepAlive && !upgrade
                return .request(length: head.length, framing: request.framed.framing, keepAlive: keepAlive, exchange: exchange(for: request, raw, context: context))
            }
        }
        switch decision {
        case .wait:
            flow.waitForHead()
            return false
        case .refused(let problem):
            let request = bytes
            pending = nil
            refuse(problem, request: request, context: context)
            return false
        case .upgrade:
            flow.upgraded()
            return true  // the flow hands everything over
        case .request(let length, let framing, let keepAlive, let found):
            let head = bytes.take(length)
            guard let found else {
                flow.handed(framing: framing, keepAlive: keepAlive)
                hand(head, context: context, handed: &handed)
                return true
            }
            found.request = head
            flow.forwarded(keepAlive: keepAlive)
            startExchange(found, context: context)
            return true
        }
    }

    // MARK: Flow

    /// The router has written the end of a response.
    func routerResponseEnded() {
        guard let context else { return }
        switch flow.routerResponseEnded() {
        case .finish: endOutput(context: context)
        case .resume: resume(context: context)
        case .close, .passOn, .later: break
        }
    }

    /// Goes on with the requests that waited, then reads again if a read was held back.
    func resume(context: ChannelHandlerContext) {
        if pending != nil { dispatch(context: context) }
        if readPending, !flow.holds(pending: pending != nil) {
            readPending = false
            wantsRead = true
            context.read()
        }
        settle(context: context)
    }

    func read(context: ChannelHandlerContext) {
        if flow.holds(pending: pending != nil) {
            readPending = true
            return
        }
        let waitedAlready = wantsRead
        wantsRead = true
        context.read()
        if !waitedAlready, flow.isReadingBody { settle(context: context) }  // a body's pause starts now
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
        pending = nil
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }
}

extension ByteBuffer {
    /// The next `count` readable bytes (at most what there is), moving the reader index past them.
    mutating func take(_ count: Int) -> ByteBuffer {
        readSlice(length: Swift.min(count, readableBytes)) ?? ByteBuffer()
    }
}
