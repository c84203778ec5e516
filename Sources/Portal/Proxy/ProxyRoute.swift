import Environments
import Foundation
import Synchronization

/// What the proxy knows about one live environment: whose it is, where its server listens, and the
/// credentials the portal adds on the student's behalf. Built from `environments` rows; an
/// environment has a route while its state ``EnvironmentState/isLive``.
final class ProxyRoute: Sendable {
    let environmentID: Int64
    let userID: Int64
    let courseID: Int64
    /// `/user/<user slug>/<course slug>/`, the prefix the server is mounted under.
    let basePath: String
    let state: EnvironmentState
    let upstream: UpstreamAddress?
    /// The server's secret: the value of `X-Portal-Secret` (``JupyterCommand/secretHeader``), added
    /// to every forwarded request and never shown to the browser. The server's identity provider
    /// authenticates the request by it and removes it before anything behind the server sees it.
    let authorization: String
    /// Seconds since 1970 of the last request or WebSocket traffic seen by this process.
    let lastActivity: Atomic<Int64>

    init(environmentID: Int64, userID: Int64, courseID: Int64, basePath: String, state: EnvironmentState, upstream: UpstreamAddress?, token: String, lastActivity: Int64) {
        self.environmentID = environmentID
        self.userID = userID
        self.courseID = courseID
        self.basePath = basePath
        self.state = state
        self.upstream = upstream
        self.authorization = token
        self.lastActivity = Atomic(lastActivity)
    }

    /// Whether requests can be forwarded now.
    var isServing: Bool { state == .ready && upstream != nil }

    /// Notes activity now; cheap enough for every request (one relaxed atomic store at most once a second).
    func touch(now: Int64 = Int64(Date().timeIntervalSince1970)) {
        if lastActivity.load(ordering: .relaxed) < now { lastActivity.store(now, ordering: .relaxed) }
    }

    /// The route prefix of a request path: `/user/a/b/` for `/user/a/b/lab?x`, and for `/user/a/b`
    /// itself; `nil` when the path is not under `/user/<x>/<y>`.
    static func prefix(of path: Substring) -> Substring? {
        prefixLength(of: path.utf8).map { Substring(path.utf8.prefix($0)) }
    }

    /// How many bytes at the start of a request target make its route prefix (see ``prefix(of:)``),
    /// read from the bytes (the proxy's fast path asks on every request).
    static func prefixLength<Bytes: Sequence>(of target: Bytes) -> Int? where Bytes.Element == UInt8 {
        var iterator = target.makeIterator()
        for expected in "/user/".utf8 {
            guard iterator.next() == expected else { return nil }
        }
        var length = 6
        var slashes = 0
        var segment = 0
        while let byte = iterator.next(), byte != UInt8(ascii: "?"), byte != UInt8(ascii: "#") {
            length += 1
            guard byte == UInt8(ascii: "/") else {
                segment += 1
                continue
            }
            guard segment > 0 else { return nil }  // an empty user or course slug
            slashes += 1
            if slashes == 2 { return length }
            segment = 0
        }
        // `/user/a/b` without its trailing slash.
        return slashes == 1 && segment > 0 ? length : nil
    }
}

/// Every live environment's route, by base path, in memory: the request path looks routes up here
/// without touching the database. ``RouteListener`` keeps it current from PostgreSQL.
final class RouteTable: Sendable {
    private let routes = Mutex<[Substring: ProxyRoute]>([:])
    /// Counts changes to the table: a route found while it had this value is still the current one
    /// while it has it (read it before looking the route up).
    private let changes = Atomic<Int>(0)
    /// Base paths the database said have no live environment, and when: an open JupyterLab tab
    /// keeps polling a stopped environment, and those polls need not each ask the database.
    private let misses = Mutex<[Substring: ContinuousClock.Instant]>([:])
    static let missLifetime = Duration.seconds(2)

    /// Whether `basePath` was found not live less than ``missLifetime`` ago.
    func recentlyMissing(_ basePath: String) -> Bool {
        misses.withLock { $0[Substring(basePath)].map { ContinuousClock.now - $0 < Self.missLifetime } ?? false }
    }

    /// Notes that the database has no live environment at `basePath` now.
    func noteMissing(_ basePath: String) {
        misses.withLock { table in
            if table.count > 10_000 { table.removeAll(keepingCapacity: true) }
            table[Substring(basePath)] = .now
        }
    }

    /// The route for a request path, if its environment is live and known here.
    func route(forPath path: Substring) -> ProxyRoute? {
        guard var prefix = ProxyRoute.prefix(of: path) else { return nil }
        if prefix.last != "/" { prefix = Substring(prefix + "/") }
        return routes.withLock { $0[prefix] }
    }

    /// How many times the table has changed; see ``route(forTarget:)``.
    var version: Int { changes.load(ordering: .acquiring) }

    /// The route for a request target given as bytes (the fast path): only its prefix is copied.
    func route(forTarget target: UnsafeRawBufferPointer) -> ProxyRoute? {
        guard let length = ProxyRoute.prefixLength(of: target) else { return nil }
        var prefix = String(decoding: UnsafeRawBufferPointer(rebasing: target[..<length]), as: UTF8.self)
        if target[length - 1] != UInt8(ascii: "/") { prefix += "/" }
        return routes.withLock { $0[Substring(prefix)] }
    }

    /// Replaces every route (after (re)connecting to the database), keeping activity seen so far.
    func replaceAll(_ fresh: [ProxyRoute]) {
        routes.withLock { table in
            var next = [Substring: ProxyRoute](minimumCapacity: fresh.count)
            for route in fresh {
                Self.carryActivity(from: table[Substring(route.basePath)], to: route)
                next[Substring(route.basePath)] = route
            }
            table = next
            changes.add(1, ordering: .releasing)
        }
    }

    /// Adds or replaces one route, or removes the environment's route when `route` is `nil`.
    func update(environmentID: Int64, basePath: String?, route: ProxyRoute?) {
        if let route { misses.withLock { _ = $0.removeValue(forKey: Substring(route.basePath)) } }
        routes.withLock { table in
            if let route {
                Self.carryActivity(from: table[Substring(route.basePath)], to: route)
                table[Substring(route.basePath)] = route
            } else if let basePath, table[Substring(basePath)]?.environmentID == environmentID {
                table[Substring(basePath)] = nil
            }
            changes.add(1, ordering: .releasing)
        }
    }

    /// A fresh route of the same environment keeps the activity seen on the one it replaces.
    private static func carryActivity(from old: ProxyRoute?, to route: ProxyRoute) {
        guard let old, old.environmentID == route.environmentID else { return }
        route.touch(now: old.lastActivity.load(ordering: .relaxed))
    }

    /// A snapshot of every route.
    var all: [ProxyRoute] { routes.withLock { Array($0.values) } }
}
