import Foundation

/// Course materials for a profile: a directory on the host, or a git repository cloned once per
/// profile version into the portal's cache. The container sees them read-only at ``mountPath`` and
/// copies them into the student's home on its first start only, never over the student's files.
public struct CourseMaterials: Sendable {
    /// Where the materials appear inside the container.
    public static let mountPath = "/opt/portal/materials"
    /// The file that marks a home as seeded.
    public static let marker = ".portal-materials-copied"

    /// The cache for cloned repositories, e.g. `<data_dir>/materials`.
    public let cacheDirectory: String

    public init(cacheDirectory: String) {
        self.cacheDirectory = cacheDirectory
    }

    /// The host directory holding the profile's materials, cloning a git repository if needed.
    public func hostDirectory(for profile: Profile, version: Int) throws -> String? {
        switch profile.materials {
        case nil:
            return nil
        case .directory(let path):
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw EngineError(.failed, "The course materials directory \(path) of profile \(profile.slug) does not exist on this host.")
            }
            return path
        case .git(let url, let ref):
            let target = "\(cacheDirectory)/\(profile.slug)-v\(version)"
            if FileManager.default.fileExists(atPath: target + "/.git") { return target }
            try FileManager.default.createDirectory(atPath: cacheDirectory, withIntermediateDirectories: true)
            let partial = target + ".partial-\(UUID().uuidString.prefix(8))"
            var arguments = ["/usr/bin/git", "clone", "--quiet", "--depth", "1"]
            if let ref { arguments += ["--branch", ref] }
            arguments += ["--", url, partial]
            let result = try Subprocess.run(arguments)
            guard result.status == 0 else {
                try? FileManager.default.removeItem(atPath: partial)
                throw EngineError(.failed, "Cloning the course materials \(url) for profile \(profile.slug) failed: \(result.output.suffix(300))")
            }
            do {
                try FileManager.default.moveItem(atPath: partial, toPath: target)
            } catch {
                // Another start cloned it at the same time.
                try? FileManager.default.removeItem(atPath: partial)
            }
            return target
        }
    }

    /// Wraps `command` so that the home is seeded from the materials once: `cp -rn` never replaces a
    /// file the student has, and the marker keeps later starts from restoring files they deleted.
    public static func seeding(_ command: [String]) -> [String] {
        let script = """
            if [ ! -e "$HOME/\(marker)" ]; then cp -rn \(mountPath)/. "$HOME"/ && touch "$HOME/\(marker)"; fi; exec "$@"
            """
        return ["/bin/sh", "-c", script, "portal-seed"] + command
    }
}
