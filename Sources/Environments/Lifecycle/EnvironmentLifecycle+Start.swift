import Foundation
import Logging

extension EnvironmentLifecycle {
    /// Drives `record` from requested to ready, or to failed with a message for the student.
    func start(_ record: EnvironmentRecord) async {
        let logger = self.logger.with(environment: record.id)
        let started = ContinuousClock.now
        // The portal's own share of the start: its records and its preparation, not the engine's
        // work or the wait for Jupyter.
        var portal = Duration.zero
        func timed<T>(_ work: () async throws -> T) async rethrows -> T {
            let begin = ContinuousClock.now
            defer { portal += ContinuousClock.now - begin }
            return try await work()
        }
        let current: EnvironmentRecord
        do {
            guard let moved = try await timed({ try await self.record(record.id, EnvironmentChange(.starting, message: "Preparing your environment")) }) else {
                logger.warning("environment was no longer requested when its start began")
                return
            }
            current = moved
        } catch {
            logger.error("could not record the start of the environment, so it was not started; it stays requested until the next reconcile", metadata: ["error": "\(error)"])
            return
        }
        do {
            let engine = try await engines.engine(for: record.engine)
            let spec = try await timed { try specification(current) }
            let id = try await engine.start(spec)
            let starting = try await timed { try await self.record(record.id, EnvironmentChange(.starting, message: "Starting the server", containerID: id)) } ?? current
            let upstream = try await waitUntilReady(starting, on: engine, environment: id, deadline: started + startTimeout)
            let total = ContinuousClock.now - started
            let timings = (start: Int(total.milliseconds), portal: Int(portal.milliseconds))
            let ready = try await self.record(
                record.id, EnvironmentChange(.ready, message: "Your environment is ready", containerID: id, upstream: upstream, timings: timings)
            )
            guard ready != nil else {
                // Stopped while starting: do not leave the server behind.
                await cleanUp(record, because: "it was stopped while starting")
                return
            }
            logger.info("environment ready", metadata: ["ms": "\(timings.start)", "portal_ms": "\(timings.portal)", "upstream": "\(upstream)"])
        } catch {
            if Task.isCancelled {
                // The portal is shutting down: leave the start as it is; the next reconcile resumes it.
                logger.notice("start interrupted by shutdown; it resumes when the portal starts again")
                return
            }
            await fail(record, error)
        }
    }

    /// Marks a start that went wrong failed: its server is removed, the student gets a plain
    /// message, the log and the environment's events get the error itself.
    func fail(_ record: EnvironmentRecord, _ error: any Error) async {
        logger.with(environment: record.id).error("environment failed to start", metadata: ["error": "\(error)"])
        await cleanUp(record, because: "its start failed")
        await settle(
            record.id, EnvironmentChange(.failed, message: Self.studentMessage(for: error, timeout: startTimeout), stopReason: .failed, detail: "\(error)"),
            consequence: "a failed start is still recorded as starting; the next reconcile settles it"
        )
    }

    /// What the engine is to run for `record`: its profile's image, limits and environment, the
    /// server's secret, its home and course materials, the portal's Jupyter configuration, and the
    /// labels that tie it to this installation, student, course and profile.
    func specification(_ record: EnvironmentRecord) throws -> EnvironmentSpec {
        let profile = record.profile
        var environment = profile.environment
        environment.merge(JupyterCommand.environment(secret: record.token)) { _, portal in portal }
        environment["PORTAL_BASE_PATH"] = record.basePath
        let owner = [Labels.user: record.userSlug, Labels.course: record.courseSlug]
        return EnvironmentSpec(
            name: record.containerName,
            image: profile.image,
            command: profile.command,
            basePath: record.basePath,
            environment: environment,
            labels: installationLabels.merging(owner) { a, _ in a }.merging([
                Labels.environment: String(record.id), Labels.profile: "\(profile.slug)@\(record.profileVersion)",
            ]) { a, _ in a },
            memoryBytes: profile.memoryBytes,
            nanoCPUs: Int64((profile.cpu * 1e9).rounded()),
            home: EnvironmentSpec.Home(name: record.homeVolume, labels: installationLabels.merging(owner) { a, _ in a }),
            materials: try materials.hostDirectory(for: profile, version: record.profileVersion),
            gpuDevices: record.gpuIDs,
            files: jupyter.files
        )
    }

