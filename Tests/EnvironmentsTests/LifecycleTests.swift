@testable import Environments
import Foundation
import Logging
import TestSupport
import Testing

/// The lifecycle's paths through the engine seam, against a fake engine and a fake store: no
/// container engine, no database, seconds in all. The same paths run against Podman, the process
/// engine and PostgreSQL in PortalTests (PodmanLifecycleTests, ProcessEngineTests, HostPoolTests).
@Suite("Lifecycle through the engine seam")
struct LifecycleTests {
    struct Harness {
        let engine = FakeEngine()
        let store = FakeEnvironmentStore()
        let probe = FakeProbe()
        let lifecycle: EnvironmentLifecycle

        init(startTimeout: Duration = .seconds(120)) throws {
            let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            lifecycle = EnvironmentLifecycle(
                engines: FixedEngines([(host: "fake", engine: engine)]), store: store, probe: probe, installationID: "test-installation",
                logger: Logger(label: "test"), jupyter: try JupyterConfig(directory: root.appendingPathComponent("Jupyter").path),
                startTimeout: startTimeout, retry: StoreRetry(delays: [.milliseconds(10), .milliseconds(10), .milliseconds(10)])
            )
        }

        func claim(user: Int64, course: Int64 = 1, persistence: Profile.Persistence = .persistent) -> EnvironmentClaim {
            EnvironmentClaim(
                userID: user, courseID: course,
                profile: Profile(slug: "demo", displayName: "Demo", image: "localhost/demo:1", memoryBytes: 256 << 20, persistence: persistence), profileVersion: 1
            )
        }

        /// Waits (for liveness, not speed) until the environment is in one of `states`.
        func wait(_ id: Int64, for states: Set<EnvironmentState>) async throws -> EnvironmentRecord {
            let deadline = ContinuousClock.now + .seconds(300)
            while ContinuousClock.now < deadline {
                if let record = try await store.find(id), states.contains(record.state) { return record }
                try await Task.sleep(for: .milliseconds(10))
            }
            let now = try await store.find(id)?.state
            Issue.record("environment \(id) never reached \(states.map(\.rawValue).sorted()); it is \(now?.rawValue ?? "gone")")
            throw CancellationError()
        }

