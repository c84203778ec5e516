import Foundation
import Synchronization

/// Remembers OAuth nonces so that each is accepted once. Implementations shared by several portal
/// replicas (the portal's PostgreSQL store) make a replay fail on every replica.
public protocol NonceStore: Sendable {
    /// Records `nonce` for `consumerKey` until `expiresAt`.
    /// - Returns: `true` if the nonce was unused (and is now used), `false` if it was seen before and
    ///   has not yet expired.
    func use(nonce: String, consumerKey: String, expiresAt: Date) async throws -> Bool
}

/// A process-local ``NonceStore`` for tests and single-process tools. Expired entries are dropped as
/// new ones arrive, so memory stays bounded by the launches of one timestamp window.
public final class InMemoryNonceStore: NonceStore {
    private struct Key: Hashable {
        var consumerKey: String
        var nonce: String
    }

    private let clock: any WallClock
    private struct State {
        var entries: [Key: Date] = [:]
        var sweepAt = 1024
    }

    private let state = Mutex(State())

    /// Creates an empty store that judges expiry by `clock`.
    public init(clock: any WallClock = SystemWallClock()) {
        self.clock = clock
    }

    public func use(nonce: String, consumerKey: String, expiresAt: Date) async throws -> Bool {
        let now = clock.now()
        return state.withLock { state in
            if state.entries.count >= state.sweepAt {
                state.entries = state.entries.filter { $0.value > now }
                state.sweepAt = max(1024, state.entries.count * 2)
            }
            let key = Key(consumerKey: consumerKey, nonce: nonce)
            if let existing = state.entries[key], existing > now {
                return false
            }
            state.entries[key] = expiresAt
            return true
        }
    }
}
