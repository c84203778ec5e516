import Environments
import Hummingbird

extension Pages {
    /// The page for a launch admission refused: 429 with Retry-After over a concurrency cap or
    /// when the hosts are full, 503 when no host can take it, 403 when the course's budget is spent.
    func admissionRefused(_ refusal: AdmissionRefusal, requestID: String, returnURL: String?) -> Response {
        let heading: String
        let status: HTTPResponse.Status
        switch refusal.reason {
        case .globalCap, .courseCap, .profileCap, .noCapacity:
            heading = "Your environment cannot start just now"
            status = .tooManyRequests
        case .noHost:
            heading = "Your environment cannot start"
            status = .serviceUnavailable
        case .spendCap:
            heading = "Your course's compute budget is spent"
            status = .forbidden
        }
        let page = PageModel.Refused(heading: heading, message: refusal.message, reason: refusal.reason.rawValue, requestID: requestID, returnURL: returnURL)
        var headers: HTTPFields = [:]
        if let retry = refusal.retryAfter { headers[.retryAfter] = "\(retry.components.seconds)" }
        return response("refused", page, status: status, headers: headers)
    }
}
