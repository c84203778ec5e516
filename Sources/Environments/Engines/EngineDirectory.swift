import Synchronization

/// Finds the engine of each host of the pool. The lifecycle asks it for the engine of the host a
/// record was placed on; the portal backs it with the hosts table, so a host added on one replica
/// is usable on every other.
public protocol EngineDirectory: Sendable {
    /// The engine of the host named `host`.
    /// - Throws: ``EngineError`` (`notFound`) for a host the pool does not have.
    func engine(for host: String) async throws -> any Engine
    /// Every host of the pool and its engine (for reconciling).
    func all() async throws -> [(host: String, engine: any Engine)]
}

/// A fixed set of engines by host name: one host for a single-engine portal, or a pool in tests.
public struct FixedEngines: EngineDirectory {
    let engines: [(host: String, engine: any Engine)]

    public init(_ engines: [(host: String, engine: any Engine)]) {
        self.engines = engines
    }

    /// One engine, named after itself.
    public init(_ engine: any Engine) {
        self.init([(engine.name, engine)])
    }

    public func engine(for host: String) async throws -> any Engine {
        guard let found = engines.first(where: { $0.host == host }) else {
            throw EngineError(.notFound, "The host \(host) is not in the pool.")
        }
        return found.engine
    }

    public func all() async throws -> [(host: String, engine: any Engine)] { engines }
}
