import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// One host's Docker Engine API (v1.41), over a unix socket or TCP: the container calls here, the
/// ``Engine`` seam built on them in `DockerEngine+Engine.swift`. Works with Docker and with Podman's
/// compatible service; no behaviour depends on the server's version string.
public struct DockerEngine: Engine {
    public let name: String
    /// The other hosts of the pool, to copy an image from when this host lacks it.
    public var imageSources = ImageSources.none
    let base: String
    let client: HTTPClient
    /// Whether the engine is Podman, once asked.
    let flavour = EngineFlavour()
    private let timeout: TimeAmount
    /// The host address environment ports are published on (where the portal reaches them).
    public let publishAddress: String

    /// - Parameters:
    ///   - endpoint: `unix:///run/podman/podman.sock`, a plain socket path, or `tcp://host:port`.
    ///   - name: how the engine is named in records; defaults to the endpoint.
    ///   - client: the shared HTTP client (its lifetime is the caller's).
    ///   - publishAddress: the host address ports are published on; loopback for a local engine,
    ///     the host's address for one the portal reaches over the network.
    public init(endpoint: String, name: String? = nil, client: HTTPClient, timeout: Duration = .seconds(60), publishAddress: String = "127.0.0.1") throws {
        self.publishAddress = publishAddress
        if endpoint.hasPrefix("tcp://") {
            base = "http://" + endpoint.dropFirst("tcp://".count)
        } else if endpoint.hasPrefix("http://") || endpoint.hasPrefix("https://") {
            base = endpoint
        } else {
            let path = endpoint.hasPrefix("unix://") ? String(endpoint.dropFirst("unix://".count)) : endpoint
            guard path.hasPrefix("/"), let encoded = path.addingPercentEncoding(withAllowedCharacters: .alphanumerics) else {
                throw EngineError(.failed, "The engine endpoint \(endpoint) is not unix:///path, /path or tcp://host:port.")
            }
            base = "http+unix://\(encoded)"
        }
        self.name = name ?? endpoint
        self.client = client
        self.timeout = .seconds(Int64(timeout.components.seconds))
    }

    /// Checks that the engine answers `_ping` within 5 seconds.
    public func ping() async throws {
        _ = try await request(.GET, "/_ping", accept: [200], deadline: .seconds(5))
    }

    /// Whether `image` is present on the host (never pulled: images come from the portal's own build).
    public func imageExists(_ image: String) async throws -> Bool {
        // Image names keep their slashes in the path (`/images/localhost/portal-jupyter:1/json`).
        let name = image.split(separator: "/").map { escape(String($0)) }.joined(separator: "/")
        let response = try await request(.GET, "/images/\(name)/json", accept: [200, 404])
        return response.status == 200
    }

    /// Creates the named volume if it does not exist.
    public func ensureVolume(_ name: String, labels: [String: String]) async throws {
        let existing = try await request(.GET, "/volumes/\(escape(name))", accept: [200, 404])
        guard existing.status == 404 else { return }
        _ = try await request(.POST, "/volumes/create", body: DockerAPI.CreateVolume(Name: name, Labels: labels), accept: [200, 201])
    }

    /// Removes the named volume; a missing one is not an error.
    public func removeVolume(_ name: String) async throws {
        _ = try await request(.DELETE, "/volumes/\(escape(name))?force=true", accept: [204, 404])
    }

    /// Creates the container and puts ``ContainerSpec/files`` into it.
    public func createContainer(_ spec: ContainerSpec) async throws -> String {
        // Podman's compatible API ignores GPU requests; its own API takes them as CDI devices.
        if !spec.gpuDevices.isEmpty, try await isPodman() { return try await createWithLibpod(spec) }
        let response = try await request(
            .POST, "/containers/create?name=\(escape(spec.name))", body: Self.createBody(spec, publishAddress: publishAddress), accept: [201], missingImage: spec.image
        )
        let id = try JSONDecoder().decode(DockerAPI.Created.self, from: response.body).Id
        try await put(spec.files, into: id)
        return id
    }

    /// Extracts `files` into the created container at `/` (`PUT /containers/{id}/archive`, a ustar
    /// of regular files only), before it starts: the engine may be on another machine, so nothing is
    /// bind-mounted from the portal's. A container that cannot take them is removed.
    func put(_ files: [ContainerSpec.File], into id: String) async throws {
        guard !files.isEmpty else { return }
        do {
            let entries = try files.map { TarArchive.Entry(path: try $0.relativePath(), contents: $0.contents, mode: $0.mode) }
            _ = try await request(.PUT, "/containers/\(escape(id))/archive?path=%2F&noOverwriteDirNonDir=true", archive: try TarArchive.ustar(entries), accept: [200])
        } catch {
            let reason = String(describing: error).prefix(400)
            let kind = (error as? EngineError)?.kind ?? .failed
            do {
                try await removeContainer(id)
            } catch {
                throw EngineError(kind, "\(name) did not take the environment's files (\(reason)), and removing the container failed: \(error)")
            }
            throw EngineError(kind, "\(name) did not take the environment's files: \(reason)")
        }
    }

