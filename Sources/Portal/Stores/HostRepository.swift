import Environments
import Foundation
import Logging
import PostgresNIO

/// The pool of hosts in PostgreSQL: declared ones (configuration file or `portal host add`), their
/// drain flag and health, and what their live environments (`portal_is_live(state)`) asked for.
struct HostRepository: Sendable {
    /// A host with what its live environments requested.
    typealias Loaded = HostLoad

    let client: PostgresClient

    /// The columns ``decode(_:)`` reads, then the load columns, for `hosts h`.
    static let loadQuery = """
        SELECT h.name, h.kind, h.endpoint, h.publish_address, h.tls::text, h.cpu::float8, h.memory_bytes, h.gpus::text, h.labels::text,
               h.draining, h.health,
               COALESCE(l.cpu, 0)::float8, COALESCE(l.memory_bytes, 0)::bigint, COALESCE(l.gpu_ids, '{}'), COALESCE(l.environments, 0)::bigint
        FROM hosts h LEFT JOIN (
            SELECT engine, sum(cpu) AS cpu, sum(memory_bytes) AS memory_bytes, count(*) AS environments,
                   (SELECT array_agg(g) FROM environments e2, unnest(e2.gpu_ids) g WHERE e2.engine = e.engine AND portal_is_live(e2.state)) AS gpu_ids
            FROM environments e WHERE portal_is_live(state) GROUP BY engine
        ) l ON l.engine = h.name
        """

    /// Every host with its load, by name.
    func loads() async throws -> [HostLoad] {
        try await Self.loads(on: client.query(PostgresQuery(unsafeSQL: Self.loadQuery + " ORDER BY h.name")))
    }

    /// Every host with its load, read on `connection` (inside admission's transaction).
    static func loads(on connection: PostgresConnection, logger: Logger) async throws -> [HostLoad] {
        try await loads(on: connection.query(PostgresQuery(unsafeSQL: loadQuery + " ORDER BY h.name"), logger: logger))
    }

    private static func loads(on rows: PostgresRowSequence) async throws -> [HostLoad] {
        var result = [HostLoad]()
        for try await row in rows {
            let columns = Array(row.makeRandomAccess())
            result.append(
                HostLoad(
                    host: try decode(columns), usedCPU: try columns[11].decode(Double.self), usedMemoryBytes: try columns[12].decode(Int64.self),
                    usedGPUIDs: Set(try columns[13].decode([String].self)), environments: Int(try columns[14].decode(Int64.self))
                )
            )
        }
        return result
    }

    /// The host named `name`.
    func find(_ name: String) async throws -> Host? {
        try await loads().first { $0.host.name == name }?.host
    }

    private static func decode(_ columns: [PostgresCell]) throws -> Host {
        let decoder = JSONDecoder()
        let tls = try columns[4].decode(String?.self).map { try decoder.decode(Host.TLS.self, from: Data($0.utf8)) }
        return Host(
            name: try columns[0].decode(String.self), kind: try .stored(try columns[1].decode(String.self), table: "hosts", column: "kind"),
            endpoint: try columns[2].decode(String.self), publishAddress: try columns[3].decode(String.self), tls: tls,
            capacity: Capacity(
                cpu: try columns[5].decode(Double.self), memoryBytes: try columns[6].decode(Int64.self),
                gpus: try decoder.decode([GPU].self, from: Data(try columns[7].decode(String.self).utf8))
            ),
            labels: try decoder.decode([String: String].self, from: Data(try columns[8].decode(String.self).utf8)),
            draining: try columns[9].decode(Bool.self), health: try .stored(try columns[10].decode(String.self), table: "hosts", column: "health")
        )
    }

