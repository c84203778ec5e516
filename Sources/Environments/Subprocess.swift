import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A finished child process: its exit status and what it printed (stdout and stderr together).
public struct SubprocessResult: Sendable {
    public var status: Int32
    public var output: String
}

/// Runs helper programs (initdb, pg_ctl, useradd, git, cp) with posix_spawn and waitpid. Output goes to a
/// temporary file rather than a pipe, because a daemon the command starts (pg_ctl start) inherits
/// its standard streams and would hold a pipe open for its whole life.
public enum Subprocess {
    /// Runs `arguments[0]` with the rest as arguments, optionally as another user through `runuser`,
    /// and waits for it.
    public static func run(_ arguments: [String], asUser user: String? = nil) throws -> SubprocessResult {
        let command = user.map { ["/usr/sbin/runuser", "-u", $0, "--"] + arguments } ?? arguments
        let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("portal-subprocess-\(UUID().uuidString)").path
        defer { unlink(outputPath) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)

        var argv: [UnsafeMutablePointer<CChar>?] = command.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, command[0], &actions, nil, &argv, environ)
        guard spawned == 0 else {
            throw SubprocessError(description: "cannot run \(command[0]): \(String(cString: strerror(spawned)))")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 {
            guard errno == EINTR else { throw SubprocessError(description: "waiting for \(command[0]) failed: \(String(cString: strerror(errno)))") }
        }
        let output = FileManager.default.contents(atPath: outputPath).map { String(decoding: $0, as: UTF8.self) } ?? ""
        // WIFEXITED / WEXITSTATUS, which Swift does not import as functions.
        let exitStatus: Int32 = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        return SubprocessResult(status: exitStatus, output: output)
    }

    /// The full path of `name` on `PATH`, if any.
    public static func which(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}

/// A helper program that could not be run.
public struct SubprocessError: Error, CustomStringConvertible {
    public var description: String
}