    /// The create request for `spec`: limits, no new privileges, no capabilities, a pids limit, the
    /// home volume, and the server's port published on `publishAddress` only (loopback for a local
    /// engine). GPUs are requested by id from the NVIDIA runtime.
    static func createBody(_ spec: ContainerSpec, publishAddress: String = "127.0.0.1") -> DockerAPI.CreateContainer {
        let port = "\(spec.port)/tcp"
        return DockerAPI.CreateContainer(
            Image: spec.image,
            Cmd: spec.command ?? JupyterCommand.arguments(basePath: spec.basePath, port: spec.port),
            Env: spec.environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" },
            Labels: spec.labels,
            User: spec.user,
            ExposedPorts: [port: .init()],
            HostConfig: .init(
                Memory: spec.memoryBytes,
                MemorySwap: spec.memoryBytes,
                NanoCpus: spec.nanoCPUs,
                PidsLimit: spec.pidsLimit,
                SecurityOpt: ["no-new-privileges"],
                CapDrop: ["ALL"],
                Binds: spec.mounts.map { "\($0.volume):\($0.path)\($0.readOnly ? ":ro" : "")" },
                PortBindings: [port: [.init(HostIp: publishAddress, HostPort: "")]],
                RestartPolicy: ["Name": "no"],
                DeviceRequests: spec.gpuDevices.isEmpty ? nil : [.init(Driver: "nvidia", DeviceIDs: spec.gpuDevices, Capabilities: [["gpu"]])]
            )
        )
    }

    /// Starts a created container.
    /// - Throws: ``EngineError`` (`portConflict` when its published port was taken meanwhile).
    public func startContainer(_ id: String) async throws {
        _ = try await request(.POST, "/containers/\(escape(id))/start", accept: [204, 304])
    }

    /// The container's state, or `nil` when it does not exist.
    public func inspectContainer(_ id: String) async throws -> ContainerInfo? {
        let response = try await request(.GET, "/containers/\(escape(id))/json", accept: [200, 404])
        guard response.status == 200 else { return nil }
        let json = try JSONDecoder().decode(DockerAPI.ContainerJSON.self, from: response.body)
        var published: (String, Int)?
        if let ports = json.NetworkSettings?.Ports {
            for case let bindings? in ports.values {
                if let binding = bindings.first, let text = binding.HostPort, let port = Int(text) {
                    published = (binding.HostIp.flatMap { $0.isEmpty || $0 == "0.0.0.0" || $0 == "::" ? nil : $0 } ?? publishAddress, port)
                }
            }
        }
        return ContainerInfo(
            id: json.Id,
            name: (json.Name ?? "").trimmingCharacters(in: CharacterSet(charactersIn: "/")),
            labels: json.Config?.Labels ?? [:],
            state: json.State?.Status ?? "unknown",
            running: json.State?.Running ?? false,
            exitCode: json.State?.ExitCode,
            oomKilled: json.State?.OOMKilled ?? false,
            published: published
        )
    }

    /// Asks the container to stop, killing it after `timeout`.
    public func stopContainer(_ id: String, timeout: Duration) async throws {
        let seconds = max(1, timeout.components.seconds)
        _ = try await request(.POST, "/containers/\(escape(id))/stop?t=\(seconds)", accept: [204, 304, 404], deadline: .seconds(seconds + 30))
    }

    /// Removes the container (not its volumes); a missing one is not an error.
    public func removeContainer(_ id: String) async throws {
        _ = try await request(.DELETE, "/containers/\(escape(id))?force=true&v=false", accept: [200, 204, 404])
    }

