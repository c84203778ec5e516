import Foundation
import Hummingbird
import PostgresNIO

/// `GET /healthz`: 200 when the database answers within two seconds, 503 otherwise, as JSON.
struct HealthController: Sendable {
    let client: PostgresClient

    func register(with router: Router<PortalRequestContext>) {
        router.get("/healthz") { _, context in await self.health(context: context) }
    }

    func health(context: PortalRequestContext) async -> Response {
        let client = self.client
        let healthy = await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                do {
                    for try await _ in try await client.query("SELECT 1") {}
                    return true
                } catch {
                    return false
                }
            }
            group.addTask {
                try? await Task.sleep(for: .seconds(2))
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        let body = healthy ? #"{"status":"ok"}"# : #"{"status":"unavailable","detail":"the database does not answer"}"#
        if !healthy { context.logger.warning("health check failed: the database does not answer") }
        return Response(
            status: healthy ? .ok : .serviceUnavailable,
            headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(string: body))
        )
    }
}
