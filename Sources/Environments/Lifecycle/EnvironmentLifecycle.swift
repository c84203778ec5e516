import AsyncHTTPClient
import Foundation
import Logging
import NIOCore

/// Starts, watches and stops environments on the hosts of the pool — the Spawner. Launches call ``ensure(_:)``;
/// the first caller for a (student, course) creates the environment and its start runs in
/// ``run()``'s task group, simultaneous callers join it. The store admits and places each new
/// environment; the lifecycle drives the engine of the host it was placed on. Starts that do not become ready within
/// ``startTimeout`` fail, their container is removed, and the student is told why.
public final class EnvironmentLifecycle: Sendable {
    public let engines: any EngineDirectory
    let store: any EnvironmentStore
    let http: HTTPClient
    let installationID: String
    let logger: Logger
    /// How long a start may take before it fails.
    public let startTimeout: Duration
    /// How long a stopping server gets before it is killed (at least 10 s: a kernel needs time).
    public let stopTimeout: Duration
    let materials: CourseMaterials
    /// The Jupyter configuration put into every environment.
    let jupyter: JupyterConfig
    let jobs: AsyncStream<Job>
    let submit: AsyncStream<Job>.Continuation

    enum Job: Sendable {
        case start(EnvironmentRecord)
        case resume(EnvironmentRecord)
        case stop(Int64, StopReason)
    }

    public init(
        engines: any EngineDirectory, store: any EnvironmentStore, http: HTTPClient, installationID: String, logger: Logger, jupyter: JupyterConfig,
        startTimeout: Duration = .seconds(120), stopTimeout: Duration = .seconds(10),
        materials: CourseMaterials = CourseMaterials(cacheDirectory: FileManager.default.temporaryDirectory.appendingPathComponent("portal-materials").path)
    ) {
        self.materials = materials
        self.jupyter = jupyter
        self.engines = engines
        self.store = store
        self.http = http
        self.installationID = installationID
        self.logger = logger
        self.startTimeout = startTimeout
        self.stopTimeout = max(stopTimeout, .seconds(10))
        (jobs, submit) = AsyncStream.makeStream(of: Job.self)
    }

    /// The labels every container of this installation carries.
    public var installationLabels: [String: String] { [Labels.installation: installationID] }

    /// Returns the student's live environment for the course, starting one if there is none.
    public func ensure(_ claim: EnvironmentClaim) async throws -> EnvironmentRecord {
        let (record, created) = try await store.claim(claim)
        if created { submit.yield(.start(record)) }
        return record
    }

    /// Asks for an environment to be stopped; returns at once.
    public func requestStop(_ id: Int64, reason: StopReason) {
        submit.yield(.stop(id, reason))
    }

    /// Runs start and stop jobs until the stream ends or the task is cancelled.
    public func run() async {
        await withDiscardingTaskGroup { group in
            for await job in jobs {
                group.addTask {
                    switch job {
                    case .start(let record): await self.start(record)
                    case .resume(let record): await self.resume(record)
                    case .stop(let id, let reason): await self.stop(id, reason: reason)
                    }
                }
            }
        }
    }

    /// Ends ``run()`` once running jobs finish.
    public func finish() { submit.finish() }

    // MARK: - Start