    /// Every container (running or not) carrying all of `labels`.
    public func listContainers(labels: [String: String]) async throws -> [ContainerInfo] {
        let filters = ["label": labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }]
        let encoded = String(decoding: try JSONEncoder().encode(filters), as: UTF8.self)
        let response = try await request(.GET, "/containers/json?all=true&filters=\(escape(encoded))", accept: [200])
        return try JSONDecoder().decode([DockerAPI.ContainerSummary].self, from: response.body).map {
            ContainerInfo(
                id: $0.Id,
                name: ($0.Names?.first ?? "").trimmingCharacters(in: CharacterSet(charactersIn: "/")),
                labels: $0.Labels ?? [:],
                state: $0.State ?? "unknown",
                running: $0.State == "running"
            )
        }
    }

    /// Resource use of a running container.
    public func stats(_ id: String) async throws -> ContainerStats {
        let response = try await request(.GET, "/containers/\(escape(id))/stats?stream=false", accept: [200])
        let stats = try JSONDecoder().decode(DockerAPI.Stats.self, from: response.body)
        return ContainerStats(
            memoryBytes: stats.memory_stats?.usage ?? 0,
            memoryLimitBytes: stats.memory_stats?.limit ?? 0,
            cpuNanoseconds: stats.cpu_stats?.cpu_usage?.total_usage ?? 0,
            pids: stats.pids_stats?.current ?? 0
        )
    }

    /// The last `lines` lines the container printed.
    public func containerLogs(_ id: String, lines: Int) async throws -> String {
        let response = try await request(.GET, "/containers/\(escape(id))/logs?stdout=true&stderr=true&tail=\(lines)", accept: [200, 404])
        return Self.demultiplex(response.body)
    }

    /// Log streams without a TTY come in frames: 1 byte stream, 3 zero bytes, 4 bytes big-endian length.
    static func demultiplex(_ data: Data) -> String {
        var bytes = [UInt8](data)
        guard bytes.count >= 8, bytes[0] <= 2, bytes[1] == 0, bytes[2] == 0, bytes[3] == 0 else {
            return String(decoding: bytes, as: UTF8.self)
        }
        var output = [UInt8]()
        while bytes.count >= 8 {
            let length = Int(bytes[4]) << 24 | Int(bytes[5]) << 16 | Int(bytes[6]) << 8 | Int(bytes[7])
            let end = min(bytes.count, 8 + length)
            output += bytes[8..<end]
            bytes.removeFirst(end)
        }
        return String(decoding: output, as: UTF8.self)
    }

    // MARK: - HTTP

    struct Reply {
        var status: Int
        var body: Data
    }

    func escape(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed.subtracting(CharacterSet(charactersIn: "/?&=+#"))) ?? text
    }

    func request(
        _ method: HTTPMethod, _ path: String, body: (some Encodable)? = Optional<DockerAPI.CreateVolume>.none, archive: Data? = nil, accept: Set<Int>,
        missingImage: String? = nil, deadline: Duration? = nil, api: String = "/v1.41"
    ) async throws -> Reply {
        var request = HTTPClientRequest(url: base + api + path)
        request.method = method
        // Over a unix socket there is no host name; Podman (Go's net/http) insists on a Host header.
        request.headers.replaceOrAdd(name: "Host", value: "localhost")
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: try JSONEncoder().encode(body)))
        } else if let archive {
            request.headers.add(name: "Content-Type", value: "application/x-tar")
            request.body = .bytes(ByteBuffer(data: archive))
        }
        let response: HTTPClientResponse
        let limit = deadline.map { TimeAmount.seconds($0.components.seconds) } ?? timeout
        do {
            response = try await client.execute(request, timeout: limit)
        } catch {
            throw EngineError(.unreachable, "The container engine \(name) cannot be reached: \(error). Is its API service running?")
        }
        let data = Data(buffer: try await response.body.collect(upTo: 64 << 20))
        let status = Int(response.status.code)
        if accept.contains(status) { return Reply(status: status, body: data) }
        throw refusal(status: status, body: data, method: method.rawValue, path: path, missingImage: missingImage)
    }

    /// The ``EngineError`` for an answer the call did not accept, its kind read from the status and
    /// the engine's message (Docker and Podman word them alike): a missing image, a published port
    /// taken meanwhile, a name in use, a missing object, or anything else.
    func refusal(status: Int, body: Data, method: String, path: String, missingImage: String?) -> EngineError {
        let detail = (try? JSONDecoder().decode(DockerAPI.ErrorBody.self, from: body)).flatMap { $0.message ?? $0.cause }
            ?? String(decoding: body.prefix(300), as: UTF8.self)
        if let missingImage, status == 404 || detail.contains("no such image") || detail.contains("image not known") {
            return EngineError(.imageMissing, "The image \(missingImage) is not on \(name). Build or load it there first (scripts/engine/build-image.sh).")
        }
        if detail.contains("address already in use") {
            return EngineError(.portConflict, "\(name): \(detail)")
        }
        if status == 409 || detail.contains("already in use") {
            return EngineError(.conflict, "\(name): \(detail)")
        }
        if status == 404 {
            return EngineError(.notFound, "\(name): \(detail)")
        }
        return EngineError(.failed, "\(name) answered \(status) to \(method) \(path.split(separator: "?").first ?? ""): \(detail)")
    }
}
