@testable import Environments
import Foundation
import Testing

@Suite("Idle culling")
struct CullingTests {
    let start = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func maxLifetimeWinsThenIdleTimeCountsFromTheLastActivity() {
        let decide = { (minutes: Double, active: Double?) in
            CullingPolicy.decide(
                now: start.addingTimeInterval(minutes * 60), startedAt: start, lastActivity: active.map { start.addingTimeInterval($0 * 60) },
                idleTimeout: 30 * 60, maxLifetime: 8 * 3600
            )
        }
        #expect(decide(10, nil) == nil)
        #expect(decide(31, nil) == .idle)
        #expect(decide(31, 5) == nil)
        #expect(decide(36, 5) == .idle)
        #expect(decide(8 * 60, 8 * 60 - 1) == .maxLifetime)
    }

    @Test func serverStatusIsParsed() throws {
        let json = #"{"connections": 1, "kernels": 2, "last_activity": "2026-11-22T05:58:19.738443Z", "started": "2026-11-22T05:58:19.738443Z"}"#
        let activity = try #require(ServerActivity.parse(Data(json.utf8)))
        #expect(activity.connections == 1 && activity.kernels == 2)
        let expected = try #require(ISO8601DateFormatter().date(from: "2026-11-22T05:58:19Z")).addingTimeInterval(0.738)
        #expect(abs(try #require(activity.lastActivity).timeIntervalSince(expected)) < 0.001)
        #expect(ServerActivity.parse(Data("not json".utf8)) == nil)
    }
}
