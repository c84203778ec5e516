import AsyncHTTPClient
import Foundation
import Logging

/// Starts, watches and stops environments on the hosts of the pool. Launches call ``ensure(_:)``;
/// the first caller for a (student, course) creates the environment and its start runs in
/// ``run()``'s task group, simultaneous callers join it. The store admits and places each new
/// environment; the lifecycle drives the ``Engine`` of the host it was placed on through the
/// engine seam alone (start, poll, stop, list) and probes readiness itself. Starts that do not
/// become ready within ``startTimeout`` fail, what they started is removed, and the student is told
/// why in plain words (the engine's own error goes to the log and the environment's events). A
/// store call that fails is retried (``StoreRetry``), then logged with the environment's id.
public final class EnvironmentLifecycle: Sendable {
    public let engines: any EngineDirectory
    let store: any EnvironmentStore
    /// Asks a started server whether it answers.
    let probe: any ReadinessProbe
    /// How failed store calls are retried.
    let retry: StoreRetry
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

    /// - Parameters:
    ///   - probe: how readiness is probed; ``JupyterProbe`` (Jupyter's `/api/status` with the server's secret).
    ///   - retry: how failed store calls are retried before they are logged as errors.
    public init(
        engines: any EngineDirectory, store: any EnvironmentStore, probe: any ReadinessProbe, installationID: String, logger: Logger, jupyter: JupyterConfig,
        startTimeout: Duration = .seconds(120), stopTimeout: Duration = .seconds(10), retry: StoreRetry = .standard,
        materials: CourseMaterials = CourseMaterials(cacheDirectory: FileManager.default.temporaryDirectory.appendingPathComponent("portal-materials").path)
    ) {
        self.materials = materials
        self.jupyter = jupyter
        self.engines = engines
        self.store = store
        self.probe = probe
        self.retry = retry
        self.installationID = installationID
        self.logger = logger
        self.startTimeout = startTimeout
        self.stopTimeout = max(stopTimeout, .seconds(10))
        (jobs, submit) = AsyncStream.makeStream(of: Job.self)
    }

    /// A lifecycle probing Jupyter's `/api/status` through `http`.
    public convenience init(
        engines: any EngineDirectory, store: any EnvironmentStore, http: HTTPClient, installationID: String, logger: Logger, jupyter: JupyterConfig,
        startTimeout: Duration = .seconds(120), stopTimeout: Duration = .seconds(10),
        materials: CourseMaterials = CourseMaterials(cacheDirectory: FileManager.default.temporaryDirectory.appendingPathComponent("portal-materials").path)
    ) {
        self.init(
            engines: engines, store: store, probe: JupyterProbe(http: http), installationID: installationID, logger: logger, jupyter: jupyter,
            startTimeout: startTimeout, stopTimeout: stopTimeout, materials: materials
        )
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
