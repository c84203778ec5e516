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
        let pid = try spawn(command, output: outputPath, append: false)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 {
            guard errno == EINTR else { throw SubprocessError(description: "waiting for \(command[0]) failed: \(String(cString: strerror(errno)))") }
        }
        let output = FileManager.default.contents(atPath: outputPath).map { String(decoding: $0, as: UTF8.self) } ?? ""
        return SubprocessResult(status: Int32(exitStatus(status)), output: output)
    }

    /// Starts `arguments[0]` without waiting for it: standard input from /dev/null, standard output
    /// and error to the file `output` (created with mode 0600), descriptors `inputs` (target ← source)
    /// passed on, the environment `environment` (the portal's own when `nil`), optionally in a new
    /// session (out of the terminal's process group).
    /// - Returns: the child's pid; the caller reaps it.
    public static func spawn(
        _ arguments: [String], environment: [String: String]? = nil, output: String, append: Bool = true, inputs: [Int32: Int32] = [:],
        newSession: Bool = false
    ) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC), 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        for (target, source) in inputs { posix_spawn_file_actions_adddup2(&actions, source, target) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        if newSession { posix_spawnattr_setflags(&attributes, 0x80) }  // POSIX_SPAWN_SETSID

        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        var envp: [UnsafeMutablePointer<CChar>?] = environment.map { $0.map { strdup("\($0.key)=\($0.value)") } + [nil] } ?? []
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid = pid_t()
        let spawned = envp.isEmpty
            ? posix_spawn(&pid, arguments[0], &actions, &attributes, &argv, environ)
            : posix_spawn(&pid, arguments[0], &actions, &attributes, &argv, &envp)
        guard spawned == 0 else {
            throw SubprocessError(description: "cannot run \(arguments[0]): \(String(cString: strerror(spawned)))")
        }
        return pid
    }

    /// The exit code of a `waitpid` status (`WEXITSTATUS`), or 128 + the signal that ended it.
    public static func exitStatus(_ status: Int32) -> Int {
        Int((status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F))
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
