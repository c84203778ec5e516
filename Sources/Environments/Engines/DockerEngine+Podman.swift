import Foundation
import NIOHTTP1
import Synchronization

/// What kind of server answers the Docker Engine API, asked once (`GET /version`).
final class EngineFlavour: Sendable {
    let podman = Mutex<Bool?>(nil)
}

extension DockerEngine {
    /// Whether the engine is Podman (its `/version` lists a "Podman Engine" component).
    func isPodman() async throws -> Bool {
        if let known = flavour.podman.withLock({ $0 }) { return known }
        let reply = try await request(.GET, "/version", accept: [200])
        let version = try JSONDecoder().decode(DockerAPI.Version.self, from: reply.body)
        let podman = version.Components?.contains { $0.Name.localizedCaseInsensitiveContains("podman") } ?? false
        flavour.podman.withLock { $0 = podman }
        return podman
    }

    /// Creates the container through Podman's own API (`/v4.0.0/libpod/containers/create`), which
    /// takes GPUs as CDI device names (`nvidia.com/gpu=<id>`, from `nvidia-ctk cdi generate`), with
    /// the same limits, user, labels, mounts, published port and files as the compatible path.
    func createWithLibpod(_ spec: ContainerSpec) async throws -> String {
        let response = try await request(
            .POST, "/libpod/containers/create", body: Self.libpodCreateBody(spec, publishAddress: publishAddress), accept: [201], missingImage: spec.image,
            api: "/v4.0.0"
        )
        let id = try JSONDecoder().decode(DockerAPI.Created.self, from: response.body).Id
        try await put(spec.files, into: id)
        return id
    }

    static func libpodCreateBody(_ spec: ContainerSpec, publishAddress: String) -> LibpodAPI.Create {
        let period: Int64 = 100_000
        return LibpodAPI.Create(
            name: spec.name,
            image: spec.image,
            command: spec.command ?? JupyterCommand.arguments(basePath: spec.basePath, port: spec.port),
            env: spec.environment,
            labels: spec.labels,
            user: spec.user,
            resource_limits: .init(
                memory: .init(limit: spec.memoryBytes, swap: spec.memoryBytes), cpu: .init(quota: spec.nanoCPUs * period / 1_000_000_000, period: period),
                pids: .init(limit: spec.pidsLimit)
            ),
            no_new_privileges: true,
            cap_drop: ["ALL"],
            volumes: spec.mounts.filter { !$0.volume.hasPrefix("/") }.map { .init(Name: $0.volume, Dest: $0.path, Options: $0.readOnly ? ["ro"] : []) },
            mounts: spec.mounts.filter { $0.volume.hasPrefix("/") }.map {
                .init(destination: $0.path, type: "bind", source: $0.volume, options: $0.readOnly ? ["ro", "rbind"] : ["rbind"])
            },
            portmappings: [.init(host_ip: publishAddress, container_port: spec.port, host_port: 0, protocol: "tcp")],
            devices: spec.gpuDevices.map { .init(path: "nvidia.com/gpu=\($0)") },
            restart_policy: "no"
        )
    }
}

/// Request bodies of Podman's own API (v4) that ``DockerEngine`` uses for GPU containers.
enum LibpodAPI {
    struct Create: Encodable {
        struct Limits: Encodable {
            struct Memory: Encodable { var limit: Int64; var swap: Int64 }
            struct CPU: Encodable { var quota: Int64; var period: Int64 }
            struct Pids: Encodable { var limit: Int64 }
            var memory: Memory
            var cpu: CPU
            var pids: Pids
        }
        struct Volume: Encodable { var Name: String; var Dest: String; var Options: [String] }
        struct Mount: Encodable { var destination: String; var type: String; var source: String; var options: [String] }
        struct Port: Encodable { var host_ip: String; var container_port: Int; var host_port: Int; var `protocol`: String }
        struct Device: Encodable { var path: String }

        var name: String
        var image: String
        var command: [String]
        var env: [String: String]
        var labels: [String: String]
        var user: String
        var resource_limits: Limits
        var no_new_privileges: Bool
        var cap_drop: [String]
        var volumes: [Volume]
        var mounts: [Mount]
        var portmappings: [Port]
        var devices: [Device]
        var restart_policy: String
    }
}
