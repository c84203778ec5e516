import Hummingbird
import Logging
import NIOCore

/// The request context of every portal route: Hummingbird's core storage plus the peer's address,
/// which decides whether `X-Forwarded-*` headers are believed.
struct PortalRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    /// The IP address of the TCP peer (a browser, or a reverse proxy in front of the portal).
    let remoteAddress: String?
    /// The event loop of the browser's connection (the proxy keeps upstream connections on it).
    let eventLoop: any EventLoop

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress?.ipAddress
        eventLoop = source.channel.eventLoop
    }

    /// The request id that log lines and error pages carry.
    var requestID: String { logger[metadataKey: "hb.request.id"]?.description ?? "-" }
}
