import NIOCore

/// Takes an upstream response, as bytes ready for the browser, on the connection's event loop.
protocol RawUpstreamSink: AnyObject {
    /// Bytes for the browser; returns `false` to stop reading until ``RawUpstreamHandler/resume()``.
    func upstreamWrite(_ buffer: ByteBuffer) -> Bool
    func upstreamReadComplete()
    /// The response ended; `closing` when the browser's connection must end with it, `reusable`
    /// when this connection may carry another request. Returns `true` when the sink keeps the
    /// connection for its next request (it is then not returned to the pool).
    func upstreamEnd(closing: Bool, reusable: Bool) -> Bool
    /// The exchange failed; `beforeResponse` when nothing was passed to the browser yet.
    func upstreamFailed(_ error: any Error, beforeResponse: Bool)
    /// The head the browser gets for the server's `response` (read from `bytes`): the sink knows the
    /// browser's connection (its request id, what the portal changes in the fields). `closing` when
    /// the browser's connection ends with this response.
    func browserHead(for response: RawResponse, _ bytes: UnsafeRawBufferPointer, closing: Bool, allocator: ByteBufferAllocator) -> ByteBuffer
}

/// The last handler of a fast-path upstream connection (no HTTP codec): sends a request head as
/// bytes, reads the response head from the bytes, rewrites it for the browser, and passes the body
/// on unchanged while following its framing (length, chunks, or until the server closes) to know
/// where it ends and whether the connection can carry another request. Reads on demand only.
final class RawUpstreamHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum Body {
        case length(Int)
        case chunked(ChunkedScanner)
        case untilClose
    }

    private enum State {
        case idle
        /// Waiting for the response head; the bytes of an incomplete one so far.
        case head(any RawUpstreamSink, partial: ByteBuffer?)
        case body(any RawUpstreamSink, Body)
        case closed
    }

    private var state = State.idle
    /// Bodies up to this size that arrived with their head are written to the browser with it.
    static let joinedBodyLimit = 16 * 1024
    private var context: ChannelHandlerContext?
    private var allocator = ByteBufferAllocator()
    private var demand = true
    /// A read was asked of NIO and has not completed yet.
    private var readRequested = false
    /// The request's method was HEAD (a response without body, whatever its fields say).
    private var toHEAD = false
    /// The browser's connection ends with this response.
    private var closing = false
    /// The connection can carry another request after this response.
    private var reusable = false
    /// Called on the event loop when a response has been read to its end; `true` when the
    /// connection may carry another request.
    var onResponseEnd: ((Bool) -> Void)?

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.allocator = context.channel.allocator
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        onResponseEnd = nil
    }

    /// Sends a body-less request whose response goes to `sink`.
    func send(_ request: ByteBuffer, isHEAD: Bool, browserKeepAlive: Bool, sink: any RawUpstreamSink) {
        guard let context, case .idle = state else {
            sink.upstreamFailed(context == nil ? UpstreamError.closedBeforeResponse : UpstreamError.busy, beforeResponse: true)
            return
        }
        state = .head(sink, partial: nil)
        toHEAD = isHEAD
        closing = !browserKeepAlive
        demand = true
        context.writeAndFlush(wrapOutboundOut(request), promise: nil)
        requestRead(context)
    }

    /// Asks NIO for the next read unless a read is asked for already (it is, between requests).
    private func requestRead(_ context: ChannelHandlerContext) {
        guard !readRequested else { return }
        readRequested = true
        context.read()
    }

    /// Reads again after the sink paused.
    func resume() {
        guard case .body = state, !demand else { return }
        demand = true
        if let context { requestRead(context) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        switch state {
        case .head(let sink, let partial):
            if var partial {
                partial.writeBuffer(&bytes)
                bytes = partial
            }
            readHead(&bytes, sink: sink, context: context)
        case .body(let sink, let body):
            readBody(&bytes, body, sink: sink, context: context)
        case .idle:
            // Bytes from the server while no request is outstanding: the connection is unusable.
            state = .closed
            context.close(promise: nil)
        case .closed:
            break
        }
    }

    private func readHead(_ bytes: inout ByteBuffer, sink: any RawUpstreamSink, context: ChannelHandlerContext) {
        while true {
            let parsed = bytes.withUnsafeReadableBytes { raw -> (RawHTTP.Parse, RawResponse?, ByteBuffer?) in
                let parse = RawHTTP.parseHead(raw)
                guard case .complete(let head) = parse, let response = RawResponse(raw, head, toHEAD: toHEAD) else { return (parse, nil, nil) }
                if response.status < 200 { return (parse, response, nil) }  // 100 Continue, 103 Early Hints: the real head follows
                closing = closing || response.framed.framing == .untilClose
                return (parse, response, sink.browserHead(for: response, raw, closing: closing, allocator: allocator))
            }
            switch parsed {
            case (.incomplete, _, _):
                state = .head(sink, partial: bytes)
                return
            case (.complete(let head), let response?, let browserHead):
                bytes.moveReaderIndex(forwardBy: head.length)
                guard let browserHead else {
                    guard response.status != 101 else { return fail(UpstreamError.closedBeforeResponse, context: context) }
                    continue
                }
                reusable = response.isReusable
                let body: Body
                switch response.framed.framing {
                case .none: body = .length(0)
                case .length(let count): body = .length(count)
                case .chunked: body = .chunked(ChunkedScanner())
                case .untilClose: body = .untilClose
                }
                var head = browserHead
                var rest = body
                // A small body that is all here goes out with the head: one write, not two.
                if case .length(let count) = body, count <= Self.joinedBodyLimit, count <= bytes.readableBytes, var whole = bytes.readSlice(length: count) {
                    head.writeBuffer(&whole)
                    rest = .length(0)
                }
                state = .body(sink, rest)
                if !sink.upstreamWrite(head) { demand = false }
                readBody(&bytes, rest, sink: sink, context: context)
                return
            default:
                return fail(UpstreamError.closedBeforeResponse, context: context)  // not a response the fast path reads
            }
        }
    }

    private func readBody(_ bytes: inout ByteBuffer, _ body: Body, sink: any RawUpstreamSink, context: ChannelHandlerContext) {
        switch body {
        case .length(let remaining):
            let count = min(remaining, bytes.readableBytes)
            if count > 0, let slice = bytes.readSlice(length: count), !sink.upstreamWrite(slice) { demand = false }
            guard count == remaining else {
                state = .body(sink, .length(remaining - count))
                return
            }
        case .chunked(var scanner):
            let step = bytes.withUnsafeReadableBytes { scanner.scan($0) }
            switch step {
            case .more:
                state = .body(sink, .chunked(scanner))
                if bytes.readableBytes > 0, !sink.upstreamWrite(bytes) { demand = false }
                return
            case .end(let count):
                if count > 0, let slice = bytes.readSlice(length: count), !sink.upstreamWrite(slice) { demand = false }
            case .invalid:
                return fail(UpstreamError.closedMidResponse, context: context)
            }
        case .untilClose:
            if bytes.readableBytes > 0, !sink.upstreamWrite(bytes) { demand = false }
            return
        }
        // The response is complete. Anything more from the server now makes the connection unusable.
        finish(reusable: reusable && bytes.readableBytes == 0 && context.channel.isActive, sink: sink)
    }

    private func finish(reusable: Bool, sink: any RawUpstreamSink) {
        state = .idle
        // The sink may start the browser's next request on this very connection before it returns.
        if !sink.upstreamEnd(closing: closing, reusable: reusable) { onResponseEnd?(reusable) }
    }

    /// No request is outstanding: the connection can take one.
    var isIdle: Bool {
        if case .idle = state { return context != nil }
        return false
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        readRequested = false  // NIO has done the read asked for
        switch state {
        case .head:
            requestRead(context)
        case .body(let sink, _):
            sink.upstreamReadComplete()
            if demand { requestRead(context) }
        case .idle:
            requestRead(context)  // notice the server closing an idle keep-alive connection
        case .closed:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !endBodyAtClose() { fail(nil, context: nil) }
        onResponseEnd = nil
        context.fireChannelInactive()
    }

    /// A body delimited by the server closing has ended; `false` when the state is not such a body.
    private func endBodyAtClose() -> Bool {
        guard case .body(let sink, .untilClose) = state else { return false }
        state = .closed
        onResponseEnd?(false)
        _ = sink.upstreamEnd(closing: true, reusable: false)
        return true
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(error, context: context)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            _ = endBodyAtClose()
            fail(nil, context: context)  // closes the connection, failing an exchange still under way
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// Ends the exchange with an error and closes the connection (with `context`).
    private func fail(_ error: (any Error)?, context: ChannelHandlerContext?) {
        let current = state
        state = .closed
        context?.close(promise: nil)
        switch current {
        case .head(let sink, _):
            sink.upstreamFailed(error ?? UpstreamError.closedBeforeResponse, beforeResponse: true)
        case .body(let sink, _):
            sink.upstreamFailed(error ?? UpstreamError.closedMidResponse, beforeResponse: false)
        case .idle, .closed:
            break
        }
    }
}
