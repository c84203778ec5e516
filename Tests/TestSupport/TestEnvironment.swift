import Foundation

/// The real components the test command (scripts/test.sh) provides, read from the environment.
/// Tests that need one are disabled when it is absent, unless `PORTAL_TEST_REQUIRE_ALL=1` (set by the
/// test command and CI), in which case they run and fail loudly.
public enum TestEnvironment {
    static let environment = ProcessInfo.processInfo.environment

    /// Whether every real-component test must run.
    public static var requireAll: Bool { environment["PORTAL_TEST_REQUIRE_ALL"] == "1" }

    /// A PostgreSQL server URL whose user may create databases.
    public static var databaseURL: String? { environment["PORTAL_TEST_DATABASE_URL"] }

    /// A Python with oauthlib and lti installed.
    public static var python: String? { environment["PORTAL_TEST_PYTHON"] }

    /// The PostgreSQL server programs' directory (initdb, pg_ctl), for embedded-cluster tests.
    public static var postgresBin: String? { environment["PORTAL_TEST_PG_BIN"] }

    /// A Docker Engine API socket (Podman's service) for engine tests, e.g. `unix:///run/podman/podman.sock`.
    public static var engineEndpoint: String? { environment["PORTAL_TEST_ENGINE"] }

    /// The Jupyter image the engine tests run.
    public static var image: String { environment["PORTAL_TEST_IMAGE"] ?? "localhost/portal-jupyter:1" }

    /// Whether engine tests can run (or must).
    public static var hasEngine: Bool { (engineEndpoint != nil && databaseURL != nil) || requireAll }

    /// A pool of container hosts, each a Podman API service in its own network namespace
    /// (scripts/engine/pool-hosts.sh): `PORTAL_TEST_POOL="host1=tcp://10.231.1.2:2375 host2=…"`.
    public static var pool: [(name: String, endpoint: String)] {
        (environment["PORTAL_TEST_POOL"] ?? "").split(separator: " ").compactMap { entry in
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            return parts.count == 2 ? (parts[0], parts[1]) : nil
        }
    }

    /// Whether pool tests can run (or must).
    public static var hasPool: Bool { (pool.count >= 2 && databaseURL != nil && python != nil) || requireAll }

    /// The virtualenv of the process engine (scripts/engine/setup-process-engine.sh).
    public static var processVenv: String? { environment["PORTAL_TEST_PROCESS_VENV"] }

    /// Whether process-engine tests can run (or must).
    public static var hasProcessEngine: Bool { (processVenv != nil && databaseURL != nil) || requireAll }

    /// Whether database tests can run (or must).
    public static var hasDatabase: Bool { databaseURL != nil || requireAll }

    /// Whether the independent signers can run (or must).
    public static var hasPython: Bool { python != nil || requireAll }

    /// The repository root.
    public static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// The directory of the built products (where the `portal` binary is).
    public static var productsDirectory: URL {
        // The test bundle lives in the products directory (…/debug/portalPackageTests.xctest).
        let bundle = Bundle.main.bundleURL
        var directory = bundle
        while directory.path != "/" {
            if FileManager.default.isExecutableFile(atPath: directory.appendingPathComponent("portal").path) { return directory }
            directory.deleteLastPathComponent()
        }
        return repositoryRoot.appendingPathComponent(".build/debug")
    }
}

/// A real component the tests need is missing.
public struct MissingComponent: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension TestEnvironment {
    /// Debian's chromium and its driver, for tests in a real browser (installed by scripts/test.sh).
    public static var hasBrowser: Bool {
        (FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium") && FileManager.default.isExecutableFile(atPath: "/usr/bin/chromedriver")
            && python != nil) || requireAll
    }
}
