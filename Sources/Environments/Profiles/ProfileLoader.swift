import Foundation

/// Reads profiles from YAML files, validating every key: a file holds one profile (a mapping) or a
/// list of them; a directory contributes every `*.yaml` / `*.yml` in it. Errors name the file, the
/// key and why.
public enum ProfileLoader {
    static let keys: Set<String> = [
        "slug", "display_name", "description", "image", "command", "cpu", "memory", "gpu", "idle_timeout", "max_lifetime",
        "persistence", "materials", "environment", "apps", "match", "host_labels", "max_running",
    ]

    /// Loads the profiles in `path` (a file or a directory).
    public static func load(path: String) throws(ConfigurationError) -> [Profile] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ConfigurationError(file: path, key: "", reason: "no such file or directory")
        }
        var files = [path]
        if isDirectory.boolValue {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
            files = names.filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted().map { "\(path)/\($0)" }
            guard !files.isEmpty else { throw ConfigurationError(file: path, key: "", reason: "the directory has no .yaml or .yml files") }
        }
        var profiles = [Profile]()
        var origins = [String: String]()
        for file in files {
            for profile in try parse(YAMLValue.load(path: file)) {
                if let first = origins[profile.slug] {
                    throw ConfigurationError(file: file, key: "slug", reason: "the profile \"\(profile.slug)\" is also defined in \(first)")
                }
                origins[profile.slug] = file
                profiles.append(profile)
            }
        }
        return profiles
    }

    /// Parses one document: a profile mapping, or a list of them.
    public static func parse(_ document: YAMLValue) throws(ConfigurationError) -> [Profile] {
        if let items = try? document.sequence() {
            var result = [Profile]()
            for item in items { result.append(try profile(item)) }
            return result
        }
        return [try profile(document)]
    }

    static func profile(_ value: YAMLValue) throws(ConfigurationError) -> Profile {
        let map = try value.mapping(allowing: keys)
        let slugNode = try map.required("slug")
        let slug = try slugNode.string()
        guard slug.count <= 63, slug.first?.isLetter == true, slug.allSatisfy({ ($0.isLetter && $0.isASCII && $0.isLowercase) || $0.isNumber || $0 == "-" }) else {
            throw slugNode.error("use lower-case letters, digits and '-', starting with a letter, at most 63 characters")
        }
        var profile = Profile(slug: slug, displayName: try map.required("display_name").string())
        profile.description = try map["description"]?.string() ?? ""
        profile.image = try map["image"]?.string()
        if let command = map["command"] {
            var parts = [String]()
            for item in try command.sequence() { parts.append(try item.string()) }
            guard !parts.isEmpty else { throw command.error("must name a program") }
            profile.command = parts
        }
        if profile.image == nil, profile.command == nil {
            throw value.error("needs image (for container engines) or command (for the process engine)")
        }
        if let cpu = map["cpu"] {
            let cores = try cpu.double()
            guard cores > 0, cores <= 256 else { throw cpu.error("must be more than 0 and at most 256 cores") }
            profile.cpu = cores
        }
        if let memory = map["memory"] {
            let bytes = try memory.byteSize()
            guard bytes >= 64 << 20 else { throw memory.error("must be at least 64MiB: a Jupyter server needs about 60 MiB idle") }
            profile.memoryBytes = bytes
        }
        profile.gpus = try map["gpu"]?.int(in: 0...16) ?? 0
        profile.idleTimeoutSeconds = try seconds(map["idle_timeout"]) ?? profile.idleTimeoutSeconds
        profile.maxLifetimeSeconds = try seconds(map["max_lifetime"]) ?? profile.maxLifetimeSeconds
        if let persistence = map["persistence"] {
            guard let parsed = Profile.Persistence(rawValue: try persistence.string()) else {
                throw persistence.error("expected persistent or disposable")
            }
            profile.persistence = parsed
        }
        if let materials = map["materials"] {
            let fields = try materials.mapping(allowing: ["directory", "git", "ref"])
            switch (fields["directory"], fields["git"]) {
            case (let directory?, nil):
                let path = try directory.string()
                guard path.hasPrefix("/") else { throw directory.error("must be an absolute path") }
                profile.materials = .directory(path)
            case (nil, let git?):
                profile.materials = .git(url: try git.string(), ref: try fields["ref"]?.string())
            default:
                throw materials.error("give exactly one of directory or git")
            }
        }
        if let environment = map["environment"] {
            let names = try environment.keys()
            for name in names {
                guard name.first.map({ $0.isLetter || $0 == "_" }) == true, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
                    throw environment.error("\(name) is not a valid environment variable name")
                }
                guard !name.hasPrefix("JUPYTER"), !name.hasPrefix("PORTAL_") else {
                    throw environment.error("\(name) is set by the portal and cannot be overridden")
                }
                profile.environment[name] = try environment.child(name).scalarText()
            }
        }
        for item in try map["apps"]?.sequence() ?? [] {
            let app = try item.mapping(allowing: ["name", "path"])
            let pathNode = try app.required("path")
            var path = try pathNode.string()
            guard path.hasPrefix("/"), !path.contains(".."), !path.contains("//") else { throw pathNode.error("must be a path under the server such as /openrefine/") }
            if !path.hasSuffix("/") { path += "/" }
            profile.apps.append(Profile.App(name: try app.required("name").string(), path: path))
        }
        if let match = map["match"] {
            let rules = try match.mapping(allowing: ["context_ids", "context_labels"])
            var parsed = Profile.MatchRules()
            for item in try rules["context_ids"]?.sequence() ?? [] { parsed.contextIDs.append(try item.string()) }
            for item in try rules["context_labels"]?.sequence() ?? [] { parsed.contextLabels.append(try item.string()) }
            profile.match = parsed
        }
        if let labels = map["host_labels"] {
            for name in try labels.keys() { profile.hostLabels[name] = try labels.child(name).scalarText() }
        }
        profile.maxRunning = try map["max_running"]?.int(in: 1...1_000_000)
        guard profile.maxLifetimeSeconds >= profile.idleTimeoutSeconds else {
            throw value.error("max_lifetime must not be shorter than idle_timeout")
        }
        return profile
    }

    private static func seconds(_ value: YAMLValue?) throws(ConfigurationError) -> Int? {
        guard let value else { return nil }
        let duration = try value.duration()
        guard duration >= .seconds(60) else { throw value.error("must be at least 1 minute") }
        return Int(duration.components.seconds)
    }
}
