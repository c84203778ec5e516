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
