@testable import Environments
import AsyncHTTPClient
import Foundation
import TestSupport
import Testing

@Suite("Docker Engine API requests")
struct DockerEngineTests {
    /// Errors are told apart by kind, never by matching their text at the caller: the port a
    /// start was handed taken by a simultaneous one is `portConflict` (the start retries with a
    /// fresh port), a name in use `conflict`.
    @Test func refusalsAreSortedIntoKinds() throws {
        let engine = try DockerEngine(endpoint: "unix:///unused", name: "podman@test", client: .shared)
        func kind(_ status: Int, _ message: String, image: String? = nil) -> EngineError.Kind {
            engine.refusal(status: status, body: Data(#"{"message": "\#(message)"}"#.utf8), method: "POST", path: "/containers/x/start", missingImage: image).kind
        }
        #expect(kind(500, "rootlessport listen tcp 127.0.0.1:40123: bind: address already in use") == .portConflict)
        #expect(kind(409, "the container name \"portal-x\" is already in use") == .conflict)
        #expect(kind(404, "no such container") == .notFound)
        #expect(kind(404, "no such image", image: "localhost/x:1") == .imageMissing)
        #expect(kind(500, "crun: cgroup write EACCES") == .failed)
        let failed = engine.refusal(status: 500, body: Data("not json".utf8), method: "POST", path: "/containers/x/start?t=1", missingImage: nil)
        #expect(failed.message == "podman@test answered 500 to POST /containers/x/start: not json")
    }

    @Test func theCreateBodyCarriesLimitsLabelsAndALoopbackPort() throws {
        let spec = ContainerSpec(
            name: "portal-x", image: "localhost/portal-jupyter:1", command: ["jupyter", "server"], environment: ["JUPYTER_TOKEN": "t", "A": "1"],
            labels: ["portal.installation": "abc"], memoryBytes: 256 << 20, nanoCPUs: 500_000_000,
            mounts: [.init(volume: "portal-home-c-u", path: "/home/jovyan")]
        )
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(DockerEngine.createBody(spec))) as? [String: Any]
        let host = try #require(json?["HostConfig"] as? [String: Any])
        #expect(json?["Image"] as? String == "localhost/portal-jupyter:1")
        #expect(json?["Env"] as? [String] == ["A=1", "JUPYTER_TOKEN=t"])
        #expect(json?["User"] as? String == "1000:100")
        #expect(host["Memory"] as? Int == 256 << 20)
        #expect(host["MemorySwap"] as? Int == 256 << 20)
        #expect(host["NanoCpus"] as? Int == 500_000_000)
        #expect(host["PidsLimit"] as? Int == 1024)
        #expect(host["SecurityOpt"] as? [String] == ["no-new-privileges"])
        #expect(host["CapDrop"] as? [String] == ["ALL"])
        #expect(host["Binds"] as? [String] == ["portal-home-c-u:/home/jovyan"])
        let bindings = try #require((host["PortBindings"] as? [String: [[String: String]]])?["8888/tcp"])
        #expect(bindings == [["HostIp": "127.0.0.1", "HostPort": ""]])
        #expect(host["DeviceRequests"] == nil)
    }

    @Test func gpusAreRequestedByIDFromDockerAndAsCDIDevicesFromPodman() throws {
        let spec = ContainerSpec(
            name: "portal-g", image: "img", command: nil, basePath: "/user/u/c/", memoryBytes: 1 << 30, nanoCPUs: 1_500_000_000,
            mounts: [.init(volume: "home", path: "/home/jovyan"), .init(volume: "/srv/materials", path: "/materials", readOnly: true)], gpuDevices: ["0", "3"]
        )
        let docker = try JSONSerialization.jsonObject(with: JSONEncoder().encode(DockerEngine.createBody(spec, publishAddress: "10.0.0.2"))) as? [String: Any]
        let host = try #require(docker?["HostConfig"] as? [String: Any])
        let requests = try #require(host["DeviceRequests"] as? [[String: Any]])
        #expect(requests.first?["DeviceIDs"] as? [String] == ["0", "3"] && requests.first?["Driver"] as? String == "nvidia")
        #expect((host["PortBindings"] as? [String: [[String: String]]])?["8888/tcp"] == [["HostIp": "10.0.0.2", "HostPort": ""]])
        let podman = try JSONSerialization.jsonObject(with: JSONEncoder().encode(DockerEngine.libpodCreateBody(spec, publishAddress: "10.0.0.2"))) as? [String: Any]
        #expect(podman?["devices"] as? [[String: String]] == [["path": "nvidia.com/gpu=0"], ["path": "nvidia.com/gpu=3"]])
        let limits = try #require(podman?["resource_limits"] as? [String: [String: Int]])
        #expect(limits["cpu"] == ["quota": 150_000, "period": 100_000] && limits["memory"] == ["limit": 1 << 30, "swap": 1 << 30] && limits["pids"] == ["limit": 1024])
        let volume = try #require((podman?["volumes"] as? [[String: Any]])?.first)
        #expect(volume["Name"] as? String == "home" && volume["Dest"] as? String == "/home/jovyan" && (volume["Options"] as? [String])?.isEmpty == true)
        let mount = try #require((podman?["mounts"] as? [[String: Any]])?.first)
        #expect(mount["source"] as? String == "/srv/materials" && mount["options"] as? [String] == ["ro", "rbind"])
        #expect(podman?["cap_drop"] as? [String] == ["ALL"] && podman?["no_new_privileges"] as? Bool == true && podman?["user"] as? String == "1000:100")
    }

    @Test func logStreamsAreDemultiplexed() {
        var frames = Data([1, 0, 0, 0, 0, 0, 0, 6]) + Data("hello\n".utf8)
        frames += Data([2, 0, 0, 0, 0, 0, 0, 4]) + Data("err\n".utf8)
        #expect(DockerEngine.demultiplex(frames) == "hello\nerr\n")
        #expect(DockerEngine.demultiplex(Data("plain tty output".utf8)) == "plain tty output")
    }

    @Test func jupyterIsStartedUnderItsBasePathWithItsSecretInTheEnvironmentOnly() {
        let arguments = JupyterCommand.arguments(basePath: "/user/abc/def/", port: 8888)
        #expect(arguments.contains("--ServerApp.base_url=/user/abc/def/"))
        #expect(arguments.contains("--port=8888"))
        #expect(!arguments.contains { $0.lowercased().contains("token") || $0.lowercased().contains("secret") })
        #expect(JupyterCommand.environment(secret: "s") == ["PORTAL_SERVER_SECRET": "s", "JUPYTER_CONFIG_PATH": "/etc/portal/jupyter"])
    }

    @Test func thePortalsJupyterConfigurationIsReadFromTheCheckout() throws {
        let directory = TestEnvironment.repositoryRoot.appendingPathComponent(JupyterConfig.directoryName).path
        let config = try JupyterConfig(directory: directory)
        let server = try #require(config.files.first { $0.path == "/etc/portal/jupyter/jupyter_server_config.py" })
        #expect(server.mode == 0o644)
        let text = String(decoding: server.contents, as: UTF8.self)
        #expect(text.contains("identity_provider_class") && text.contains("\"\(JupyterCommand.secretHeader)\"") && text.contains("\"\(JupyterCommand.secretVariable)\""))
        #expect(throws: ResourceError.self) { try JupyterConfig(directory: directory + "/nowhere") }
        #expect(throws: ResourceError.self) { try JupyterConfig(directory: TestEnvironment.repositoryRoot.appendingPathComponent("Templates").path) }
    }

    @Test func endpoints() throws {
        let client = HTTPClientHolder.client
        #expect(try DockerEngine(endpoint: "unix:///run/podman/podman.sock", client: client).name == "unix:///run/podman/podman.sock")
        #expect(try DockerEngine(endpoint: "tcp://10.0.0.2:2375", name: "host-a", client: client).name == "host-a")
        #expect(throws: EngineError.self) { try DockerEngine(endpoint: "ftp://x", client: client) }
    }
}
