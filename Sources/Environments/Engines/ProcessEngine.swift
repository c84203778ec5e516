import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The embedded default ``Engine``: each environment is a `jupyter server` from a shared virtualenv,
/// run in a bubblewrap sandbox as its own unprivileged uid, with its own home bound at
/// `/home/student`, a private `/tmp`, no network and no view of other homes, listening on a unix
/// socket in a directory only root can reach, with memory, CPU and pids limits through cgroups (v1)
/// where the machine has them. The portal must run as root. Environments die with the portal
/// (`--die-with-parent`); reconciling marks them stopped. See docs/ENGINES.md.
public final class ProcessEngine: Engine, @unchecked Sendable {
    // Invariant: mutable state lives in files under `root`, guarded by `lock`.
    public let name = "process@local"
    /// The virtualenv with jupyter-server (scripts/engine/setup-process-engine.sh).
    public let venv: String
    let root: String
    let cgroupRoot: String
    let firstUID: UInt32
    let logger: Logger
    private let lock = NSLock()

    var homes: String { root + "/homes" }
    /// Where the servers' socket directories are: under `root` when that is short enough for a
    /// unix socket path (108 bytes), else under /run.
    let sockets: String
    var state: String { root + "/state" }
    /// Where each environment's ``ContainerSpec/files`` are on the host, bound read-only into its sandbox.
    var files: String { root + "/files" }

    /// The directory holding one environment's socket: named by a hash, so that the socket's path
    /// stays short whatever the environment's name.
    func socketDirectory(_ id: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in id.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return sockets + "/" + String(hash, radix: 16)
    }

    /// - Parameters:
    ///   - root: where homes, sockets and state live (e.g. `<data_dir>/process-engine`); must be
    ///     reachable by unprivileged users (not under /root).
    ///   - venv: the virtualenv holding `jupyter`.
    public init(root: String, venv: String = "/opt/portal/jupyter-venv", cgroupRoot: String = "/sys/fs/cgroup", firstUID: UInt32 = 200_000, logger: Logger) throws {
        guard geteuid() == 0 else { throw EngineError(.failed, "The process engine needs the portal to run as root (it starts each server as its own user).") }
        guard FileManager.default.isExecutableFile(atPath: venv + "/bin/jupyter") else {
            throw EngineError(.failed, "There is no jupyter in \(venv); create it with scripts/engine/setup-process-engine.sh.")
        }
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/bwrap") else {
            throw EngineError(.failed, "bubblewrap is not installed; run scripts/engine/setup-process-engine.sh.")
        }
        self.root = root
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in root.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        sockets = root.utf8.count + 4 + 17 + 13 < 104 ? root + "/run" : "/run/portal-engine-" + String(hash % 0xFFFF_FFFF, radix: 16)
        self.venv = venv
        self.cgroupRoot = cgroupRoot
        self.firstUID = firstUID
        self.logger = logger
        for directory in [root + "/homes", sockets, root + "/state", root + "/files"] {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        chmod(root, 0o755)
        chmod(homes, 0o711)
        chmod(sockets, 0o711)  // each server reaches only its own directory below
        chmod(state, 0o700)
        chmod(files, 0o711)
    }

    /// Creates the home directory and gives it a uid of its own.
    func ensureHome(_ name: String) throws {
        let path = try homePath(name)
        try lock.withLock {
            if FileManager.default.fileExists(atPath: path) { return }
            let uid = try nextUID()
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
            guard chown(path, uid, uid) == 0, chmod(path, 0o700) == 0 else {
                throw EngineError(.failed, "cannot give the home \(path) to uid \(uid): \(String(cString: strerror(errno)))")
            }
        }
    }

    public func deleteHome(_ name: String) async throws {
        let path = try homePath(name)
        if FileManager.default.fileExists(atPath: path) { try FileManager.default.removeItem(atPath: path) }
    }

