import Mustache
import NIOCore

/// The response a browser connection writes itself for a ``RequestProblem``: an HTML page when a
/// browser is navigating, an RFC 9457 problem document otherwise, and `Connection: close`.
enum RequestProblemResponse {
    /// Whether what was read of the request looks like a browser navigating (`GET` accepting HTML).
    static func wantsPage(_ request: ByteBuffer) -> Bool {
        request.withUnsafeReadableBytes { raw in
            guard raw.starts(with: "GET ".utf8) else { return false }
            let wanted = Array("text/html".utf8)
            let limit = min(raw.count, 64 * 1024)
            guard limit >= wanted.count else { return false }
            var index = 0
            while index + wanted.count <= limit {
                if matches(raw, at: index, wanted) { return true }
                index += 1
            }
            return false
        }
    }

    private static func matches(_ raw: UnsafeRawBufferPointer, at index: Int, _ wanted: [UInt8]) -> Bool {
        for offset in 0..<wanted.count where raw[index + offset] != wanted[offset] { return false }
        return true
    }

    /// The whole response, head and body.
    static func make(_ problem: RequestProblem, page: Bool, pages: Pages, securityHeaders: SecurityHeaders, allocator: ByteBufferAllocator) -> ByteBuffer {
        let body: String
        let contentType: String
        if page {
            let model = PageModel.Unavailable(heading: problem.reasonPhrase, message: problem.detail)
            body = pages.library.render(model, withTemplate: "environment_unavailable") ?? problem.detail
            contentType = "text/html; charset=utf-8"
        } else {
            body = ProblemDocument.json(status: problem.status, title: problem.reasonPhrase, detail: problem.detail)
            contentType = "application/problem+json"
        }
        var out = allocator.buffer(capacity: body.utf8.count + 256)
        out.writeString("HTTP/1.1 \(problem.status) \(problem.reasonPhrase)\r\n")
        out.writeString("Content-Type: \(contentType)\r\nContent-Length: \(body.utf8.count)\r\nCache-Control: no-store\r\nConnection: close\r\n")
        if page {
            out.writeString("Content-Security-Policy: \(securityHeaders.pagePolicy)\r\nReferrer-Policy: \(SecurityHeaders.referrerPolicy)\r\nX-Content-Type-Options: nosniff\r\n")
        }
        out.writeString("\r\n")
        out.writeString(body)
        return out
    }
}
