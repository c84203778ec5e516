import Foundation
import HTTPTypes
import Hummingbird
import Mustache

/// Server-rendered HTML pages from the Mustache templates in `Templates/`.
struct Pages: Sendable {
    let library: MustacheLibrary

    /// Loads every `*.mustache` in `directory`.
    static func load(from directory: String) async throws -> Pages {
        let library = try await MustacheLibrary(directory: directory)
        for name in ["layout", "landing", "refused", "launch_get", "no_session", "index", "error", "environment_unavailable", "new_window"] where library.getTemplate(named: name) == nil {
            throw PagesError(description: "The template \(name).mustache is missing from \(directory).")
        }
        return Pages(library: library)
    }

    /// Renders `template` with `object` as an HTML response that no cache keeps.
    func response(_ template: String, _ object: Any, status: HTTPResponse.Status = .ok, headers extra: HTTPFields = [:]) -> Response {
        let html = library.render(object, withTemplate: template) ?? "<!doctype html><title>Error</title><p>Page template \(template) is missing.</p>"
        var headers: HTTPFields = [
            .contentType: "text/html; charset=utf-8",
            .cacheControl: "no-store",
            .xContentTypeOptions: "nosniff",
        ]
        headers.append(contentsOf: extra)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: html)))
    }
}

struct PagesError: Error, CustomStringConvertible {
    var description: String
}