    /// Drives `record` from requested to ready, or to failed with a message for the student.
    func start(_ record: EnvironmentRecord) async {
        let logger = self.logger.with(environment: record.id)
        let started = ContinuousClock.now
        // The portal's own share of the start: its records and its preparation, not the engine's
        // API calls or the wait for Jupyter.
        var portal = Duration.zero
        func timed<T>(_ work: () async throws -> T) async rethrows -> T {
            let begin = ContinuousClock.now
            defer { portal += ContinuousClock.now - begin }
            return try await work()
        }
        guard var current = try? await timed({ try await store.update(record.id, EnvironmentChange(.starting, message: "Preparing your environment")) }) else {
            logger.warning("environment was no longer requested when its start began")
            return
        }
        do {
            let engine = try await engines.engine(for: record.engine)
            let spec = try await prepare(current, on: engine)
            var id = ""
            for attempt in 1...3 {
                id = try await engine.create(spec)
                current = try await timed { try await store.update(record.id, EnvironmentChange(.starting, message: "Starting the server", containerID: id)) } ?? current
                do {
                    try await engine.start(id)
                    break
                } catch let error as EngineError where attempt < 3 && error.message.contains("address already in use") {
                    // Podman can hand two simultaneous starts the same free port; the loser picks again.
                    logger.notice("published port taken by a simultaneous start; creating the container again", metadata: ["attempt": "\(attempt)"])
                    try await engine.remove(id)
                }
            }
            let upstream = try await waitUntilReady(current, on: engine, containerID: id, deadline: started + startTimeout)
            let total = ContinuousClock.now - started
            let timings = (start: Int(total.milliseconds), portal: Int(portal.milliseconds))
            let ready = try await store.update(
                record.id, EnvironmentChange(.ready, message: "Your environment is ready", containerID: id, upstream: upstream, timings: timings)
            )
            if ready == nil {
                // Stopped while starting: do not leave the container behind.
                try? await engine.remove(id)
            }
            logger.info("environment ready", metadata: ["ms": "\(timings.start)", "portal_ms": "\(timings.portal)", "upstream": "\(upstream)"])
        } catch {
            if Task.isCancelled {
                // The portal is shutting down: leave the start as it is; the next reconcile resumes it.
                logger.notice("start interrupted by shutdown; it resumes when the portal starts again")
                return
            }
            let message = Self.studentMessage(for: error, timeout: startTimeout)
            logger.error("environment failed to start", metadata: ["error": "\(error)"])
            await cleanUp(record)
            _ = try? await store.update(record.id, EnvironmentChange(.failed, message: message, stopReason: .failed))
        }
    }

    /// Creates what the container needs on `engine` (the image, the home volume) and describes it:
    /// the server's secret in its environment, the portal's Jupyter configuration among its files.
    func prepare(_ record: EnvironmentRecord, on engine: any Engine) async throws -> ContainerSpec {
        let profile = record.profile
        var image = ""
        if engine.runsImages {
            guard let named = profile.image else {
                throw EngineError(.failed, "The profile \(profile.slug) has no image, so it cannot run on the container engine \(engine.name).")
            }
            if try await !engine.imageExists(named) {
                try await copyImage(named, to: engine)
            }
            image = named
        }
        try await engine.ensureVolume(record.homeVolume, labels: installationLabels.merging([Labels.user: record.userSlug, Labels.course: record.courseSlug]) { a, _ in a })
        var environment = profile.environment
        environment.merge(JupyterCommand.environment(secret: record.token)) { _, portal in portal }
        environment["PORTAL_BASE_PATH"] = record.basePath
        var command = profile.command
        var mounts = [ContainerSpec.Mount(volume: record.homeVolume, path: "/home/jovyan")]
        if let directory = try materials.hostDirectory(for: profile, version: record.profileVersion) {
            mounts.append(ContainerSpec.Mount(volume: directory, path: CourseMaterials.mountPath, readOnly: true))
            // In a container the server seeds its home itself; the process engine seeds it on the host.
            if engine.runsImages {
                command = CourseMaterials.seeding(command ?? JupyterCommand.arguments(basePath: record.basePath, port: 8888))
            }
        }
        return ContainerSpec(
            name: record.containerName,
            image: image,
            command: command,
            basePath: record.basePath,
            environment: environment,
            labels: installationLabels.merging([
                Labels.environment: String(record.id), Labels.user: record.userSlug, Labels.course: record.courseSlug,
                Labels.profile: "\(profile.slug)@\(record.profileVersion)",
            ]) { a, _ in a },
            memoryBytes: profile.memoryBytes,
            nanoCPUs: Int64((profile.cpu * 1e9).rounded()),
            mounts: mounts,
            gpuDevices: record.gpuIDs,
            files: jupyter.files
        )
    }

