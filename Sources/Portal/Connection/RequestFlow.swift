import NIOCore

/// Where a browser connection is in its stream of requests, as a value the connection's handler
/// (``BrowserConnectionHandler``) feeds with what happened and asks what to do: which bytes go to
/// NIO's parser, when a request head is to be read, when the next request may be taken (responses
/// stay in request order), and when the connection ends. It does no I/O and reads no clock, so it
/// is tested on its own; a broken invariant (a response the router owed nobody) is asserted, not
/// clamped.
struct RequestFlow: Sendable {
    enum Mode: Sendable {
        /// At the start of a request.
        case requests
        /// The rest of a request handed to the router: a body of this many bytes, or chunks.
        case handingBody(remaining: Int)
        case handingChunks(ChunkedScanner)
        /// Everything goes to NIO from here on (a WebSocket upgrade).
        case passthrough
    }

    /// What to do with the bytes at the front of what the browser sent.
    enum Step: Equatable, Sendable {
        /// Hand this many of them to NIO's parser.
        case hand(Int)
        /// A request starts there: read its head and say what became of it (``waitForHead()``,
        /// ``handed(head:framing:keepAlive:)``, ``forwarded(keepAlive:)``, ``upgraded()`` or ``refused()``).
        case readHead
        /// Keep them until a response owed ends (pipelined requests wait their turn).
        case hold
        /// The body's chunked framing is broken: end the connection.
        case invalidBody
        /// The connection is ending: drop them.
        case drop
    }

    /// What to do after a response ended, the browser closed its side, or shutdown began.
    enum After: Equatable, Sendable {
        /// Go on with the requests that waited.
        case resume
        /// End the connection after what was written, reading out what the browser still sends.
        case finish
        /// Close at once.
        case close
        /// Nothing here; pass the event on to NIO's side, which owns the request in progress.
        case passOn
        /// Nothing yet: the connection ends once what is in progress is done.
        case later
    }

    private(set) var mode = Mode.requests
    /// Requests handed to the router whose responses have not ended: whether each keeps the
    /// connection open after it.
    private var routerRequests = CircularBuffer<Bool>(initialCapacity: 4)
    /// A request is being forwarded by the fast path; whether the connection stays open after it.
    private(set) var exchange: Bool?
    /// NIO's parser has been handed a request (its upgrader only looks at the first one).
    private(set) var handedToNIO = false
    /// A request has been answered on this connection.
    private(set) var answeredAny = false
    /// The browser closed its side: no request follows the current one.
    private(set) var inputEnded = false
    /// Shutdown began: the connection ends after what is in progress.
    private(set) var quiescing = false
    /// The connection is ending: nothing more is read for requests.
    private(set) var ending = false

    /// A response is owed (by the router or the fast path) and the next request must wait for it.
    var responseOwed: Bool { exchange != nil || !routerRequests.isEmpty }

    /// Nothing is in progress: no request being read, forwarded or answered.
    var isIdle: Bool {
        guard case .requests = mode else { return false }
        return !responseOwed
    }

    /// A request body is being handed to the router.
    var isReadingBody: Bool {
        switch mode {
        case .handingBody, .handingChunks: true
        case .requests, .passthrough: false
        }
    }

    /// Bytes wait for a response owed: read no more from the socket until they are taken.
    func holds(pending: Bool) -> Bool {
        guard pending, case .requests = mode else { return false }
        return responseOwed
    }

    // MARK: Bytes from the browser

    /// What to do with `bytes`, the front of what the browser sent and nothing has taken yet.
    mutating func next(_ bytes: UnsafeRawBufferPointer) -> Step {
        if ending { return .drop }
        switch mode {
        case .passthrough:
            return .hand(bytes.count)
        case .handingBody(let remaining):
            let count = min(remaining, bytes.count)
            mode = count == remaining ? .requests : .handingBody(remaining: remaining - count)
            return .hand(count)
        case .handingChunks(var scanner):
            switch scanner.scan(bytes) {
            case .more:
                mode = .handingChunks(scanner)
                return .hand(bytes.count)
            case .end(let count):
                mode = .requests
                return .hand(count)
            case .invalid:
                ending = true
                return .invalidBody
            }
        case .requests:
            return responseOwed ? .hold : .readHead
        }
    }

