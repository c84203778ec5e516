import Hummingbird
import Logging
import NIOCore

/// The proxy's fast path: a body-less HTTP/1.1 request under `/user/` whose session and route are
/// already in memory is forwarded from the bytes, its head rewritten line by line, on a pooled
/// byte-level connection on the same event loop; the response head is rewritten the same way and
/// its body passed on unchanged (``RawUpstreamHandler``). Anything it does not take — a session or
/// route not cached yet, a refusal, a request from another origin — the router answers with the
/// same rules (``EnvironmentProxy``, which also fills the caches read here).
extension BrowserConnectionHandler {
    /// One request forwarded here (a class: it is updated in place as the exchange goes on).
    final class Exchange {
        /// The browser's head as it came, for the router if the server cannot be reached.
        var request = ByteBuffer()
        let upstreamRequest: ByteBuffer
        let address: UpstreamAddress
        let isHEAD: Bool
        let keepAlive: Bool
        var connection: RawUpstreamConnection?
        var responseStarted = false
        var freshConnections = 0
        /// For the response's `X-Request-Id` and the access log.
        let requestID = RequestID().description
        /// What the access log says of it, when it is written at all.
        let logged: (method: String, target: Substring, start: NIODeadline)?
        var status = 0

        init(upstreamRequest: ByteBuffer, address: UpstreamAddress, isHEAD: Bool, keepAlive: Bool, logged: (method: String, target: Substring, start: NIODeadline)?) {
            self.upstreamRequest = upstreamRequest
            self.address = address
            self.isHEAD = isHEAD
            self.keepAlive = keepAlive
            self.logged = logged
        }
    }

    /// The exchange for a request the fast path takes, or `nil` to leave it to the router.
    func exchange(for request: RawRequest, _ raw: UnsafeRawBufferPointer, context: ChannelHandlerContext) -> Exchange? {
        guard request.http11, request.framed.framing == .none, request.targetHasPrefix(raw, "/user/") else { return nil }
        let forwardedHost = client.trusted ? request.value(raw, of: .forwardedInfo, named: "x-forwarded-host") : nil
        let forwardedProto = client.trusted ? request.value(raw, of: .forwardedInfo, named: "x-forwarded-proto") : nil
        if proxy.environmentsURL != nil {
            guard proxy.isEnvironmentOrigin(authority: request.value(raw, of: .host), forwardedHost: forwardedHost, peer: client.address) else { return nil }
        }
        let method = UnsafeRawBufferPointer(rebasing: raw[request.method])
        var originAllowed = true
        if !OriginPolicy.isSafe(method: method) {
            let origin = OriginPolicy.Claims(origin: request.value(raw, of: .other, named: "origin"), fetchSite: request.value(raw, of: .other, named: "sec-fetch-site"))
            originAllowed = OriginPolicy.allows(origin, expected: proxy.expectedOrigin(forwardedProto: forwardedProto, forwardedHost: forwardedHost, peer: client.address))
        }
        let cached = request.cookie(raw, named: proxy.cookieName).flatMap { self.session(UnsafeRawBufferPointer(rebasing: raw[$0])) }
        let target = UnsafeRawBufferPointer(rebasing: raw[request.target])
        // Only what the decision allows with what is in memory; any refusal is the router's to make
        // again with fresh lookups, and to answer.
        guard cached != nil, case .allow(let route, let address) = ProxyAccess.decide(
            originAllowed: originAllowed, session: cached, route: self.route(target), pathOwner: nil
        ) else { return nil }
        route.touch()
        var client = self.client
        if client.trusted {
            client.scheme = proxy.scheme(forwardedProto: forwardedProto, peer: client.address)
        }
        let upstreamRequest = request.upstreamHead(
            raw, client: client, authorization: route.authorization, dropCookies: EnvironmentProxy.portalCookies, allocator: allocator
        )
        let logged = logger.logLevel <= .info
            ? (String(decoding: method, as: UTF8.self), Substring(String(decoding: target, as: UTF8.self)), NIODeadline.now()) : nil
        return Exchange(upstreamRequest: upstreamRequest, address: address, isHEAD: request.isHEAD(raw), keepAlive: request.isKeepAlive, logged: logged)
    }

    /// The session of a cookie token if it is cached: the one this connection's last request had
    /// while it is fresh, else the shared cache's (which the router fills).
    private func session(_ token: UnsafeRawBufferPointer) -> SessionCache.Entry? {
        if let last = lastSession, last.token.withUnsafeBytes({ RawHTTP.same($0, token) }), last.entry.validUntil > .now { return last.entry }
        let found = proxy.sessions.cached(token: String(decoding: token, as: UTF8.self), scope: proxy.scope)
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

    /// Sends the exchange's request on the kept connection, an idle pooled one, or a new one.
    func startExchange(_ found: Exchange, context: ChannelHandlerContext) {
        exchange = found
        if let connection = kept, connection.address == found.address, connection.channel.isActive, connection.handlerOnLoop.isIdle {
            begin(on: connection)
        } else if let connection = proxy.pool.idleConnection(RawUpstreamConnection.self, to: found.address, on: context.eventLoop) {
            begin(on: connection)
        } else {
            connect(context: context)
        }
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
        let keepAlive = current.keepAlive && !flow.quiescing && !flow.inputEnded
        connection.handlerOnLoop.send(current.upstreamRequest, isHEAD: current.isHEAD, browserKeepAlive: keepAlive, sink: self)
    }

    // MARK: Server → browser

    func browserHead(for response: RawResponse, _ bytes: UnsafeRawBufferPointer, closing: Bool, allocator: ByteBufferAllocator) -> ByteBuffer {
        exchange?.status = response.status
        let policy = ProxyResponsePolicy(securityHeaders: settings.securityHeaders)
        return response.browserHead(bytes, closing: closing, policy: policy, requestID: exchange?.requestID, allocator: allocator)
    }

    /// The access-log line of an exchange that ended.
    private func log(_ finished: Exchange) {
        guard let logged = finished.logged else { return }
        AccessLog.proxied(
            logger, path: .fast, method: logged.method, target: logged.target, status: finished.status, milliseconds: AccessLog.milliseconds(since: logged.start),
            peer: client.address, requestID: finished.requestID
        )
    }

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
        log(current)
        if flow.exchangeEnded(closing: closing) == .finish {
            endOutput(context: context)
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
            close(context: context)  // the response was cut short; the browser must see that
            return
        }
        if current.freshConnections < 1 {
            connect(context: context)  // a kept-alive connection the server had closed: once more, fresh
            return
        }
        // The router answers it (it tries once more and shows the right page).
        exchange = nil
        flow.exchangeHandedToRouter()
        context.fireChannelRead(wrapInboundOut(current.request))
        if reading { handedThisRead = true } else { context.fireChannelReadComplete() }
        resume(context: context)
    }
}
