import Foundation

/// Runs a script from `Tests/tools` with the test Python (independent implementations: oauthlib,
/// `lti`, `websockets`…) and returns what it printed.
public enum PythonTool {
    public static func run(_ script: String, _ arguments: [String]) throws -> String {
        guard let python = TestEnvironment.python else {
            throw MissingComponent("PORTAL_TEST_PYTHON is not set: run the tests with scripts/test.sh")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("python-tool-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = directory.appendingPathComponent("out.txt")
        let errors = directory.appendingPathComponent("err.txt")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errors.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [TestEnvironment.repositoryRoot.appendingPathComponent("Tests/tools/\(script)").path] + arguments
        process.standardOutput = try FileHandle(forWritingTo: output)
        process.standardError = try FileHandle(forWritingTo: errors)
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw MissingComponent("\(script) failed: \((try? String(contentsOf: errors, encoding: .utf8)) ?? "")")
        }
        return try String(contentsOf: output, encoding: .utf8)
    }
}

extension PythonTool {
    /// A tool running in the background (a client holding connections while the test goes on).
    public final class Running: @unchecked Sendable {
        // Invariant: only the test that started it touches it.
        let process: Process
        let directory: URL
        let script: String

        /// A file the tool may write to say it is ready (pass ``readyFile`` as an argument).
        public var readyFile: String { directory.appendingPathComponent("ready").path }

        init(script: String, arguments: (Running) -> [String]) throws {
            guard let python = TestEnvironment.python else {
                throw MissingComponent("PORTAL_TEST_PYTHON is not set: run the tests with scripts/test.sh")
            }
            self.script = script
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("python-tool-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            _ = FileManager.default.createFile(atPath: directory.appendingPathComponent("out.txt").path, contents: nil)
            _ = FileManager.default.createFile(atPath: directory.appendingPathComponent("err.txt").path, contents: nil)
            process = Process()
            process.executableURL = URL(fileURLWithPath: python)
            process.standardOutput = try FileHandle(forWritingTo: directory.appendingPathComponent("out.txt"))
            process.standardError = try FileHandle(forWritingTo: directory.appendingPathComponent("err.txt"))
            process.standardInput = FileHandle.nullDevice
            process.arguments = [TestEnvironment.repositoryRoot.appendingPathComponent("Tests/tools/\(script)").path] + arguments(self)
            try process.run()
        }

        /// Waits until the tool wrote its ready file; fails when it exits first or `limit` passes.
        public func ready(within limit: Duration = .seconds(180)) async throws {
            let deadline = ContinuousClock.now + limit
            while !FileManager.default.fileExists(atPath: readyFile) || ((try? String(contentsOfFile: readyFile, encoding: .utf8)) ?? "").isEmpty {
                guard process.isRunning else { throw MissingComponent("\(script) exited before it was ready: \(errors)") }
                guard ContinuousClock.now < deadline else { throw MissingComponent("\(script) was not ready within \(limit)") }
                try await Task.sleep(for: .milliseconds(100))
            }
        }

        /// Waits for the tool to finish (at most `limit`, then it is killed) and returns what it printed.
        public func output(within limit: Duration = .seconds(300)) async throws -> String {
            let deadline = ContinuousClock.now + limit
            while process.isRunning {
                guard ContinuousClock.now < deadline else {
                    process.terminate()
                    throw MissingComponent("\(script) did not finish within \(limit)")
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            defer { try? FileManager.default.removeItem(at: directory) }
            guard process.terminationStatus == 0 else { throw MissingComponent("\(script) failed: \(errors)") }
            return try String(contentsOf: directory.appendingPathComponent("out.txt"), encoding: .utf8)
        }

        /// Ends the tool now (what it printed is not wanted).
        public func stop() {
            if process.isRunning { process.terminate() }
            process.waitUntilExit()
        }

        var errors: String { (try? String(contentsOf: directory.appendingPathComponent("err.txt"), encoding: .utf8)) ?? "" }

        deinit {
            if process.isRunning { process.terminate() }
        }
    }

    /// Runs `script` to its end without holding a thread of Swift's cooperative pool while it runs
    /// (``run(_:_:)`` blocks one: a test whose tool talks to a portal in this process must not starve
    /// that portal, or another test's, of the pool's few threads).
    public static func output(_ script: String, _ arguments: [String], within limit: Duration = .seconds(600)) async throws -> String {
        try await start(script) { _ in arguments }.output(within: limit)
    }

    /// Starts `script` in the background; `arguments` may use the tool's ``Running/readyFile``.
    public static func start(_ script: String, _ arguments: @escaping (Running) -> [String]) throws -> Running {
        try Running(script: script, arguments: arguments)
    }
}
