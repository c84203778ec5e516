import Logging
import NIOCore

/// Keeps a spliced WebSocket only as long as the session that opened it: the session is looked
/// up again every `proxy.session_cache` (through the same cache as every request), and the socket
/// is closed once the session has ended, expired or been replaced by a new launch in that browser.
struct SessionWatch: Sendable {
    let proxy: EnvironmentProxy
    let token: String
    let userID: Int64

    /// How often the session is checked.
    var interval: Duration { max(proxy.sessions.ttl, .seconds(1)) }

    /// Runs until `channel` closes, closing it first if the session ends.
    func run(closing channel: any Channel, logger: Logger) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                try? await channel.closeFuture.get()  // only the closing matters, not how it went
            }
            group.addTask {
                while !Task.isCancelled {
                    do {
                        try await Task.sleep(for: interval)
                    } catch {
                        return  // the socket closed first
                    }
                    do {
                        let session = try await proxy.sessions.session(token: token, scope: proxy.scope)
                        if session?.userID != userID {
                            logger.notice("websocket closed: its session ended")
                            channel.close(promise: nil)
                            return
                        }
                    } catch {
                        // The database did not answer: the socket stays until the next check.
                        logger.warning("websocket session check failed; checking again", metadata: ["error": "\(String(reflecting: error))"])
                    }
                }
            }
            await group.next()
            group.cancelAll()
        }
    }
}
