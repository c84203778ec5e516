import Logging
import NIOCore

/// How a browser connection ends: refusals answered by the connection itself, time limits,
/// lingering after the last response, and shutdown.
extension BrowserConnectionHandler {
    // MARK: Deadlines

    /// Brings the deadline up to date with the state, and ends a draining connection that has
    /// nothing left to do.
    func settle(context: ChannelHandlerContext) {
        if flow.quiescing, !flow.ending, flow.isIdle {
            close(context: context)  // between requests (what a response said is out): nothing to linger for
            return
        }
        deadlines.set(flow.wait(pending: pending != nil, reading: wantsRead), now: .now())
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
        guard flow.isIdle else {
            close(context: context)  // a response is under way: the connection can only end
            return
        }
        let wantsPage = request.map { RequestProblemResponse.wantsPage($0) } ?? false
        let response = RequestProblemResponse.make(problem, page: wantsPage, pages: settings.pages, securityHeaders: settings.securityHeaders, allocator: allocator)
        context.write(wrapOutboundOut(.byteBuffer(response)), promise: nil)
        flow.refused()
        endOutput(context: context)
    }

    /// Ends the connection after what has been written, once ``RequestFlow`` says it ends: the
    /// browser gets the end of the stream, what it still sends is read and dropped (lingering), and
    /// the connection closes when the browser closes its side or ``ConnectionDeadlines`` says it
    /// has lingered long enough.
    func endOutput(context: ChannelHandlerContext) {
        pending = nil
        if flow.inputEnded {
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
        _ = flow.close()
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
        guard mode == .output, !flow.ending else {
            context.close(mode: mode, promise: promise)
            return
        }
        flow.finish()
        pending = nil
        context.close(mode: .output, promise: promise)
        if flow.inputEnded {
            context.close(promise: nil)
            return
        }
        wantsRead = true
        context.read()
        settle(context: context)
    }

    // MARK: Events

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        let after: RequestFlow.After
        switch event {
        case is ChannelShouldQuiesceEvent: after = flow.quiesce()
        case ChannelEvent.inputClosed: after = flow.inputClosed()
        default: after = .passOn
        }
        switch after {
        case .passOn:
            context.fireUserInboundEventTriggered(event)
            settle(context: context)
        case .close:
            close(context: context)
        case .finish:
            endOutput(context: context)
        case .later, .resume:
            settle(context: context)
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
