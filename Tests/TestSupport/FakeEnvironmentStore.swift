import Environments
import Foundation
import Synchronization

/// An ``EnvironmentStore`` in memory with the rules of the PostgreSQL one that the lifecycle relies
/// on: one live environment per (student, course), state changes checked against
/// ``EnvironmentState/canMove(to:)`` (a repeated `starting` allowed), and an event per change.
/// Every claim is admitted and placed on ``host``. It can be made to fail, as a database that
/// restarts does.
public final class FakeEnvironmentStore: EnvironmentStore {
    /// One recorded state change.
    public struct Event: Sendable, Equatable {
        public var state: EnvironmentState
        public var message: String?
        public var detail: String?
    }

    /// The error of a store that cannot be reached.
    public struct Unavailable: Error, CustomStringConvertible {
        public var description: String { "the fake store is unavailable" }
    }

    public let host: String
    private let state = Mutex<(records: [Int64: EnvironmentRecord], events: [Int64: [Event]], failures: Int, nextID: Int64)>(
        (records: [:], events: [:], failures: 0, nextID: 1)
    )

    public init(host: String = "fake") {
        self.host = host
    }

    /// Makes the next `count` calls to ``update(_:_:)`` fail.
    public func failNextUpdates(_ count: Int) {
        state.withLock { $0.failures = count }
    }

    /// Puts a record in the store as it would be after another portal process's work.
    @discardableResult
    public func insert(_ record: EnvironmentRecord) -> EnvironmentRecord {
        state.withLock { state in
            var record = record
            record.id = state.nextID
            state.nextID += 1
            state.records[record.id] = record
            state.events[record.id] = [Event(state: record.state, message: record.message)]
            return record
        }
    }

    /// The state changes recorded for `id`, oldest first.
    public func events(_ id: Int64) -> [Event] { state.withLock { $0.events[id] ?? [] } }

    /// A record for `claim` as the PostgreSQL store makes them: names derived from the ids.
    public static func record(id: Int64, for claim: EnvironmentClaim, host: String, state: EnvironmentState = .requested) -> EnvironmentRecord {
        EnvironmentRecord(
            id: id, userSlug: "u\(claim.userID)", courseSlug: "c\(claim.courseID)", profile: claim.profile, profileVersion: claim.profileVersion, engine: host,
            state: state, message: "Requested", containerName: "portal-u\(claim.userID)-c\(claim.courseID)-\(id)", token: "token-\(id)",
            homeVolume: "portal-home-u\(claim.userID)-c\(claim.courseID)", basePath: "/user/u\(claim.userID)/c\(claim.courseID)/"
        )
    }

    public func claim(_ claim: EnvironmentClaim) async throws -> (record: EnvironmentRecord, created: Bool) {
        state.withLock { state in
            if let live = state.records.values.first(where: { $0.userSlug == "u\(claim.userID)" && $0.courseSlug == "c\(claim.courseID)" && $0.state.isLive }) {
                return (live, false)
            }
            let record = Self.record(id: state.nextID, for: claim, host: host)
            state.nextID += 1
            state.records[record.id] = record
            state.events[record.id] = [Event(state: .requested, message: record.message)]
            return (record, true)
        }
    }

    public func update(_ id: Int64, _ change: EnvironmentChange) async throws -> EnvironmentRecord? {
        try state.withLock { state in
            if state.failures > 0 {
                state.failures -= 1
                throw Unavailable()
            }
            guard var record = state.records[id], record.state.canMove(to: change.state) || (record.state == .starting && change.state == .starting) else {
                return nil
            }
            record.state = change.state
            record.message = change.message ?? record.message
            record.containerID = change.containerID ?? record.containerID
            record.upstream = change.upstream ?? record.upstream
            if change.state == .ready { record.readyAt = Date() }
            state.records[id] = record
            state.events[id, default: []].append(Event(state: change.state, message: change.message, detail: change.detail))
            return record
        }
    }

    public func find(_ id: Int64) async throws -> EnvironmentRecord? {
        state.withLock { $0.records[id] }
    }

    public func live(engine: String) async throws -> [EnvironmentRecord] {
        state.withLock { $0.records.values.filter { $0.engine == engine && $0.state.isLive }.sorted { $0.id < $1.id } }
    }
}
