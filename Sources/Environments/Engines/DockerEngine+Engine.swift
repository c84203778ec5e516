import Foundation
import Logging

/// Where a host that lacks an image copies it from: the engines of the pool's other hosts.
public struct ImageSources: Sendable {
    let engines: @Sendable () async throws -> [DockerEngine]

    /// - Parameter engines: the container engines to look in, asked each time an image is missing.
    public init(_ engines: @escaping @Sendable () async throws -> [DockerEngine]) {
        self.engines = engines
    }

    /// No other host: a missing image is an error.
    public static let none = ImageSources { [] }
}

extension DockerEngine {
    /// How often a create is repeated when the published port it was handed is taken by a
    /// simultaneous start (Podman can hand two starts the same free port).
    static let portAttempts = 3

    /// Starts the environment as a container: copies its image from another host of the pool if
    /// this one lacks it, creates its home volume, creates the container with its files and starts
    /// it (again with a fresh port if the one it was handed was taken). Course materials are copied
    /// into the home by the container's own command, once.
    public func start(_ spec: EnvironmentSpec) async throws -> String {
        guard let image = spec.image else {
            throw EngineError(.failed, "The environment \(spec.name) has no image, so it cannot run on the container engine \(name).")
        }
        if try await !imageExists(image) {
            try await copyImage(image)
        }
        try await ensureVolume(spec.home.name, labels: spec.home.labels)
        var command = spec.command
        if spec.materials != nil {
            command = CourseMaterials.seeding(command ?? JupyterCommand.arguments(basePath: spec.basePath, port: 8888))
        }
        let container = ContainerSpec(spec, image: image, command: command)
        for attempt in 1...Self.portAttempts {
            let id = try await createContainer(container)
            do {
                try await startContainer(id)
                return id
            } catch let error as EngineError where error.kind == .portConflict && attempt < Self.portAttempts {
                try await removeContainer(id)
            } catch {
                do {
                    try await removeContainer(id)
                } catch let removal {
                    throw EngineError((error as? EngineError)?.kind ?? .failed, "\(error) (and removing the container that did not start failed: \(removal))")
                }
                throw error
            }
        }
        throw EngineError(.portConflict, "\(name): the published port was taken \(Self.portAttempts) times in a row.")
    }

    public func poll(_ environment: String) async throws -> EnvironmentStatus {
        guard let info = try await inspectContainer(environment) else { return .gone }
        if info.running { return .running(upstream: info.upstream) }
        if info.state == "created" { return .starting }
        let log: String
        do {
            log = try await containerLogs(environment, lines: 20)
        } catch {
            log = "(its output could not be read: \(error))"
        }
        return .exited(code: info.exitCode, outOfMemory: info.oomKilled, log: log)
    }

    public func stop(_ environment: String, timeout: Duration) async throws {
        try await stopContainer(environment, timeout: timeout)
        try await removeContainer(environment)
    }

    public func deleteHome(_ home: String) async throws {
        try await removeVolume(home)
    }

    public func list(installation: String) async throws -> [EnvironmentInstance] {
        try await listContainers(labels: [Labels.installation: installation]).map {
            EnvironmentInstance(id: $0.id, name: $0.name, labels: $0.labels, running: $0.running)
        }
    }

    /// Loads `image` onto this host from another host of the pool that has it (through the
    /// engines' APIs, streamed: never a registry).
    func copyImage(_ image: String) async throws {
        var unanswered = [String]()
        for source in try await imageSources.engines() where source.name != name {
            let present: Bool
            do {
                present = try await source.imageExists(image)
            } catch {
                unanswered.append("\(source.name): \(error)")
                continue
            }
            guard present else { continue }
            try await loadImage(image, from: source)
            return
        }
        let also = unanswered.isEmpty ? "" : " (hosts that did not answer: \(unanswered.joined(separator: "; ")))"
        throw EngineError(.imageMissing, "The image \(image) is not on \(name), nor on any other host of the pool to copy it from\(also).")
    }
}
