import HTTPTypes
import Hummingbird
import Logging

/// Echoes the request id in `X-Request-Id` and writes one access-log line per request
/// (method, path without query, status, duration, peer) at `info`.
struct AccessLogMiddleware: RouterMiddleware {
    typealias Context = PortalRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        var status = 500
        defer {
            if context.logger.logLevel <= .info {
                context.logger.info(
                    "request",
                    metadata: [
                        "method": "\(request.method.rawValue)", "path": "\(request.uri.path)", "status": "\(status)",
                        "ms": "\(AccessLog.milliseconds(ContinuousClock.now - start))", "peer": "\(context.remoteAddress ?? "-")",
                    ]
                )
            }
        }
        do {
            var response = try await next(request, context)
            response.headers[.xRequestID] = context.requestID
            status = Int(response.status.code)
            return response
        } catch let error as any HTTPResponseError {
            status = Int(error.status.code)
            throw error
        }
    }
}
