import Logging
import NIOCore

/// How a browser connection ends: refusals answered by the connection itself, time limits,
/// lingering after the last response, and shutdown.
extension BrowserConnectionHandler {
    // MARK: Deadlines

    /// What the connection waits for now, from its state.
    var currentWait: ConnectionDeadlines.Wait {
        if lingering { return .lingering }
        if quiescing { return .draining }
        switch mode {
        case .passthrough: return .unlimited
        case .handingBody, .handingChunks: return .body(reading: wantsRead)
        case .requests:
            if exchange != nil || !routerRequests.isEmpty { return .response }
            if pending != nil { return .head }
            return answeredAny ? .nextRequest : .firstRequest
        }
    }

    /// Brings the deadline up to date with the state, and ends a draining connection that has
    /// nothing left to do.
    func settle(context: ChannelHandlerContext) {
        if quiescing, !lingering, isIdle {
            close(context: context)  // between requests (what a response said is out): nothing to linger for
            return
        }
        deadlines.set(currentWait, now: .now())
        guard let deadline = deadlines.deadline else { return }  // a timer still set finds nothing to do
        if timer != nil, let timerAt, timerAt <= deadline { return }
        timer?.cancel()
        timerAt = deadline
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in timerFired() }
    }

    private func timerFired() {
        timer = nil
        timerAt = nil
        guard let context else { return }
        switch deadlines.expiry(now: .now()) {
        case nil:
            settle(context: context)
        case .close:
            switch deadlines.wait {
            case .body:
                logger.notice("connection closed: the request body paused too long", metadata: ["peer": "\(client.address ?? "-")"])
            case .draining:
                logger.notice("connection closed: still busy when the shutdown's drain time ran out", metadata: ["peer": "\(client.address ?? "-")"])
            default:
                logger.debug("connection closed", metadata: ["waited for": "\(deadlines.wait)", "peer": "\(client.address ?? "-")"])
            }
            close(context: context)
        case .timeOut:
            refuse(.timedOut, request: pending, context: context)
        }
    }

    // MARK: Ending

    /// Answers a request the connection cannot take (or one that took too long) itself, then
    /// ends the connection. `request` is what was read of it (for choosing a page or a document).
    func refuse(_ problem: RequestProblem, request: ByteBuffer?, context: ChannelHandlerContext) {
        logger.notice(
            "request refused",
            metadata: ["status": "\(problem.status)", "reason": "\(problem.logReason)", "peer": "\(client.address ?? "-")"]
        )
        pending = nil
        guard isIdle else {
            close(context: context)  // a response is under way: the connection can only end
            return
        }
        let wantsPage = request.map { RequestProblemResponse.wantsPage($0) } ?? false
        let response = RequestProblemResponse.make(problem, page: wantsPage, pages: settings.pages, securityHeaders: settings.securityHeaders, allocator: allocator)
        context.write(wrapOutboundOut(.byteBuffer(response)), promise: nil)
        answeredAny = true
        finish(context: context)
    }

    /// Ends the connection after what has been written: the browser gets the end of the stream,
    /// what it still sends is read and dropped (lingering), and the connection closes when the
    /// browser closes its side or ``ConnectionDeadlines`` says it has lingered long enough.
    func finish(context: ChannelHandlerContext) {
        guard !lingering else { return }
        lingering = true
        pending = nil
        if inputEnded {
            flushThenClose(context: context)
            return
        }
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.byteBuffer(ByteBuffer())), promise: written)
        written.futureResult.assumeIsolated().whenComplete { [self] result in
            guard case .success = result, let context = self.context else { return }
            context.close(mode: .output, promise: nil)
        }
        wantsRead = true
        context.read()
        settle(context: context)
    }

    /// Closes at once (after writing out what is queued).
    func close(context: ChannelHandlerContext) {
        lingering = true
        pending = nil
        flushThenClose(context: context)
    }

    private func flushThenClose(context: ChannelHandlerContext) {
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.byteBuffer(ByteBuffer())), promise: written)
        written.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    /// NIO's side ends the connection's output (Hummingbird after `Connection: close`, or a
    /// parse error it answered): linger like any other ending, so the socket is not left open
    /// while nobody reads it.
    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard mode == .output, !lingering else {
            context.close(mode: mode, promise: promise)
            return
        }
        lingering = true
        pending = nil
        context.close(mode: .output, promise: promise)
        if inputEnded {
            context.close(promise: nil)
            return
        }
        wantsRead = true
        context.read()
        settle(context: context)
    }

    // MARK: Events

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case is ChannelShouldQuiesceEvent:
            quiescing = true
            if case .passthrough = mode {
                context.fireUserInboundEventTriggered(event)  // the splice closes itself
            } else if !routerRequests.isEmpty {
                context.fireUserInboundEventTriggered(event)  // Hummingbird ends after its response
            }
            settle(context: context)
        case ChannelEvent.inputClosed:
            inputEnded = true
            if lingering || isIdle {
                close(context: context)
            } else if case .passthrough = mode {
                context.fireUserInboundEventTriggered(event)
            } else if exchange == nil {
                context.fireUserInboundEventTriggered(event)  // the router's request reads to its end
            }
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }
}

extension RawRequest {
    /// Whether this is a WebSocket opening handshake (`Upgrade: websocket`).
    func isWebSocketUpgrade(_ bytes: UnsafeRawBufferPointer) -> Bool {
        for field in head.fields where field.kind == .upgrade {
            for token in RawHTTP.listTokens(bytes, field.value) where RawHTTP.equalsIgnoringCase(bytes, token, "websocket") { return true }
        }
        return false
    }
}
