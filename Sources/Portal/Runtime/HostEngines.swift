import AsyncHTTPClient
import Environments
import Foundation
import Logging
import NIOCore
import NIOSSL
import Synchronization

/// The engines of the pool, built from the hosts table on first use: a host added on any replica
/// is usable here. Engines reached over TCP with TLS get their own HTTP client with the host's CA
/// and client certificate; they are shut down with ``shutdown()``.
final class HostEngines: EngineDirectory {
    private struct Entry {
        var host: Host
        var engine: any Engine
        var client: HTTPClient?
    }

    private let hosts: HostRepository
    private let http: HTTPClient
    /// The sandboxed process engine, for a host of kind `process`.
    private let processEngine: (any Engine)?
    private let entries = Mutex<[String: Entry]>([:])

    init(hosts: HostRepository, http: HTTPClient, processEngine: (any Engine)? = nil) {
        self.hosts = hosts
        self.http = http
        self.processEngine = processEngine
    }

    func engine(for name: String) async throws -> any Engine {
        if let engine = entries.withLock({ $0[name]?.engine }) { return engine }
        guard let host = try await hosts.find(name) else { throw EngineError(.notFound, "The host \(name) is not in the pool (portal host list).") }
        return try engine(of: host)
    }

    /// Every host whose engine can be built (one that cannot is logged and left out).
    func all() async throws -> [(host: String, engine: any Engine)] {
        try await hosts.loads().compactMap { load in
            do {
                return (load.host.name, try engine(of: load.host))
            } catch {
                Logger(label: "portal.hosts").warning("host left out: its engine cannot be used", metadata: ["host": "\(load.host.name)", "error": "\(error)"])
                return nil
            }
        }
    }

    /// The engine for `host`, built again when its description changed.
    func engine(of host: Host) throws -> any Engine {
        if let entry = entries.withLock({ $0[host.name] }), entry.host == Self.comparable(host) { return entry.engine }
        let entry = try make(host)
        let replaced = entries.withLock { entries in
            defer { entries[host.name] = entry }
            return entries[host.name]?.client
        }
        if let replaced { Task { try? await replaced.shutdown() } }
        return entry.engine
    }

    /// Shuts down the TLS clients.
    func shutdown() async {
        let clients = entries.withLock { entries in
            defer { entries.removeAll() }
            return entries.values.compactMap(\.client)
        }
        for client in clients { try? await client.shutdown() }
    }

    private func make(_ host: Host) throws -> Entry {
        let host = Self.comparable(host)
        switch host.kind {
        case .process:
            guard let processEngine else {
                throw EngineError(.failed, "The host \(host.name) is a process-engine host, but this portal runs the container engine (environments.engine).")
            }
            return Entry(host: host, engine: processEngine)
        case .docker:
            guard let tls = host.tls else {
                return Entry(host: host, engine: try docker(endpoint: host.endpoint, of: host, client: http))
            }
            var configuration = TLSConfiguration.makeClientConfiguration()
            do {
                configuration.trustRoots = .file(tls.caFile)
                configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(tls.certificateFile).map { .certificate($0) }
                configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: tls.keyFile, format: .pem))
            } catch {
                throw EngineError(.failed, "The TLS files of host \(host.name) cannot be read (\(tls.certificateFile), \(tls.keyFile)): \(error)")
            }
            var clientConfiguration = Self.clientConfiguration
            clientConfiguration.tlsConfiguration = configuration
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: clientConfiguration)
            let endpoint = "https://" + host.endpoint.dropFirst("tcp://".count)
            do {
                return Entry(host: host, engine: try docker(endpoint: endpoint, of: host, client: client), client: client)
            } catch {
                try? client.syncShutdown()
                throw error
            }
        }
    }

    /// The container engine of `host`, copying images it lacks from the pool's other container hosts.
    private func docker(endpoint: String, of host: Host, client: HTTPClient) throws -> DockerEngine {
        var engine = try DockerEngine(endpoint: endpoint, name: host.name, client: client, publishAddress: host.publishAddress)
        engine.imageSources = ImageSources { [weak self] in
            try await self?.all().compactMap { $0.engine as? DockerEngine } ?? []
        }
        return engine
    }

    /// The HTTP client settings for engines and servers: no redirects, and enough connections per
    /// host that a class-start burst of creates and starts never queues in the portal (where a
    /// health check stuck behind them would time out and mark a busy host down); the engine
    /// itself decides how much to do at once.
    static var clientConfiguration: HTTPClient.Configuration {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 512)
        return configuration
    }

    /// The parts of a host that its engine depends on (not its drain flag or health).
    private static func comparable(_ host: Host) -> Host {
        var copy = host
        copy.draining = false
        copy.health = .unknown
        copy.labels = [:]
        copy.capacity = Capacity(cpu: 1, memoryBytes: 1)
        return copy
    }
}

/// The pool's host (Foundation has a `Host` too).
typealias Host = Environments.Host
