import Environments
import Logging
import ServiceLifecycle
import Synchronization

/// Asks every host's engine whether it answers, every `interval`, on every replica: a host that
/// fails three checks in a row is marked down (placement skips it), one that answers again is up. Environments on a
/// host down for longer than `lostAfter` are marked stopped with the reason `host_lost`, so their
/// students can launch again elsewhere. A host that comes back is reconciled: the containers of
/// environments marked lost meanwhile are removed.
struct HostMonitor: Service {
    let hosts: HostRepository
    let engines: HostEngines
    let lifecycle: EnvironmentLifecycle
    let interval: Duration
    let lostAfter: Duration
    let logger: Logger
    /// Failed checks in a row per host; a host is down from the ``failuresForDown``th (one slow
    /// answer from a busy engine is not an outage).
    let failures = Failures()
    static let failuresForDown = 3

    final class Failures: Sendable {
        let counts = Mutex<[String: Int]>([:])

        /// Records a check; returns the failures in a row so far.
        func record(_ host: String, failed: Bool) -> Int {
            counts.withLock { counts in
                counts[host] = failed ? counts[host, default: 0] + 1 : 0
                return counts[host, default: 0]
            }
        }
    }

    func run() async throws {
        await repeatUntilShutdown(every: interval, immediately: true) { await check() }
    }

    /// One round of checks.
    func check() async {
        do {
            let pool = try await hosts.loads().map(\.host)
            await withTaskGroup(of: Void.self) { group in
                for host in pool {
                    group.addTask { await check(host) }
                }
            }
            let lost = try await hosts.markLost(downFor: lostAfter)
            if !lost.isEmpty {
                logger.error("environments marked lost with their host", metadata: ["environments": "\(lost.map(String.init).joined(separator: ","))"])
            }
        } catch {
            logger.warning("checking the hosts failed", metadata: ["error": "\(error)"])
        }
    }

    private func check(_ host: Host) async {
        var failure: String?
        do {
            try await engines.engine(of: host).ping()
        } catch {
            failure = "\(error)"
        }
        let inARow = failures.record(host.name, failed: failure != nil)
        if let failure, inARow < Self.failuresForDown {
            logger.info("host check failed", metadata: ["host": "\(host.name)", "in_a_row": "\(inARow)", "error": "\(failure)"])
            return
        }
        do {
            let before = try await hosts.recordHealth(host.name, up: failure == nil, message: failure)
            if let failure, before != .down {
                logger.error("host down: no new environments go there", metadata: ["host": "\(host.name)", "error": "\(failure)"])
            } else if failure == nil, before == .down {
                logger.notice("host up again", metadata: ["host": "\(host.name)"])
                let result = try await lifecycle.reconcile(host: host.name)
                if !result.removedContainers.isEmpty {
                    logger.notice("removed containers of environments lost while the host was down", metadata: ["host": "\(host.name)", "count": "\(result.removedContainers.count)"])
                }
            }
        } catch {
            logger.warning("recording a host's health failed", metadata: ["host": "\(host.name)", "error": "\(error)"])
        }
    }
}
