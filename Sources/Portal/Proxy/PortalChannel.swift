import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import Synchronization

/// The portal's HTTP/1.1 connections. Every connection starts with ``BrowserConnectionHandler``
/// (strict request reading, limits, timeouts, the proxy's fast path). Ordinary requests go to the
/// responder (router and proxy); a WebSocket upgrade under `/user/` is authorised like any proxied
/// request, the handshake is made with the environment's server, and the two connections are then
/// spliced byte for byte, so subprotocols, extensions, frame sizes, pings and closes are the
/// browser's and the server's own. A spliced WebSocket is closed when its session ends.
///
/// A refused or failed upgrade is answered here with a problem document, and the connection closed.
/// As with any NIO upgrader, only the first request a connection hands to NIO can upgrade (requests
/// the fast path forwarded itself do not count); browsers open every WebSocket on a new connection.
struct PortalChannel: ServerChildChannel, HTTPChannelHandler {
    enum UpgradeResult: Sendable {
        case spliced(any Channel, SessionWatch)
        case notUpgraded(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>)
        /// NIO consumed the upgrade request, so the refusal is answered here, not by the router.
        case refused(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>, SpliceUpgrader.Refused)
    }

    /// The connection and the outcome of its first request's upgrade negotiation.
    struct Value: ServerChildChannelValue {
        let channel: any Channel
        let negotiated: EventLoopFuture<UpgradeResult>
    }

    let responder: HTTPChannelHandler.Responder
    let proxy: EnvironmentProxy
    /// How every connection is limited and what it answers itself.
    let connection: BrowserConnectionHandler.Settings

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            let splice = SpliceUpgrader(proxy: proxy, logger: logger)
            // Every request is read here before NIO's HTTP parser sees it.
            let front = NIOLoopBound(BrowserConnectionHandler(proxy: proxy, settings: connection, logger: logger), eventLoop: channel.eventLoop)
            try channel.pipeline.syncOperations.addHandler(front.value)
            let upgrade = NIOTypedHTTPServerUpgradeConfiguration<UpgradeResult>(upgraders: [splice]) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
                    try channel.pipeline.syncOperations.addHandler(RouterResponseObserver(connection: front.value))
                    try channel.pipeline.syncOperations.addHandler(HTTPUserEventHandler(logger: logger))
                    let http = try NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>(
                        wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true)
                    )
                    if let refused = splice.pending.refusal() { return .refused(http, refused) }
                    return .notUpgraded(http)
                }
            }
            var configuration = NIOUpgradableHTTPServerPipelineConfiguration(upgradeConfiguration: upgrade)
            configuration.enablePipelining = false
            configuration.enableErrorHandling = false
            configuration.enableResponseHeaderValidation = false
            return Value(channel: channel, negotiated: try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(configuration: configuration))
        }
    }

    func handle(value: Value, logger: Logger) async {
        // Cancelled (shutdown past its limit): end the connection, which ends everything below.
        await withTaskCancellationHandler {
            do {
                switch try await value.negotiated.get() {
                case .notUpgraded(let http):
                    await handleHTTP(asyncChannel: http, logger: logger)
                case .spliced(let channel, let watch):
                    await watch.run(closing: channel, logger: logger)
                case .refused(let http, let refused):
                    try await http.executeThenClose { _, outbound in
                        let body = ByteBuffer(string: ProblemDocument.json(status: refused.status.code, title: refused.status.reasonPhrase, detail: refused.detail))
                        try await outbound.write(.head(HTTPResponse(status: refused.status, headerFields: [
                            .connection: "close", .contentType: "application/problem+json", .contentLength: "\(body.readableBytes)", .cacheControl: "no-store",
                        ])))
                        try await outbound.write(.body(body))
                        try await outbound.write(.end(nil))
                    }
                }
            } catch {
                logger.debug("connection ended", metadata: ["error": "\(error)"])
            }
        } onCancel: {
            value.channel.close(promise: nil)
        }
    }
}

/// Authorises a WebSocket upgrade, performs it with the environment's server, and splices.
struct SpliceUpgrader: NIOTypedHTTPServerProtocolUpgrader {
    typealias UpgradeResult = PortalChannel.UpgradeResult

    let supportedProtocol = "websocket"
    let requiredUpgradeHeaders: [String] = []
    let proxy: EnvironmentProxy
    let logger: Logger
    /// The upstream connection between its handshake and the splice.
    let pending = Pending()

