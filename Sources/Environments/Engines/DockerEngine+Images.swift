import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

extension DockerEngine {
    /// Copies `image` from `source` through the two engines' APIs: `GET /images/{name}/get` on the
    /// source streams a docker archive straight into `POST /images/load` here, without a registry
    /// and without holding the archive in memory or on disk.
    public func loadImage(_ image: String, from source: DockerEngine) async throws {
        var export = HTTPClientRequest(url: source.base + "/v1.41/images/" + image.split(separator: "/").map { escape(String($0)) }.joined(separator: "/") + "/get")
        export.headers.replaceOrAdd(name: "Host", value: "localhost")
        let archive: HTTPClientResponse
        do {
            archive = try await source.client.execute(export, timeout: .minutes(30))
        } catch {
            throw EngineError(.unreachable, "The container engine \(source.name) cannot be reached to copy \(image): \(error)")
        }
        guard archive.status == .ok else {
            throw EngineError(.imageMissing, "\(source.name) answered \(archive.status.code) when asked for the image \(image).")
        }
        var load = HTTPClientRequest(url: base + "/v1.41/images/load?quiet=1")
        load.method = .POST
        load.headers.replaceOrAdd(name: "Host", value: "localhost")
        load.headers.add(name: "Content-Type", value: "application/x-tar")
        load.body = .stream(archive.body, length: .unknown)
        let response: HTTPClientResponse
        do {
            response = try await client.execute(load, timeout: .minutes(30))
        } catch {
            throw EngineError(.unreachable, "Loading the image \(image) onto \(name) failed: \(error)")
        }
        let reply = String(buffer: try await response.body.collect(upTo: 1 << 20))
        guard response.status == .ok, try await imageExists(image) else {
            throw EngineError(.imageMissing, "\(name) did not load the image \(image) copied from \(source.name) (\(response.status.code)): \(reply.prefix(300))")
        }
    }
}
