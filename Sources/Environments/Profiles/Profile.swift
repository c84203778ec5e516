import Foundation

/// What a course's environment is: image (or command), resources, lifetimes, persistence, course
/// materials, environment variables and proxied apps. Module teams keep profiles as YAML in git and
/// load them with `portal profile apply`; every change is a new version, and a running environment
/// keeps the version it started with.
public struct Profile: Sendable, Equatable, Codable {
    /// Whether a student's home outlives the environment.
    public enum Persistence: String, Sendable, Codable {
        /// The home is kept per (course, student) across stops and restarts.
        case persistent
        /// Every start gets a fresh, empty home, removed when the environment stops.
        case disposable
    }

    /// Course materials copied into the home on first start (never over the student's own edits).
    public enum Materials: Sendable, Equatable, Codable {
        /// A directory on the host running the environment.
        case directory(String)
        /// A git repository, cloned at `ref` (a branch or tag; default branch when `nil`).
        case git(url: String, ref: String?)
    }

    /// A web application reached under the server, e.g. OpenRefine through jupyter-server-proxy.
    public struct App: Sendable, Equatable, Codable {
        /// A short name shown to students.
        public var name: String
        /// The path under the server's base URL, e.g. `/openrefine/`.
        public var path: String

        public init(name: String, path: String) {
            self.name = name
            self.path = path
        }
    }

    /// Which courses use this profile when neither the link nor a course mapping names one.
    public struct MatchRules: Sendable, Equatable, Codable {
        /// Exact `context_id` values.
        public var contextIDs: [String]
        /// `context_label` patterns; `*` matches any run of characters (`TM351-*`).
        public var contextLabels: [String]

        public init(contextIDs: [String] = [], contextLabels: [String] = []) {
            self.contextIDs = contextIDs
            self.contextLabels = contextLabels
        }

        /// Whether a course with this context id and label matches.
        public func matches(contextID: String, label: String?) -> Bool {
            if contextIDs.contains(contextID) { return true }
            guard let label else { return false }
            return contextLabels.contains { Glob.matches($0, label) }
        }
    }

    /// The profile's stable identifier, used in links (`custom_profile=…`) and mappings.
    public var slug: String
    public var displayName: String
    public var description: String
    /// The container image (container engines).
    public var image: String?
    /// The command that starts the server (the process engine), defaulting to `jupyter server`.
    public var command: [String]?
    /// CPU limit in cores (fractional).
    public var cpu: Double
    /// Memory limit in bytes.
    public var memoryBytes: Int64
    /// How many GPUs the environment gets (0 for none).
    public var gpus: Int
    /// Stop after this long without activity, in seconds.
    public var idleTimeoutSeconds: Int
    /// Stop after this long in any case, in seconds.
    public var maxLifetimeSeconds: Int
    public var persistence: Persistence
    public var materials: Materials?
    /// Environment variables for the server.
    public var environment: [String: String]
    public var apps: [App]
    public var match: MatchRules?
    /// Labels a host must carry to run this profile (e.g. `gpu: a100`).
    public var hostLabels: [String: String]
    /// At most this many environments of the profile live at once; `nil` for no cap.
    public var maxRunning: Int?

    public init(
        slug: String, displayName: String, description: String = "", image: String? = nil, command: [String]? = nil, cpu: Double = 1,
        memoryBytes: Int64 = 1 << 30, gpus: Int = 0, idleTimeoutSeconds: Int = 3600, maxLifetimeSeconds: Int = 8 * 3600,
        persistence: Persistence = .persistent, materials: Materials? = nil, environment: [String: String] = [:], apps: [App] = [],
        match: MatchRules? = nil, hostLabels: [String: String] = [:], maxRunning: Int? = nil
    ) {
        self.slug = slug
        self.displayName = displayName
        self.description = description
        self.image = image
        self.command = command
        self.cpu = cpu
        self.memoryBytes = memoryBytes
        self.gpus = gpus
        self.idleTimeoutSeconds = idleTimeoutSeconds
        self.maxLifetimeSeconds = maxLifetimeSeconds
        self.persistence = persistence
        self.materials = materials
        self.environment = environment
        self.apps = apps
        self.match = match
        self.hostLabels = hostLabels
        self.maxRunning = maxRunning
    }
}

/// `*` wildcards, as in `TM351-*`.
enum Glob {
    static func matches(_ pattern: String, _ text: String) -> Bool {
        let parts = pattern.split(separator: "*", omittingEmptySubsequences: false).map(String.init)
        guard parts.count > 1 else { return pattern == text }
        var rest = Substring(text)
        guard rest.hasPrefix(parts[0]) else { return false }
        rest = rest.dropFirst(parts[0].count)
        for part in parts.dropFirst().dropLast() where !part.isEmpty {
            guard let range = rest.range(of: part) else { return false }
            rest = rest[range.upperBound...]
        }
        return rest.hasSuffix(parts[parts.count - 1])
    }
}