    /// Polls the environment until its server answers the readiness probe; returns its upstream.
    func waitUntilReady(_ record: EnvironmentRecord, on engine: any Engine, environment: String, deadline: ContinuousClock.Instant) async throws -> String {
        var upstream: String?
        var lastPoll = ContinuousClock.now - .seconds(10)
        while ContinuousClock.now < deadline {
            // Ask the engine for the server's address, then only every few seconds (to notice a
            // server that died: in a class-start burst, engine calls compete with the starts);
            // probe the server itself every 100 ms.
            if upstream == nil || ContinuousClock.now - lastPoll >= .seconds(3) {
                lastPoll = .now
                switch try await engine.poll(environment) {
                case .gone:
                    throw StartFailure.vanished
                case .exited(let code, let outOfMemory, let log):
                    throw StartFailure.exited(code: code, oom: outOfMemory, log: log)
                case .starting, .running(upstream: nil):
                    break
                case .running(let address?):
                    if upstream == nil {
                        upstream = address
                        await settle(
                            record.id, EnvironmentChange(.starting, message: "Waiting for Jupyter to answer", upstream: address),
                            consequence: "the progress page does not say the server is up yet"
                        )
                    }
                }
            }
            if let upstream, await probe.isReady(upstream: upstream, basePath: record.basePath, secret: record.token) {
                return upstream
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw StartFailure.timedOut
    }

    /// Removes what a start that will not finish left on its host; a failure is logged.
    func cleanUp(_ record: EnvironmentRecord, because reason: String) async {
        do {
            try await engines.engine(for: record.engine).stop(record.containerName, timeout: stopTimeout)
        } catch {
            logger.with(environment: record.id).error(
                "could not remove an environment's server after \(reason)", metadata: ["container": "\(record.containerName)", "error": "\(error)"]
            )
        }
    }

    /// What the student is told when a start fails: plain words and what to do; never the
    /// engine's own error (that goes to the log and the environment's events).
    static func studentMessage(for error: any Error, timeout: Duration) -> String {
        switch error {
        case let failure as StartFailure:
            return failure.studentMessage(timeout: timeout)
        case let error as EngineError where error.kind == .imageMissing:
            return "Your course's environment is not installed on the server yet. Please tell your course team; they can fix it."
        case let error as EngineError where error.kind == .unreachable:
            return "The server that runs environments is not answering. Please try again in a few minutes."
        default:
            return "Your environment could not be started. Please try again; if it happens again, tell your course team."
        }
    }
}

/// Why a start failed, for the student and the logs.
enum StartFailure: Error, CustomStringConvertible {
    case exited(code: Int?, oom: Bool, log: String)
    case vanished
    case timedOut

    func studentMessage(timeout: Duration) -> String {
        switch self {
        case .exited(_, true, _):
            return "Your environment ran out of memory while starting. Please tell your course team."
        case .exited, .vanished:
            return "Your environment stopped while starting. Please try again; if it happens again, tell your course team."
        case .timedOut:
            return "Your environment did not start within \(timeout.components.seconds) seconds. Please try again."
        }
    }

    var description: String {
        switch self {
        case .exited(let code, let oom, let log): "the server exited while starting (code \(code.map(String.init) ?? "?"), out of memory: \(oom)): \(log.suffix(1000))"
        case .vanished: "the environment disappeared from its engine while starting"
        case .timedOut: "the server did not answer the readiness probe in time"
        }
    }
}