    /// Records the sandbox to run and writes its files; ``startSandbox(_:)`` starts it.
    func createSandbox(_ spec: ContainerSpec) throws -> String {
        let home = try homePath(try homeVolume(of: spec))
        guard FileManager.default.fileExists(atPath: home) else { throw EngineError(.notFound, "the home \(home) does not exist") }
        let uid = try owner(of: home)
        try lock.withLock {
            let file = stateFile(spec.name)
            guard !FileManager.default.fileExists(atPath: file) else { throw EngineError(.conflict, "\(name): \(spec.name) exists already") }
            let record = ProcessRecord(spec: spec, files: try write(spec.files, for: spec.name, uid: uid), pid: nil, created: Date())
            try record.write(to: file)
        }
        return spec.name
    }

    /// Writes `files` under ``files``/`id` (a directory only root and the sandbox's uid can enter;
    /// the files belong to root), for ``startSandbox(_:)`` to bind read-only at their paths.
    /// - Returns: each file's host path and path in the sandbox.
    private func write(_ specFiles: [ContainerSpec.File], for id: String, uid: UInt32) throws -> [ProcessRecord.File] {
        let directory = files + "/" + id
        try? FileManager.default.removeItem(atPath: directory)
        guard !specFiles.isEmpty else { return [] }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        guard chown(directory, uid, uid) == 0, chmod(directory, 0o500) == 0 else {
            throw EngineError(.failed, "cannot give \(directory) to uid \(uid): \(String(cString: strerror(errno)))")
        }
        var written = [ProcessRecord.File]()
        for (index, file) in specFiles.enumerated() {
            _ = try file.relativePath()  // checked: absolute, no . or ..
            let host = directory + "/\(index)"
            guard FileManager.default.createFile(atPath: host, contents: file.contents, attributes: [.posixPermissions: Int(file.mode & 0o7777)]) else {
                throw EngineError(.failed, "cannot write \(host): \(String(cString: strerror(errno)))")
            }
            written.append(ProcessRecord.File(host: host, path: file.path))
        }
        return written
    }

    /// Seeds the home with course materials (once) and spawns the sandboxed server.
    func startSandbox(_ id: String) throws {
        var record = try load(id)
        if let pid = record.pid, Self.isAlive(pid) { return }
        let spec = record.spec
        let home = try homePath(try homeVolume(of: spec))
        let uid = try owner(of: home)
        if let materials = spec.mounts.first(where: { $0.path == CourseMaterials.mountPath })?.volume {
            try seed(home: home, from: materials, uid: uid)
        }
        let socketDirectory = socketDirectory(id)
        try? FileManager.default.removeItem(atPath: socketDirectory)
        try FileManager.default.createDirectory(atPath: socketDirectory, withIntermediateDirectories: false)
        chown(socketDirectory, uid, uid)
        chmod(socketDirectory, 0o700)
        let cgroups = ProcessCgroups(root: cgroupRoot, name: id, logger: logger)
        let procs = cgroups.create(memoryBytes: spec.memoryBytes, nanoCPUs: spec.nanoCPUs, pids: spec.pidsLimit)
        let sandbox = ProcessSandbox(
            venv: venv, uid: uid, home: home, socketDirectory: socketDirectory, cgroupProcs: procs, files: (record.files ?? []).map { ($0.host, $0.path) }
        )
        let command = spec.command ?? sandbox.jupyterArguments(basePath: spec.basePath)
        let log = state + "/" + id + ".log"
        record.pid = try sandbox.spawn(command: command, environment: spec.environment, log: log)
        try lock.withLock { try record.write(to: stateFile(id)) }
    }

    /// The sandbox's state, or `nil` when there is none.
    func inspectSandbox(_ id: String) throws -> ContainerInfo? {
        guard let record = try loadIfPresent(id) else { return nil }
        let running = record.pid.map(Self.isAlive) ?? false
        let socket = socketDirectory(id) + "/jupyter.sock"
        return ContainerInfo(
            id: id, name: id, labels: record.spec.labels, state: running ? "running" : (record.pid == nil ? "created" : "exited"), running: running,
            exitCode: running ? nil : record.pid.flatMap(Self.reap), socketPath: running && FileManager.default.fileExists(atPath: socket) ? socket : nil
        )
    }