    init(proxy: EnvironmentProxy, logger: Logger) {
        self.proxy = proxy
        self.logger = logger
    }

    func buildUpgradeResponse(channel: any Channel, upgradeRequest: HTTPRequestHead, initialResponseHeaders: HTTPHeaders) -> EventLoopFuture<HTTPHeaders> {
        let promise = channel.eventLoop.makePromise(of: HTTPHeaders.self)
        let pending = self.pending
        let started = NIODeadline.now()
        promise.completeWithTask {
            guard upgradeRequest.uri.hasPrefix("/user/") else { throw EnvironmentProxy.Refusal.notRunning }
            let peer = channel.remoteAddress?.ipAddress
            let headers = upgradeRequest.headers
            let originAllowed = proxy.originAllows(
                method: "GET", upgrade: true, claims: OriginPolicy.Claims(origin: headers["origin"].first, fetchSite: headers["sec-fetch-site"].first),
                forwardedProto: headers["x-forwarded-proto"].first, forwardedHost: headers["x-forwarded-host"].first,
                forwardedPort: headers["x-forwarded-port"].first, peer: peer, path: upgradeRequest.uri, logger: logger
            )
            if proxy.environmentsURL != nil {
                // With a separate environment origin, only that origin serves environments.
                let onEnvironmentOrigin = proxy.isEnvironmentOrigin(
                    authority: upgradeRequest.headers["host"].first, forwardedHost: upgradeRequest.headers["x-forwarded-host"].first, peer: peer
                )
                guard onEnvironmentOrigin else { throw EnvironmentProxy.Refusal.notRunning }
            }
            let token = CookieHeader.value(named: proxy.cookieName, in: upgradeRequest.headers["cookie"])
            let (route, address) = try await proxy.authorize(path: Substring(upgradeRequest.uri), token: token, originAllowed: originAllowed)
            guard let token else { throw EnvironmentProxy.Refusal.noSession }
            let client = ProxyHeaders.Client(
                address: peer, trusted: proxy.resolver.isTrusted(peer), scheme: proxy.scheme(forwardedProto: upgradeRequest.headers["x-forwarded-proto"].first, peer: peer)
            )
            let head = ProxyHeaders.request(
                method: "GET", target: upgradeRequest.uri, authority: upgradeRequest.headers["host"].first,
                headers: upgradeRequest.headers.lazy.filter { $0.name.lowercased() != "host" }, client: client,
                authorization: route.authorization, dropCookies: EnvironmentProxy.portalCookies
            )
            let (upstream, response) = try await Self.handshake(head, address: address, on: channel.eventLoop, timeout: proxy.pool.connectTimeout)
            route.touch()
            pending.set(upstream, route, SessionWatch(proxy: proxy, token: token, userID: route.userID))
            var answer = initialResponseHeaders
            for name in ["sec-websocket-accept", "sec-websocket-protocol", "sec-websocket-extensions"] {
                for value in response.headers[name] { answer.add(name: name, value: value) }
            }
            let requestID = RequestID().description
            answer.add(name: "X-Request-Id", value: requestID)
            AccessLog.proxied(
                logger, path: .splice, method: "GET", target: Substring(upgradeRequest.uri), status: 101, milliseconds: AccessLog.milliseconds(since: started),
                peer: peer, requestID: requestID
            )
            return answer
        }
        promise.futureResult.whenFailure { [logger] error in
            if let refusal = error as? EnvironmentProxy.Refusal {
                pending.refuse(Refused(status: refusal.status, detail: refusal.detail))
            } else if case UpstreamError.refusedUpgrade(let status) = error {
                pending.refuse(Refused(status: HTTPResponse.Status(code: status), detail: "Your environment's server refused the WebSocket."))
            } else {
                logger.debug("websocket upgrade not made", metadata: ["error": "\(error)"])
                pending.refuse(Refused(status: .badGateway, detail: EnvironmentProxy.Refusal.upstreamDown.detail))
            }
        }
        return promise.futureResult
    }

    func upgrade(channel: any Channel, upgradeRequest: HTTPRequestHead) -> EventLoopFuture<UpgradeResult> {
        guard let (upstream, route, watch) = pending.take() else {
            return channel.eventLoop.makeFailedFuture(UpstreamError.closedBeforeResponse)
        }
        return channel.eventLoop.makeCompletedFuture {
            let (browserSide, serverSide) = GlueHandler.pair { route.touch() }
            try channel.pipeline.syncOperations.addHandler(browserSide)
            try upstream.pipeline.syncOperations.addHandler(serverSide)
            // What the server said meanwhile goes to the browser now (and a close crosses over).
            upstream.pipeline.syncOperations.removeHandler(name: SpliceBuffer.name, promise: nil)
            return .spliced(channel, watch)
        }
    }

