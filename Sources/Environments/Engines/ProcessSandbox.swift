import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The bubblewrap command line of one sandboxed server (the recipe verified in docs/ENGINES.md):
/// a shell (root) moves itself into the environment's cgroups, `setpriv` becomes the student's uid
/// without groups, capabilities or new privileges, and `bwrap` builds a root of its own — `/usr` and
/// the virtualenv read-only, the home at `/home/student`, a private `/tmp`, synthetic passwd and
/// hosts, no network, nothing else of the host.
struct ProcessSandbox {
    let venv: String
    let uid: UInt32
    let home: String
    let socketDirectory: String
    let cgroupProcs: [String]
    /// Host files bound read-only at their paths in the sandbox (``ContainerSpec/files``).
    var files: [(host: String, path: String)] = []

    /// Jupyter listening on the unix socket, kernels over IPC (no TCP ports at all).
    func jupyterArguments(basePath: String) -> [String] {
        [
            venv + "/bin/jupyter", "server", "--no-browser", "--sock=/run/jupyter/jupyter.sock", "--ServerApp.sock_mode=0600",
            "--ServerApp.base_url=\(basePath)", "--ServerApp.root_dir=/home/student", "--KernelManager.transport=ipc", "--KernelManager.ip=/tmp/kernel",
        ]
    }

    func arguments(command: [String]) -> [String] {
        var etc = [String]()
        for path in ["/etc/ssl/certs", "/etc/ld.so.cache", "/etc/nsswitch.conf", "/etc/localtime", "/etc/mime.types", "/etc/alternatives"]
        where FileManager.default.fileExists(atPath: path) {
            etc += ["--ro-bind", path, path]
        }
        let joinCgroups = cgroupProcs.map { "echo $$ > '\($0)'" }.joined(separator: "; ")
        return [
            "/bin/sh", "-c", (joinCgroups.isEmpty ? "" : joinCgroups + "; ") + "exec \"$@\"", "sh",
            "/usr/bin/setpriv", "--reuid=\(uid)", "--regid=\(uid)", "--clear-groups", "--no-new-privs", "--inh-caps=-all",
            "/usr/bin/bwrap", "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session", "--hostname", "jupyter",
            "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink", "usr/sbin", "/sbin", "--symlink", "usr/lib", "/lib",
            "--symlink", "usr/lib64", "/lib64", "--ro-bind", venv, venv, "--proc", "/proc", "--dev", "/dev",
            "--size", String(256 << 20), "--tmpfs", "/tmp", "--dir", "/var/tmp",
        ] + etc + [
            "--ro-bind-data", "5", "/etc/passwd", "--ro-bind-data", "6", "/etc/group", "--ro-bind-data", "7", "/etc/hosts",
            "--bind", home, "/home/student", "--bind", socketDirectory, "/run/jupyter", "--chdir", "/home/student",
        ] + files.flatMap { ["--ro-bind", $0.host, $0.path] } + ["--"] + command
    }

    /// Starts the sandbox with only `environment` (plus a minimal PATH/HOME) and output to `log`.
    /// - Returns: the pid of the sandbox's outermost process.
    func spawn(command: [String], environment: [String: String], log: String) throws -> Int32 {
        var variables = [
            "PATH": venv + "/bin:/usr/bin:/bin", "HOME": "/home/student", "USER": "student", "LOGNAME": "student", "LANG": "C.UTF-8",
            "SHELL": "/bin/bash", "TERM": "xterm-256color",
        ]
        variables.merge(environment) { _, new in new }
        // bwrap reads the synthetic /etc files from these descriptors.
        let files = [
            5: "student:x:\(uid):\(uid):Student:/home/student:/bin/bash\n",
            6: "student:x:\(uid):\n",
            7: "127.0.0.1\tlocalhost jupyter\n::1\tlocalhost ip6-localhost\n",
        ]
        var inputs = [Int32: Int32]()
        defer { for source in inputs.values { close(source) } }
        for (target, text) in files {
            var ends: [Int32] = [0, 0]
            guard pipe(&ends) == 0 else { throw EngineError(.failed, "pipe: \(String(cString: strerror(errno)))") }
            _ = text.withCString { write(ends[1], $0, strlen($0)) }
            close(ends[1])
            // Out of the way of the targets (5–7), so that no dup2 overwrites another's source.
            let source = fcntl(ends[0], F_DUPFD_CLOEXEC, 64)
            close(ends[0])
            guard source >= 0 else { throw EngineError(.failed, "fcntl: \(String(cString: strerror(errno)))") }
            inputs[Int32(target)] = source
        }
        do {
            return try Subprocess.spawn(arguments(command: command), environment: variables, output: log, inputs: inputs, newSession: true)
        } catch {
            throw EngineError(.failed, "cannot start the sandbox: \(error)")
        }
    }
}

/// The cgroup (v1) directories of one environment: memory (swap included), CPU quota and pids,
/// under `<root>/<controller>/portal/<name>`. Where a controller is missing or not writable the
/// environment runs without that limit and a warning is logged.
struct ProcessCgroups {
    let root: String
    let name: String
    let logger: Logger

    static let controllers = ["memory", "cpu", "cpuacct", "pids"]

    private func directory(_ controller: String) -> String { "\(root)/\(controller)/portal/\(name)" }

    /// Creates the groups with their limits; returns the `cgroup.procs` files to join.
    func create(memoryBytes: Int64, nanoCPUs: Int64, pids: Int64) -> [String] {
        var procs = [String]()
        for controller in Self.controllers {
            let path = directory(controller)
            do {
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
                switch controller {
                case "memory":
                    try write(path + "/memory.limit_in_bytes", memoryBytes)
                    try? write(path + "/memory.memsw.limit_in_bytes", memoryBytes)
                case "cpu":
                    try write(path + "/cpu.cfs_period_us", 100_000)
                    try write(path + "/cpu.cfs_quota_us", max(1000, nanoCPUs / 10_000))
                case "pids":
                    try write(path + "/pids.max", pids)
                default:
                    break
                }
                procs.append(path + "/cgroup.procs")
            } catch {
                logger.warning("no \(controller) cgroup for the environment; it runs without that limit", metadata: ["environment": "\(name)", "error": "\(error)"])
            }
        }
        return procs
    }

    private func write(_ file: String, _ value: Int64) throws {
        try String(value).write(toFile: file, atomically: false, encoding: .utf8)
    }

    private func read(_ controller: String, _ file: String) -> Int64 {
        (try? String(contentsOfFile: directory(controller) + "/" + file, encoding: .utf8)).flatMap { Int64($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 0
    }

    /// The pids in the environment's groups.
    func processes() -> [Int32] {
        let text = (try? String(contentsOfFile: directory("pids") + "/cgroup.procs", encoding: .utf8))
            ?? (try? String(contentsOfFile: directory("memory") + "/cgroup.procs", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { Int32($0) }
    }

    func stats() -> ContainerStats {
        ContainerStats(
            memoryBytes: read("memory", "memory.usage_in_bytes"), memoryLimitBytes: read("memory", "memory.limit_in_bytes"),
            cpuNanoseconds: read("cpuacct", "cpuacct.usage"), pids: Int(read("pids", "pids.current"))
        )
    }

    /// Removes the groups, waiting up to five seconds for dying processes to leave them.
    func remove() async {
        for controller in Self.controllers {
            let path = directory(controller)
            for _ in 0..<50 {
                if rmdir(path) == 0 || errno == ENOENT { break }
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
    }
}