    /// The head at the front is not complete yet.
    func waitForHead() {}

    /// The head (and what follows it) goes to the router; `keepAlive` when the connection goes on
    /// after its response.
    mutating func handed(framing: RawHTTP.Framing, keepAlive: Bool) {
        assert(isIdle, "a request was handed to the router while a response was owed")
        routerRequests.append(keepAlive)
        handedToNIO = true
        switch framing {
        case .length(let count): mode = .handingBody(remaining: count)
        case .chunked: mode = .handingChunks(ChunkedScanner())
        case .none, .untilClose: mode = .requests
        }
    }

    /// The fast path forwards the request at the front (it has no body).
    mutating func forwarded(keepAlive: Bool) {
        assert(isIdle, "a request was forwarded while a response was owed")
        exchange = keepAlive
    }

    /// A WebSocket handshake: the rest of the connection is NIO's upgrader's. A refused one is
    /// answered like any request (and the connection then closes); an accepted one is spliced and
    /// never answered here.
    mutating func upgraded() {
        assert(isIdle, "an upgrade was handed over while a response was owed")
        routerRequests.append(false)
        handedToNIO = true
        mode = .passthrough
    }

    /// The connection answered the request itself (a refusal); it ends.
    mutating func refused() {
        answeredAny = true
        ending = true
    }

    // MARK: Responses

    /// The router wrote the end of a response.
    mutating func routerResponseEnded() -> After {
        assert(!routerRequests.isEmpty, "the router ended a response nobody was owed")
        guard let keepAlive = routerRequests.popFirst() else { return .resume }
        answeredAny = true
        // Answered before its body arrived (a refusal, a form too large), or the last response of the
        // connection: nothing more is read from it.
        let bodyUnread = isReadingBody && routerRequests.isEmpty
        if !keepAlive || bodyUnread || inputEnded && routerRequests.isEmpty {
            ending = true
            return .finish
        }
        return routerRequests.isEmpty ? .resume : .later
    }

    /// The fast path's exchange ended; `closing` when its response ends the connection.
    mutating func exchangeEnded(closing: Bool) -> After {
        assert(exchange != nil, "an exchange ended that was not running")
        let keepAlive = exchange ?? false
        exchange = nil
        answeredAny = true
        if closing || !keepAlive || quiescing || inputEnded {
            ending = true
            return .finish
        }
        return .resume
    }

    /// The fast path could not reach the server before anything was sent: the router answers the
    /// request instead (it tries again and shows the right page).
    mutating func exchangeHandedToRouter() {
        assert(exchange != nil, "an exchange was handed over that was not running")
        routerRequests.append(exchange ?? false)
        exchange = nil
        handedToNIO = true
    }

    // MARK: Events

    /// The browser closed its side of the connection.
    mutating func inputClosed() -> After {
        inputEnded = true
        if ending || isIdle {
            ending = true
            return .close
        }
        if case .passthrough = mode { return .passOn }
        return exchange == nil ? .passOn : .later  // the router's request reads to its end
    }

    /// Shutdown began.
    mutating func quiesce() -> After {
        quiescing = true
        if case .passthrough = mode { return .passOn }  // the splice closes itself
        if !routerRequests.isEmpty { return .passOn }  // Hummingbird ends after its response
        return isIdle ? close() : .later
    }

    /// The connection ends at once (a deadline, a failure, a draining connection with nothing left).
    mutating func close() -> After {
        ending = true
        return .close
    }

    /// The connection ends after what was written (NIO's side closed its output, or a response cut it short).
    mutating func finish() {
        ending = true
    }

    /// What the connection waits for, for its deadline: `pending` when bytes of a request have
    /// arrived, `reading` when the portal asked the socket for more and got none yet.
    func wait(pending: Bool, reading: Bool) -> ConnectionDeadlines.Wait {
        if ending { return .lingering }
        if quiescing { return .draining }
        switch mode {
        case .passthrough: return .unlimited
        case .handingBody, .handingChunks: return .body(reading: reading)
        case .requests:
            if responseOwed { return .response }
            if pending { return .head }
            return answeredAny ? .nextRequest : .firstRequest
        }
    }
}