    /// SIGTERM to the Jupyter server (so kernels shut down cleanly), then the sandbox is killed after `timeout`.
    func terminate(_ id: String, timeout: Duration) async throws {
        guard let record = try loadIfPresent(id), let pid = record.pid, Self.isAlive(pid) else { return }
        let server = ProcessCgroups(root: cgroupRoot, name: id, logger: logger).processes().first { Self.commandLine(of: $0).contains("bin/jupyter") && $0 != pid }
        kill(server ?? pid, SIGTERM)
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline, Self.isAlive(pid) {
            try await Task.sleep(for: .milliseconds(100))
        }
        if Self.isAlive(pid) { kill(pid, SIGKILL) }
        for _ in 0..<50 where Self.isAlive(pid) { try await Task.sleep(for: .milliseconds(100)) }
    }

    /// Terminates the sandbox and removes everything of it but its home.
    func removeSandbox(_ id: String, timeout: Duration) async throws {
        try await terminate(id, timeout: timeout)
        for path in [socketDirectory(id), files + "/" + id, stateFile(id), state + "/" + id + ".log"] {
            try Self.removeIfPresent(path)
        }
        await ProcessCgroups(root: cgroupRoot, name: id, logger: logger).remove()
    }

    /// Every sandbox carrying all of `labels`.
    func listSandboxes(labels: [String: String]) throws -> [ContainerInfo] {
        let names = try FileManager.default.contentsOfDirectory(atPath: state)
        var result = [ContainerInfo]()
        for file in names where file.hasSuffix(".json") {
            let id = String(file.dropLast(5))
            guard let info = try inspectSandbox(id), labels.allSatisfy({ info.labels[$0.key] == $0.value }) else { continue }
            result.append(info)
        }
        return result
    }

    public func stats(_ id: String) async throws -> ContainerStats {
        ProcessCgroups(root: cgroupRoot, name: id, logger: logger).stats()
    }

    /// The last `lines` lines the sandbox's server printed.
    func sandboxLogs(_ id: String, lines: Int) -> String {
        let text = (try? String(contentsOfFile: state + "/" + id + ".log", encoding: .utf8)) ?? ""
        return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }

    // MARK: - Helpers

    private func homeVolume(of spec: ContainerSpec) throws -> String {
        guard let home = spec.mounts.first(where: { !$0.volume.hasPrefix("/") })?.volume else {
            throw EngineError(.failed, "\(spec.name) has no home")
        }
        return home
    }

    private func homePath(_ name: String) throws -> String {
        guard !name.isEmpty, !name.contains("/"), !name.hasPrefix(".") else { throw EngineError(.failed, "invalid home name \(name)") }
        return homes + "/" + name
    }

    private func stateFile(_ id: String) -> String { state + "/" + id + ".json" }

    /// The sandbox's record, or `nil` when there is none (a record that cannot be read is an error).
    private func loadIfPresent(_ id: String) throws -> ProcessRecord? {
        do {
            return try load(id)
        } catch let error as EngineError where error.kind == .notFound {
            return nil
        }
    }

    private func load(_ id: String) throws -> ProcessRecord {
        guard !id.contains("/") else { throw EngineError(.notFound, "no environment \(id)") }
        return try ProcessRecord.read(from: stateFile(id))
    }

