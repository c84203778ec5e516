import AsyncHTTPClient
@testable import Environments
import Foundation
import Logging
import PostgresNIO
@testable import Portal
import TestSupport
import Testing

/// GPUs on a real Podman: there is no GPU here, so a host declares two fake ones. Placement gives
/// each GPU to one environment, and the start asks Podman for exactly that device through its own
/// API (CDI name), which Podman resolves — and, with no CDI specification on this machine, refuses
/// by name. The same API path, without a GPU, runs a real server.
@Suite("GPU placement on a real engine", .enabled(if: TestEnvironment.hasEngine), .serialized)
struct GPUPlacementTests {
    @Test func podmansOwnAPIRunsAServerWithTheSameLimits() async throws {
        try await PodmanLifecycleTests().withHarness { h in
            let lifecycle = try h.lifecycle()
            let (claimed, _) = try await h.store.claim(h.claim(PodmanLifecycleTests.profile()))
            let environment = try lifecycle.specification(claimed)
            try await h.engine.ensureVolume(environment.home.name, labels: environment.home.labels)
            let id = try await h.engine.createWithLibpod(ContainerSpec(environment, image: try #require(environment.image), command: nil))
            try await h.engine.startContainer(id)
            let upstream = try await lifecycle.waitUntilReady(claimed, on: h.engine, environment: id, deadline: .now + .seconds(90))
            #expect(upstream.hasPrefix("127.0.0.1:"))
            var ready = claimed
            ready.upstream = upstream
            #expect(try await PodmanLifecycleTests().status(ready, token: claimed.token) == 200)
            #expect(try await PodmanLifecycleTests().status(ready, token: nil) == 403)
            let stats = try await h.engine.stats(id)
            #expect(stats.memoryLimitBytes == PodmanLifecycleTests.profile().memoryBytes)
            try await h.engine.removeContainer(id)
        }
    }

    @Test func eachFakeGPUGoesToOneEnvironmentAndIsRequestedByID() async throws {
        let gpu = {
            var profile = PodmanLifecycleTests.profile("gpu")
            profile.gpus = 1
            return profile
        }()
        try await PodmanLifecycleTests().withHarness(profiles: [gpu]) { h in
            try await h.client.query(#"UPDATE hosts SET gpus = '[{"id": "0", "model": "fake"}, {"id": "1", "model": "fake"}]'"#)
            var found = [h.user]
            let rows = try await h.client.query(
                "INSERT INTO users (consumer_key, lti_user_id, slug) SELECT 'vle', 'g' || n, 'gslug' || n FROM generate_series(1, 2) n RETURNING id"
            )
            for try await id in rows.decode(Int64.self) { found.append(id) }
            let students = found
            let lifecycle = try h.lifecycle()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await lifecycle.run() }
                var records = [EnvironmentRecord]()
                for student in students.prefix(2) {
                    records.append(try await lifecycle.ensure(EnvironmentClaim(userID: student, courseID: h.course, profile: gpu, profileVersion: 1)))
                }
                #expect(Set(records.flatMap(\.gpuIDs)) == ["0", "1"] && records.allSatisfy { $0.gpuIDs.count == 1 })
                await #expect(throws: AdmissionRefusal.self) {
                    try await lifecycle.ensure(EnvironmentClaim(userID: students[2], courseID: h.course, profile: gpu, profileVersion: 1))
                }
                for record in records {
                    let failed = try await h.wait(record.id, for: [.failed, .ready])
                    #expect(failed.state == .failed)
                    // The student is told in plain words; the engine's refusal, naming the device, is in the events.
                    #expect(failed.message?.contains("nvidia.com") == false)
                    let rows = try await h.client.query("SELECT detail FROM environment_events WHERE environment_id = \(record.id) AND state = 'failed'").collect()
                    let detail = try rows.first?.decode(String?.self) ?? nil
                    #expect(detail?.contains("nvidia.com/gpu=\(record.gpuIDs[0])") == true, "\(String(describing: detail))")
                }
                // Failed environments hold no GPU: the third student gets one now.
                let third = try await lifecycle.ensure(EnvironmentClaim(userID: students[2], courseID: h.course, profile: gpu, profileVersion: 1))
                #expect(third.gpuIDs.count == 1)
                _ = try await h.wait(third.id, for: [.failed, .ready])
                group.cancelAll()
            }
        }
    }
}