        /// Runs the lifecycle's jobs while `body` runs.
        func run(_ body: () async throws -> Void) async throws {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await lifecycle.run() }
                defer { lifecycle.finish() }
                try await body()
            }
        }
    }

    @Test func aStartBecomesReadyWithItsSpecAndUpstream() async throws {
        let h = try Harness()
        try await h.run {
            let record = try await h.lifecycle.ensure(h.claim(user: 1))
            let ready = try await h.wait(record.id, for: [.ready, .failed])
            #expect(ready.state == .ready)
            #expect(ready.upstream == "fake:" + record.containerName)
            #expect(ready.containerID == "id-" + record.containerName)
            let spec = try #require(h.engine.spec(of: record.containerName))
            #expect(spec.labels[Labels.installation] == "test-installation" && spec.labels[Labels.environment] == String(record.id))
            #expect(spec.home.name == record.homeVolume && spec.image == "localhost/demo:1" && spec.basePath == record.basePath)
            #expect(spec.environment[JupyterCommand.secretVariable] == record.token)
            #expect(spec.files.contains { $0.path.hasSuffix("jupyter_server_config.py") })
            #expect(h.store.events(record.id).map(\.state) == [.requested, .starting, .starting, .starting, .ready])
            // A second claim joins the live environment: one start.
            #expect(try await h.lifecycle.ensure(h.claim(user: 1)).id == record.id)
            #expect(h.engine.started == [record.containerName])
        }
    }

    @Test func aServerThatNeverAnswersTimesOutAndIsRemoved() async throws {
        let h = try Harness(startTimeout: .seconds(1))
        try await h.run {
            let record = try await h.lifecycle.ensure(h.claim(user: 1))
            h.probe.silence("fake:" + record.containerName)
            let failed = try await h.wait(record.id, for: [.ready, .failed])
            #expect(failed.state == .failed)
            #expect(failed.message?.contains("did not start within 1 seconds") == true)
            #expect(!h.engine.names.contains(record.containerName))
            #expect(h.store.events(record.id).last?.detail?.contains("readiness probe") == true)
        }
    }

    @Test func aServerThatExitsOrRunsOutOfMemoryFailsWithAPlainMessage() async throws {
        let h = try Harness()
        h.engine.behave(.exits(code: 137, outOfMemory: true, log: "Killed"))
        try await h.run {
            let record = try await h.lifecycle.ensure(h.claim(user: 1))
            let failed = try await h.wait(record.id, for: [.ready, .failed])
            #expect(failed.message == "Your environment ran out of memory while starting. Please tell your course team.")
            let detail = try #require(h.store.events(record.id).last?.detail)
            #expect(detail.contains("code 137") && detail.contains("Killed"))
            #expect(h.engine.names.isEmpty)
        }
    }

    @Test func anEngineErrorReachesTheEventsButNotTheStudent() async throws {
        let h = try Harness()
        h.engine.behave(.refuses(EngineError(.imageMissing, "The image localhost/demo:1 is not on fake-host-7.")))
        try await h.run {
            let record = try await h.lifecycle.ensure(h.claim(user: 1))
            let failed = try await h.wait(record.id, for: [.ready, .failed])
            #expect(failed.message?.contains("not installed on the server yet") == true)
            #expect(failed.message?.contains("fake-host-7") == false)
            #expect(h.store.events(record.id).last?.detail?.contains("fake-host-7") == true)
        }
        let other = try Harness()
        other.engine.behave(.refuses(EngineError(.failed, "boom: cgroup write EACCES")))
        try await other.run {
            let record = try await other.lifecycle.ensure(other.claim(user: 2))
            let failed = try await other.wait(record.id, for: [.ready, .failed])
            #expect(failed.message == "Your environment could not be started. Please try again; if it happens again, tell your course team.")
            #expect(other.store.events(record.id).last?.detail?.contains("EACCES") == true)
        }
    }

    @Test func aStopDuringTheStartWinsAndLeavesNothingRunning() async throws {
        let h = try Harness()
        h.engine.behave(.hangs)
        try await h.run {
            let record = try await h.lifecycle.ensure(h.claim(user: 1))
            // The start is under way once the engine holds the environment.
            _ = try await h.wait(record.id, for: [.starting])
            while !h.engine.names.contains(record.containerName) { try await Task.sleep(for: .milliseconds(10)) }
            h.lifecycle.requestStop(record.id, reason: .student)
            let stopped = try await h.wait(record.id, for: [.stopped, .failed])
            #expect(stopped.state == .stopped && stopped.message == StopReason.student.explanation)
            #expect(h.engine.names.isEmpty)
        }
    }

    @Test func aStopRemovesTheServerAndADisposableHome() async throws {
        let h = try Harness()
        try await h.run {
            let kept = try await h.lifecycle.ensure(h.claim(user: 1))
            let disposable = try await h.lifecycle.ensure(h.claim(user: 2, persistence: .disposable))
            _ = try await h.wait(kept.id, for: [.ready])
            _ = try await h.wait(disposable.id, for: [.ready])
            h.lifecycle.requestStop(kept.id, reason: .idle)
            h.lifecycle.requestStop(disposable.id, reason: .idle)
            #expect(try await h.wait(kept.id, for: [.stopped, .failed]).state == .stopped)
            #expect(try await h.wait(disposable.id, for: [.stopped, .failed]).state == .stopped)
            #expect(h.engine.names.isEmpty)
            #expect(h.engine.deletedHomes == [disposable.homeVolume])
        }
    }

    @Test func aStoreThatFailsForAWhileDuringAStopIsRetried() async throws {
        let h = try Harness()
        try await h.run {
            let record = try await h.lifecycle.ensure(h.claim(user: 1))
            _ = try await h.wait(record.id, for: [.ready])
            h.store.failNextUpdates(2)
            h.lifecycle.requestStop(record.id, reason: .student)
            #expect(try await h.wait(record.id, for: [.stopped, .failed]).state == .stopped)
            #expect(h.engine.names.isEmpty)
        }
    }

    @Test func aStopTheEngineRefusesFailsWithAPlainMessageAndTheError() async throws {
        let h = try Harness()
        try await h.run {
            let record = try await h.lifecycle.ensure(h.claim(user: 1))
            _ = try await h.wait(record.id, for: [.ready])
            h.engine.failStops(with: EngineError(.unreachable, "podman@host9 cannot be reached"))
            h.lifecycle.requestStop(record.id, reason: .staff)
            let failed = try await h.wait(record.id, for: [.stopped, .failed])
            #expect(failed.state == .failed)
            #expect(failed.message?.contains("could not be stopped cleanly") == true && failed.message?.contains("host9") == false)
            #expect(h.store.events(record.id).last?.detail?.contains("podman@host9") == true)
        }
    }

    @Test func reconcileAdoptsResumesRestartsAndRemovesWhatNoRecordKnows() async throws {
        let h = try Harness()
        let labels = [Labels.installation: "test-installation"]
        func seeded(_ user: Int64, _ state: EnvironmentState) -> EnvironmentRecord {
            h.store.insert(FakeEnvironmentStore.record(id: 0, for: h.claim(user: user), host: "fake", state: state))
        }
        // Ready and running: adopted as it is. Starting and running (another process began it):
        // adopted, and its start resumed to ready. Ready but its server is gone: stopped. Ready but
        // its server exited: removed and stopped. Requested and never started: started.
        let running = seeded(1, .ready)
        h.engine.adopt(name: running.containerName, labels: labels, running: true)
        let resumed = seeded(2, .starting)
        h.engine.adopt(name: resumed.containerName, labels: labels, running: true)
        let gone = seeded(3, .ready)
        let exited = seeded(4, .ready)
        h.engine.adopt(name: exited.containerName, labels: labels, running: false)
        let requested = seeded(5, .requested)
        // Another installation's environment on the same engine is not touched; an orphan of ours is removed.
        h.engine.adopt(name: "someone-elses", labels: [Labels.installation: "other"], running: true)
        h.engine.adopt(name: "orphan", labels: labels, running: true)
        try await h.run {
            let result = try await h.lifecycle.reconcile()
            #expect(Set(result.adopted) == [running.id, resumed.id])
            #expect(Set(result.vanished) == [gone.id, exited.id])
            #expect(result.restarted == [requested.id])
            #expect(result.removedContainers == ["orphan"])
            #expect(try await h.wait(resumed.id, for: [.ready, .failed]).state == .ready)
            #expect(try await h.wait(requested.id, for: [.ready, .failed]).state == .ready)
            #expect(try await h.store.find(gone.id)?.stopReasonIsVanished(h.store) == true)
            #expect(try await h.store.find(exited.id)?.state == .stopped)
            #expect(h.engine.names == [running.containerName, resumed.containerName, requested.containerName, "someone-elses"])
        }
    }
}

extension EnvironmentRecord {
    /// Whether the store's last event for it says it was found stopped.
    fileprivate func stopReasonIsVanished(_ store: FakeEnvironmentStore) -> Bool {
        state == .stopped && store.events(id).last?.message == "The environment had stopped while the portal was away"
    }
}