    /// The next free uid, counting up from ``firstUID`` (callers hold `lock`).
    private func nextUID() throws -> UInt32 {
        let counter = state + "/next-uid"
        let next = (try? String(contentsOfFile: counter, encoding: .utf8)).flatMap { UInt32($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? firstUID
        try String(next + 1).write(toFile: counter, atomically: true, encoding: .utf8)
        return next
    }

    private func owner(of path: String) throws -> UInt32 {
        var info = stat()
        guard stat(path, &info) == 0 else { throw EngineError(.failed, "cannot read \(path)") }
        guard info.st_uid >= firstUID else { throw EngineError(.failed, "the home \(path) is not owned by a sandbox uid") }
        return info.st_uid
    }

    /// Copies course materials into the home once (`cp -rn`), owned by the student.
    private func seed(home: String, from materials: String, uid: UInt32) throws {
        let marker = home + "/" + CourseMaterials.marker
        guard !FileManager.default.fileExists(atPath: marker) else { return }
        for arguments in [["/bin/cp", "-rn", materials + "/.", home + "/"], ["/bin/chown", "-R", "\(uid):\(uid)", home]] {
            let result = try Subprocess.run(arguments)
            guard result.status == 0 else { throw EngineError(.failed, "copying course materials into \(home) failed: \(result.output)") }
        }
        FileManager.default.createFile(atPath: marker, contents: nil)
        chown(marker, uid, uid)
    }

    /// Removes `path`; one that is not there is not an error, any other failure is.
    static func removeIfPresent(_ path: String) throws {
        do {
            try FileManager.default.removeItem(atPath: path)
        } catch let error as CocoaError where error.code == .fileNoSuchFile {
            return
        } catch {
            throw EngineError(.failed, "cannot remove \(path): \(error)")
        }
    }

    static func isAlive(_ pid: Int32) -> Bool {
        _ = reap(pid)
        return kill(pid, 0) == 0
    }

    /// Collects the exit status of a finished child; `nil` while it runs (or if it is not ours).
    @discardableResult
    static func reap(_ pid: Int32) -> Int? {
        var status: Int32 = 0
        guard waitpid(pid, &status, WNOHANG) == pid else { return nil }
        return Subprocess.exitStatus(status)
    }

    static func commandLine(of pid: Int32) -> String {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return "" }
        return String(decoding: data.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
    }
}

/// What the process engine remembers of an environment, in `<root>/state/<name>.json` (mode 0600:
/// it holds the server's token).
struct ProcessRecord: Codable {
    struct Spec: Codable {
        var name: String
        var command: [String]?
        var basePath: String
        var environment: [String: String]
        var labels: [String: String]
        var memoryBytes: Int64
        var nanoCPUs: Int64
        var pidsLimit: Int64
        var mounts: [[String]]
    }

    /// One of ``ContainerSpec/files``, written on the host.
    struct File: Codable {
        var host: String
        var path: String
    }

    var stored: Spec
    /// `nil` in records written before environments had files.
    var files: [File]?
    var pid: Int32?
    var created: Date

    init(spec: ContainerSpec, files: [File] = [], pid: Int32?, created: Date) {
        stored = Spec(
            name: spec.name, command: spec.command, basePath: spec.basePath, environment: spec.environment, labels: spec.labels,
            memoryBytes: spec.memoryBytes, nanoCPUs: spec.nanoCPUs, pidsLimit: spec.pidsLimit, mounts: spec.mounts.map { [$0.volume, $0.path] }
        )
        self.files = files
        self.pid = pid
        self.created = created
    }

    var spec: ContainerSpec {
        ContainerSpec(
            name: stored.name, image: "", command: stored.command, basePath: stored.basePath, environment: stored.environment, labels: stored.labels,
            memoryBytes: stored.memoryBytes, nanoCPUs: stored.nanoCPUs, pidsLimit: stored.pidsLimit,
            mounts: stored.mounts.map { ContainerSpec.Mount(volume: $0[0], path: $0[1]) }
        )
    }

    func write(to path: String) throws {
        let data = try JSONEncoder().encode(self)
        guard FileManager.default.createFile(atPath: path + ".new", contents: data, attributes: [.posixPermissions: 0o600]) else {
            throw EngineError(.failed, "cannot write \(path)")
        }
        guard rename(path + ".new", path) == 0 else { throw EngineError(.failed, "cannot write \(path)") }
    }

    static func read(from path: String) throws -> ProcessRecord {
        guard let data = FileManager.default.contents(atPath: path) else { throw EngineError(.notFound, "no environment at \(path)") }
        return try JSONDecoder().decode(ProcessRecord.self, from: data)
    }
}
