import NIOCore

/// How long a browser connection may wait, for what, and what happens when it has waited too long.
/// A value type the connection's handler feeds with what it is waiting for and the clock; the
/// handler arms one timer for ``deadline`` and asks ``expiry(now:)`` when it fires.
///
/// - Before a request's first byte: `http.header_timeout` from accepting the connection for its
///   first request, `http.keep_alive_timeout` from the end of the last response for the next.
/// - While a head arrives: `http.header_timeout` from its first byte, in total (a byte a second
///   does not extend it).
/// - While a body arrives: `http.body_timeout` from the moment the portal last asked for bytes
///   and got none (a pause of the portal's own, waiting for the server to take the body, is not
///   the browser's).
/// - While a response is owed, or the connection is a WebSocket: no limit (long polls, event
///   streams and sockets last as long as the server keeps them).
/// - After a response that ends the connection while the browser may still be sending: what it
///   sends is read and dropped for up to ``lingerIdle`` between reads and ``lingerTotal`` in all,
///   so the browser reads the response instead of a reset, and then the connection closes.
/// - After shutdown began: in-flight responses get `http.drain_timeout`, then it closes.
struct ConnectionDeadlines: Sendable {
    /// What the connection is waiting for.
    enum Wait: Equatable, Sendable {
        case firstRequest
        case nextRequest
        case head
        /// A request body; `reading` while the portal wants bytes and has none.
        case body(reading: Bool)
        case response
        case lingering
        case draining
        /// Nothing is limited (a WebSocket, or the connection is closing anyway).
        case unlimited
    }

    /// What to do when a deadline passed.
    enum Expiry: Equatable, Sendable {
        /// Close without a word: the browser sent nothing of a request.
        case close
        /// Answer `408 Request Timeout`, then close.
        case timeOut
    }

    struct Settings: Sendable, Equatable {
        var headerTimeout: TimeAmount
        var bodyTimeout: TimeAmount
        var keepAliveTimeout: TimeAmount
        var drainTimeout: TimeAmount
        var lingerIdle: TimeAmount = .seconds(5)
        var lingerTotal: TimeAmount = .seconds(30)
    }

    let settings: Settings
    private(set) var wait: Wait
    /// When the current wait began (for a body: since the portal last asked for bytes).
    private var since: NIODeadline
    /// When lingering or draining began (their totals count from there).
    private var phaseStart: NIODeadline

    init(settings: Settings, now: NIODeadline) {
        self.settings = settings
        self.wait = .firstRequest
        self.since = now
        self.phaseStart = now
    }

    /// The connection now waits for `wait`. Waiting on for the same thing keeps its start (a head's
    /// and a first request's limits are totals), except that a body read restarts its pause.
    mutating func set(_ wait: Wait, now: NIODeadline) {
        guard wait != self.wait else { return }
        if self.wait == .lingering || self.wait == .draining {
            // Closing already: only lingering (after draining) or no limit may follow.
            guard wait == .lingering || wait == .unlimited else { return }
        }
        switch wait {
        case .head where self.wait == .firstRequest:
            break  // the first request's header limit counts from the connection's start
        case .lingering, .draining:
            phaseStart = now
            since = now
        default:
            since = now
        }
        self.wait = wait
    }

    /// Bytes arrived: a body's pause and a lingering connection's idle time start again.
    mutating func received(now: NIODeadline) {
        switch wait {
        case .body, .lingering: since = now
        default: break
        }
    }

    /// When the current wait runs out, if it can.
    var deadline: NIODeadline? {
        switch wait {
        case .firstRequest, .head: since + settings.headerTimeout
        case .nextRequest: since + settings.keepAliveTimeout
        case .body(let reading): reading ? since + settings.bodyTimeout : nil
        case .lingering: min(since + settings.lingerIdle, phaseStart + settings.lingerTotal)
        case .draining: phaseStart + settings.drainTimeout
        case .response, .unlimited: nil
        }
    }

    /// What to do at `now`: nothing yet (`nil`), or close, with a `408` first when the browser
    /// is in the middle of sending a head (a body is the router's to answer: the connection just
    /// closes, and the router sees the body cut short).
    func expiry(now: NIODeadline) -> Expiry? {
        guard let deadline, now >= deadline else { return nil }
        return wait == .head ? .timeOut : .close
    }
}