    /// Adds `host`, or with `replace` rewrites an existing one's description (its drain flag and
    /// health stay). - Throws: ``HostError`` when it exists and `replace` is false.
    func add(_ host: Host, source: String = "cli", replace: Bool = false) async throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let tls = try host.tls.map { String(decoding: try encoder.encode($0), as: UTF8.self) }
        let gpus = String(decoding: try encoder.encode(host.capacity.gpus), as: UTF8.self)
        let labels = String(decoding: try encoder.encode(host.labels), as: UTF8.self)
        let cpu = Decimal(string: String(host.capacity.cpu)) ?? Decimal(host.capacity.cpu)
        let rows = try await client.query(
            """
            INSERT INTO hosts AS h (name, kind, endpoint, publish_address, tls, cpu, memory_bytes, gpus, labels, source)
            VALUES (\(host.name), \(host.kind.rawValue), \(host.endpoint), \(host.publishAddress), \(tls)::jsonb, \(cpu), \(host.capacity.memoryBytes),
                    \(gpus)::jsonb, \(labels)::jsonb, \(source))
            ON CONFLICT (name) DO UPDATE SET kind = EXCLUDED.kind, endpoint = EXCLUDED.endpoint, publish_address = EXCLUDED.publish_address,
                tls = EXCLUDED.tls, cpu = EXCLUDED.cpu, memory_bytes = EXCLUDED.memory_bytes, gpus = EXCLUDED.gpus, labels = EXCLUDED.labels,
                source = EXCLUDED.source, updated_at = now()
                WHERE \(replace)
            RETURNING name
            """
        )
        var written = false
        for try await _ in rows { written = true }
        guard written else { throw HostError("The host \(host.name) already exists. Remove it first, or declare it in the configuration file.") }
    }

    /// Makes the hosts of the configuration file the pool's declared ones: each is added or
    /// rewritten; one that was declared there before but no longer is gets removed, or drained
    /// while environments still run on it.
    func syncConfigured(_ hosts: [Host]) async throws {
        for host in hosts { try await add(host, source: "config", replace: true) }
        let names = hosts.map(\.name)
        try await client.query(
            """
            DELETE FROM hosts h WHERE source = 'config' AND NOT (name = ANY(\(names)))
                AND NOT EXISTS (SELECT 1 FROM environments e WHERE e.engine = h.name AND portal_is_live(e.state))
            """
        )
        try await client.query("UPDATE hosts SET draining = true, updated_at = now() WHERE source = 'config' AND NOT (name = ANY(\(names)))")
    }

    /// Sets or clears the drain flag. - Throws: ``HostError`` for an unknown host.
    func setDraining(_ name: String, _ draining: Bool) async throws {
        let rows = try await client.query("UPDATE hosts SET draining = \(draining), updated_at = now() WHERE name = \(name) RETURNING name")
        var found = false
        for try await _ in rows { found = true }
        guard found else { throw HostError("There is no host \(name). `portal host list` shows the pool.") }
    }

    /// Removes a host that runs no live environment. - Throws: ``HostError`` otherwise.
    func remove(_ name: String) async throws {
        guard let load = try await loads().first(where: { $0.host.name == name }) else {
            throw HostError("There is no host \(name). `portal host list` shows the pool.")
        }
        guard load.environments == 0 else {
            throw HostError("The host \(name) still runs \(load.environments) environment(s). Drain it (`portal host drain \(name)`) and remove it once they have stopped.")
        }
        try await client.query(
            """
            DELETE FROM hosts h WHERE name = \(name)
                AND NOT EXISTS (SELECT 1 FROM environments e WHERE e.engine = h.name AND portal_is_live(e.state))
            """
        )
    }

    /// Records a health check. Returns the host's state before, so callers can log changes once.
    @discardableResult
    func recordHealth(_ name: String, up: Bool, message: String?) async throws -> Host.Health? {
        let rows = try await client.query(
            """
            UPDATE hosts h SET health = \((up ? Host.Health.up : .down).rawValue), health_message = \(message), checked_at = now(),
                down_since = CASE WHEN \(up) THEN NULL ELSE COALESCE(h.down_since, now()) END
            FROM (SELECT name, health FROM hosts WHERE name = \(name) FOR UPDATE) before
            WHERE h.name = before.name
            RETURNING before.health
            """
        )
        for try await previous in rows.decode(String.self) { return try Host.Health.stored(previous, table: "hosts", column: "health") }
        return nil
    }

    /// Marks the live environments of hosts down for longer than `after` as stopped (host lost);
    /// returns their ids.
    func markLost(downFor after: Duration) async throws -> [Int64] {
        let seconds = Double(after.components.seconds)
        let rows = try await client.query(
            """
            WITH lost AS (
                UPDATE environments e SET state = \(EnvironmentState.stopped.rawValue), stop_reason = \(StopReason.hostLost.rawValue), stopped_at = now(),
                    message = 'The machine your environment ran on stopped answering. Launch the activity again from your course to get a new one.'
                FROM hosts h
                WHERE e.engine = h.name AND h.health = \(Host.Health.down.rawValue) AND h.down_since < now() - make_interval(secs => \(seconds))
                    AND portal_is_live(e.state)
                RETURNING e.id, e.state, e.message
            ), events AS (
                INSERT INTO environment_events (environment_id, state, message) SELECT id, state, message FROM lost
            )
            SELECT id FROM lost
            """
        )
        var ids = [Int64]()
        for try await id in rows.decode(Int64.self) { ids.append(id) }
        return ids
    }
}

/// Something the host commands or the pool could not do, with what to do instead.
struct HostError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