    /// Polls the server's `/api/status` with its secret until it answers 200; returns `host:port`.
    func waitUntilReady(_ record: EnvironmentRecord, on engine: any Engine, containerID: String, deadline: ContinuousClock.Instant) async throws -> String {
        var upstream: String?
        var lastInspection = ContinuousClock.now - .seconds(10)
        while ContinuousClock.now < deadline {
            // Ask the engine about the container for its port, then only every few seconds (to notice
            // a server that died: in a class-start burst, inspections compete with the creates);
            // probe Jupyter itself every 100 ms.
            if upstream == nil || ContinuousClock.now - lastInspection >= .seconds(3) {
                lastInspection = .now
                guard let info = try await engine.inspect(containerID) else {
                    throw EngineError(.failed, "The environment's container disappeared while starting.")
                }
                guard info.running || info.state == "created" else {
                    let tail = (try? await engine.logs(containerID, lines: 20)) ?? ""
                    throw StartFailure.exited(code: info.exitCode, oom: info.oomKilled, log: tail)
                }
                if upstream == nil, let address = info.upstream {
                    upstream = address
                    _ = try? await store.update(record.id, EnvironmentChange(.starting, message: "Waiting for Jupyter to answer", upstream: address))
                }
            }
            if let upstream, await JupyterCommand.isReady(http: http, upstream: upstream, basePath: record.basePath, secret: record.token) {
                return upstream
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw StartFailure.timedOut
    }

    func cleanUp(_ record: EnvironmentRecord) async {
        do {
            try await engines.engine(for: record.engine).remove(record.containerName)
        } catch {
            logger.warning("could not remove a failed environment's container", metadata: ["container": "\(record.containerName)", "error": "\(error)"])
        }
    }

    /// Loads `image` onto `engine` from another host of the pool that has it (through the engines'
    /// APIs, streamed: never a registry).
    func copyImage(_ image: String, to engine: any Engine) async throws {
        for (host, source) in try await engines.all() where source.name != engine.name {
            guard (try? await source.imageExists(image)) == true else { continue }
            logger.notice("loading an image onto a host that lacks it", metadata: ["image": "\(image)", "from": "\(host)", "to": "\(engine.name)"])
            try await engine.loadImage(image, from: source)
            return
        }
        throw EngineError(.imageMissing, "The image \(image) is not on \(engine.name), nor on any other host of the pool to copy it from.")
    }

    // MARK: - Stop

    /// Stops the environment: the server gets ``stopTimeout`` to shut down, the container is removed,
    /// a disposable home is deleted.
    func stop(_ id: Int64, reason: StopReason) async {
        guard let record = try? await store.update(id, EnvironmentChange(.stopping, message: "Stopping", stopReason: reason)) else { return }
        do {
            let engine = try await engines.engine(for: record.engine)
            try await engine.stop(record.containerName, timeout: stopTimeout)
            try await engine.remove(record.containerName)
            if record.profile.persistence == .disposable {
                try await engine.removeVolume(record.homeVolume)
            }
            _ = try await store.update(id, EnvironmentChange(.stopped, message: reason.explanation, stopReason: reason))
        } catch {
            logger.with(environment: id).error("stopping failed", metadata: ["error": "\(error)"])
            _ = try? await store.update(id, EnvironmentChange(.failed, message: "Stopping failed: \(error)", stopReason: reason))
        }
    }

    static func studentMessage(for error: any Error, timeout: Duration) -> String {
        switch error {
        case let failure as StartFailure:
            return failure.studentMessage(timeout: timeout)
        case let error as EngineError where error.kind == .imageMissing:
            return "Your course's environment is not installed on the server yet. Please tell your course team; they can fix it (\(error.message))"
        case let error as EngineError where error.kind == .unreachable:
            return "The server that runs environments is not answering. Please try again in a few minutes."
        default:
            return "Your environment could not be started: \(error)"
        }
    }
}

/// Why a start failed, for the student and the logs.
enum StartFailure: Error, CustomStringConvertible {
    case exited(code: Int?, oom: Bool, log: String)
    case timedOut

    func studentMessage(timeout: Duration) -> String {
        switch self {
        case .exited(_, true, _):
            return "Your environment ran out of memory while starting. Please tell your course team."
        case .exited:
            return "Your environment stopped while starting. Please try again; if it happens again, tell your course team."
        case .timedOut:
            return "Your environment did not start within \(timeout.components.seconds) seconds. Please try again."
        }
    }

    var description: String {
        switch self {
        case .exited(let code, let oom, let log): "the server exited while starting (code \(code.map(String.init) ?? "?"), out of memory: \(oom)): \(log.suffix(1000))"
        case .timedOut: "the server did not answer /api/status in time"
        }
    }
}

/// The labels on every container the portal starts.
public enum Labels {
    public static let installation = "portal.installation"
    public static let environment = "portal.environment"
    public static let user = "portal.user"
    public static let course = "portal.course"
    public static let profile = "portal.profile"
}

extension Logger {
    func with(environment id: Int64) -> Logger {
        var copy = self
        copy[metadataKey: "environment"] = "\(id)"
        return copy
    }
}

extension Duration {
    var milliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
}
