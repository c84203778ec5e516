import Foundation

/// Request and response bodies of the Docker Engine API (v1.41) that ``DockerEngine`` uses. Podman's
/// compatible API accepts the same; where it answers differently (absent fields, other status codes)
/// the decoding is lenient.
enum DockerAPI {
    struct CreateContainer: Encodable {
        struct HostConfig: Encodable {
            var Memory: Int64
            var MemorySwap: Int64
            var NanoCpus: Int64
            var PidsLimit: Int64
            var SecurityOpt: [String]
            var CapDrop: [String]
            var Binds: [String]
            var PortBindings: [String: [PortBinding]]
            var RestartPolicy: [String: String]
            var DeviceRequests: [DeviceRequest]?
        }

        struct PortBinding: Codable {
            var HostIp: String?
            var HostPort: String?
        }

        /// GPUs by id (`--gpus '"device=0,1"'`): Docker with the NVIDIA container toolkit.
        struct DeviceRequest: Encodable {
            var Driver: String
            var DeviceIDs: [String]
            var Capabilities: [[String]]
        }

        struct Empty: Encodable {}

        var Image: String
        var Cmd: [String]
        var Env: [String]
        var Labels: [String: String]
        var User: String
        var ExposedPorts: [String: Empty]
        var HostConfig: HostConfig
    }

    struct Version: Decodable {
        struct Component: Decodable { var Name: String }
        var Components: [Component]?
    }

    struct Created: Decodable {
        var Id: String
    }

    struct ContainerJSON: Decodable {
        struct State: Decodable {
            var Status: String?
            var Running: Bool?
            var ExitCode: Int?
            var OOMKilled: Bool?
        }

        struct Config: Decodable {
            var Labels: [String: String]?
        }

        struct NetworkSettings: Decodable {
            var Ports: [String: [CreateContainer.PortBinding]?]?
        }

        var Id: String
        var Name: String?
        var State: State?
        var Config: Config?
        var NetworkSettings: NetworkSettings?
    }

    struct ContainerSummary: Decodable {
        var Id: String
        var Names: [String]?
        var Labels: [String: String]?
        var State: String?
    }

    struct Stats: Decodable {
        struct Memory: Decodable {
            var usage: Int64?
            var limit: Int64?
        }

        struct CPU: Decodable {
            struct Usage: Decodable {
                var total_usage: Int64?
            }
            var cpu_usage: Usage?
        }

        struct Pids: Decodable {
            var current: Int?
        }

        var memory_stats: Memory?
        var cpu_stats: CPU?
        var pids_stats: Pids?
    }

    struct ErrorBody: Decodable {
        var message: String?
        var cause: String?
    }

    struct CreateVolume: Encodable {
        var Name: String
        var Labels: [String: String]
    }
}
