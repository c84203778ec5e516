import NIOCore
@testable import Portal
import Testing

/// A browser connection's stream of requests, driven event by event with no channel: what goes to
/// NIO, when a head is read, when the next request waits, and when the connection ends.
@Suite("Request flow of a browser connection")
struct RequestFlowTests {
    static func next(_ flow: inout RequestFlow, _ text: String) -> RequestFlow.Step {
        Array(text.utf8).withUnsafeBytes { flow.next($0) }
    }

    @Test func pipelinedRequestsWaitTheirTurnAndBodiesGoToNIOWhole() {
        var flow = RequestFlow()
        #expect(flow.wait(pending: false, reading: true) == .firstRequest)
        #expect(Self.next(&flow, "GET /a HTTP/1.1\r\n") == .readHead)
        #expect(flow.wait(pending: true, reading: true) == .head)
        flow.handed(framing: .length(10), keepAlive: true)
        #expect(flow.wait(pending: true, reading: true) == .body(reading: true))
        #expect(Self.next(&flow, "0123") == .hand(4))
        #expect(Self.next(&flow, "456789GET /b") == .hand(6))
        // The next request waits while the first one's response is owed.
        #expect(Self.next(&flow, "GET /b HTTP/1.1\r\n") == .hold)
        #expect(flow.holds(pending: true) && !flow.holds(pending: false))
        #expect(flow.wait(pending: true, reading: true) == .response)
        #expect(flow.routerResponseEnded() == .resume)
        #expect(Self.next(&flow, "GET /b HTTP/1.1\r\n") == .readHead)
        flow.handed(framing: .chunked, keepAlive: true)
        let chunks = "5\r\nhello\r\n0\r\n\r\n"
        #expect(Self.next(&flow, chunks + "NEXT") == .hand(chunks.utf8.count))
        #expect(flow.routerResponseEnded() == .resume)
        #expect(flow.wait(pending: false, reading: true) == .nextRequest)
        #expect(flow.answeredAny && flow.handedToNIO)
    }

    @Test func aConnectionEndsAfterItsLastResponseAndWhenAResponseCameBeforeItsBody() {
        var closing = RequestFlow()
        _ = Self.next(&closing, "GET / HTTP/1.1\r\n")
        closing.handed(framing: .none, keepAlive: false)
        #expect(closing.routerResponseEnded() == .finish)
        #expect(Self.next(&closing, "GET /more HTTP/1.1\r\n") == .drop)
        #expect(closing.wait(pending: false, reading: true) == .lingering)

        var early = RequestFlow()
        _ = Self.next(&early, "POST /lti/launch HTTP/1.1\r\n")
        early.handed(framing: .length(2_000_000), keepAlive: true)
        #expect(Self.next(&early, String(repeating: "x", count: 1000)) == .hand(1000))
        #expect(early.routerResponseEnded() == .finish)  // a form too large, refused before it arrived

        var broken = RequestFlow()
        _ = Self.next(&broken, "POST / HTTP/1.1\r\n")
        broken.handed(framing: .chunked, keepAlive: true)
        #expect(Self.next(&broken, "5 \r\nhello") == .invalidBody)
        #expect(broken.ending)
    }

    @Test func fastPathExchangesAreOrderedWithTheRoutersAndEndTheConnectionWhenTheySay() {
        var flow = RequestFlow()
        #expect(Self.next(&flow, "GET /user/a/b/ HTTP/1.1\r\n") == .readHead)
        flow.forwarded(keepAlive: true)
        #expect(Self.next(&flow, "GET /next HTTP/1.1\r\n") == .hold)
        #expect(flow.exchangeEnded(closing: false) == .resume)
        flow.forwarded(keepAlive: true)
        flow.exchangeHandedToRouter()  // the server could not be reached: the router answers
        #expect(flow.responseOwed)
        #expect(flow.routerResponseEnded() == .resume)
        flow.forwarded(keepAlive: true)
        #expect(flow.exchangeEnded(closing: true) == .finish)  // the server's response ends the connection
    }

    @Test func theBrowserClosingItsSideAndShutdownEndWhatIsInProgressFirst() {
        var idle = RequestFlow()
        #expect(idle.inputClosed() == .close)

        var routed = RequestFlow()
        routed.handed(framing: .none, keepAlive: true)
        #expect(routed.inputClosed() == .passOn)  // the router's request reads to its end
        #expect(routed.routerResponseEnded() == .finish)

        var forwarding = RequestFlow()
        forwarding.forwarded(keepAlive: true)
        #expect(forwarding.inputClosed() == .later)
        #expect(forwarding.exchangeEnded(closing: false) == .finish)

        var quiet = RequestFlow()
        #expect(quiet.quiesce() == .close)
        var busy = RequestFlow()
        busy.forwarded(keepAlive: true)
        #expect(busy.quiesce() == .later)
        #expect(busy.wait(pending: false, reading: true) == .draining)
        #expect(busy.exchangeEnded(closing: false) == .finish)
        var handedOver = RequestFlow()
        handedOver.handed(framing: .none, keepAlive: true)
        #expect(handedOver.quiesce() == .passOn)  // Hummingbird ends after its response
    }

    @Test func aWebSocketHandshakeHandsTheRestOfTheConnectionToNIO() {
        var flow = RequestFlow()
        flow.upgraded()
        #expect(flow.wait(pending: false, reading: true) == .unlimited)
        #expect(Self.next(&flow, "frames!") == .hand(7))
        var quiescing = flow
        #expect(quiescing.quiesce() == .passOn)  // the splice closes itself
        // A refused handshake is answered like any request, and the connection then closes.
        #expect(flow.routerResponseEnded() == .finish)
    }
}