    /// Opens a connection to the environment's server and makes the upgrade handshake there.
    static func handshake(
        _ head: HTTPRequestHead, address: UpstreamAddress, on eventLoop: any EventLoop, timeout: TimeAmount
    ) async throws -> (any Channel, HTTPResponseHead) {
        let result = eventLoop.makePromise(of: UpstreamUpgrade.self)
        let channel = try await address.connect(on: eventLoop, timeout: timeout, halfClosure: true) { channel in
            channel.eventLoop.makeCompletedFuture {
                var configuration = NIOUpgradableHTTPClientPipelineConfiguration(
                    upgradeConfiguration: NIOTypedHTTPClientUpgradeConfiguration<UpstreamUpgrade>(
                        upgradeRequestHead: head, upgraders: [PassthroughUpgrader()],
                        notUpgradingCompletionHandler: { channel in
                            // The server answered something else than 101; read its status to relay it.
                            let status = channel.eventLoop.makePromise(of: Int.self)
                            return channel.eventLoop.makeCompletedFuture {
                                try channel.pipeline.syncOperations.addHandler(StatusReader(status: status))
                                return .refused(status.futureResult)
                            }
                        }
                    )
                )
                configuration.leftOverBytesStrategy = .forwardBytes
                try channel.pipeline.syncOperations.configureUpgradableHTTPClientPipeline(configuration: configuration).cascade(to: result)
            }
        }.get()
        switch try await result.futureResult.get() {
        case .upgraded(let response):
            return (channel, response)
        case .refused(let status):
            defer { channel.close(promise: nil) }
            throw UpstreamError.refusedUpgrade(status: (try? await status.get()) ?? 502)
        }
    }

    /// Why an upgrade was refused: the status and what the client is told.
    struct Refused: Sendable {
        var status: HTTPResponse.Status
        var detail: String
    }

    /// Holds the upstream channel from the handshake to the splice (closing it if never spliced),
    /// or why the upgrade was refused.
    final class Pending: Sendable {
        private let value = Mutex<(any Channel, ProxyRoute, SessionWatch)?>(nil)
        private let refused = Mutex<Refused?>(nil)

        func refuse(_ refusal: Refused) {
            refused.withLock { $0 = refusal }
        }

        func refusal() -> Refused? {
            refused.withLock { $0 }
        }

        func set(_ channel: any Channel, _ route: ProxyRoute, _ watch: SessionWatch) {
            value.withLock { $0 = (channel, route, watch) }
        }

        func take() -> (any Channel, ProxyRoute, SessionWatch)? {
            value.withLock { current in
                defer { current = nil }
                return current
            }
        }

        deinit {
            value.withLock { $0?.0.close(promise: nil) }
        }
    }
}

/// The outcome of the upstream handshake.
enum UpstreamUpgrade: Sendable {
    case upgraded(HTTPResponseHead)
    /// The server answered with this status instead of 101.
    case refused(EventLoopFuture<Int>)
}

/// Reads the status of the response that refused an upgrade.
final class StatusReader: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    let status: EventLoopPromise<Int>

    init(status: EventLoopPromise<Int>) {
        self.status = status
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data) { status.succeed(Int(head.status.code)) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        status.fail(UpstreamError.closedBeforeResponse)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        status.fail(UpstreamError.closedBeforeResponse)
    }
}

/// Accepts whatever 101 the environment's server answers: the browser checks it (its
/// `Sec-WebSocket-Accept` is computed from the browser's own key, passed through unchanged).
struct PassthroughUpgrader: NIOTypedHTTPClientProtocolUpgrader {
    let supportedProtocol = "websocket"
    let requiredUpgradeHeaders: [String] = []

    func addCustom(upgradeRequestHeaders: inout HTTPHeaders) {}

    func shouldAllowUpgrade(upgradeResponse: HTTPResponseHead) -> Bool { true }

    func upgrade(channel: any Channel, upgradeResponse: HTTPResponseHead) -> EventLoopFuture<UpstreamUpgrade> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(SpliceBuffer(), name: SpliceBuffer.name)
            return .upgraded(upgradeResponse)
        }
    }
}
