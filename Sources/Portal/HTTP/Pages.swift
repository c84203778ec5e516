import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Mustache

/// Server-rendered HTML pages from the Mustache templates in `Templates/`.
struct Pages: Sendable {
    let library: MustacheLibrary
    /// `'sha256-…'` sources of the templates' inline `<style>` elements, for the
    /// Content-Security-Policy's `style-src` (see ``SecurityHeaders``).
    let styleSources: [String]

    /// Loads every `*.mustache` in `directory`.
    static func load(from directory: String) async throws -> Pages {
        let library = try await MustacheLibrary(directory: directory)
        for name in ["layout", "landing", "refused", "launch_get", "no_session", "index", "error", "environment_unavailable", "new_window"] where library.getTemplate(named: name) == nil {
            throw PagesError(description: "The template \(name).mustache is missing from \(directory).")
        }
        return Pages(library: library, styleSources: try inlineStyleSources(in: directory))
    }

    /// The CSP hash sources of every `<style>` element in the templates of `directory`. A style
    /// element must be plain CSS: one with a Mustache tag would render differently from its hash.
    static func inlineStyleSources(in directory: String) throws -> [String] {
        let files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".mustache") }.sorted()
        var sources = [String]()
        for file in files {
            let text = try String(contentsOfFile: directory + "/" + file, encoding: .utf8)
            var rest = text[...]
            while let open = rest.range(of: "<style"), let start = rest[open.upperBound...].firstIndex(of: ">"),
                let close = rest[start...].range(of: "</style>") {
                let css = rest[rest.index(after: start)..<close.lowerBound]
                guard !css.contains("{{") else {
                    throw PagesError(description: "The <style> element in \(directory)/\(file) contains a Mustache tag; the Content-Security-Policy allows inline styles by their hash, so keep them plain CSS.")
                }
                let source = "'sha256-\(Data(SHA256.hash(data: Data(css.utf8))).base64EncodedString())'"
                if !sources.contains(source) { sources.append(source) }
                rest = rest[close.upperBound...]
            }
        }
        return sources
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
