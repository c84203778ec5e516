import Hummingbird
import Logging
import PostgresNIO

/// Turns unexpected errors into a page a person can act on (with the request id) instead of an empty
/// 500, and logs them with full detail. HTTP errors keep their status.
struct ErrorPageMiddleware: RouterMiddleware {
    typealias Context = PortalRequestContext
    let pages: Pages

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError {
            if error.status == .notFound {
                return pages.response("error", PageModel.Failure(message: "There is no page at this address.", requestID: context.requestID), status: .notFound)
            }
            throw error
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(String(reflecting: error))"])
            let page = PageModel.Failure(message: "The portal could not complete this request. Nothing was lost.", requestID: context.requestID)
            return pages.response("error", page, status: error is PSQLError ? .serviceUnavailable : .internalServerError)
        }
    }
}
