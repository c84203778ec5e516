import Foundation

/// Where an environment is in its life. `requested → starting → ready → stopping → stopped`, or
/// `failed` from `requested` or `starting`.
public enum EnvironmentState: String, Sendable, Codable, CaseIterable {
    case requested, starting, ready, stopping, stopped, failed

    /// Whether the environment is live: it occupies its (student, course) slot, counts against the
    /// caps and its host's room, reserves its cost and has a route in the proxy. The database's
    /// twin of this rule is `portal_is_live(state)` (Migrations/0007), which every query and the
    /// partial indexes use; a test checks that the two agree for every state.
    public var isLive: Bool {
        switch self {
        case .requested, .starting, .ready, .stopping: true
        case .stopped, .failed: false
        }
    }

    /// Whether `next` may follow this state.
    public func canMove(to next: EnvironmentState) -> Bool {
        switch (self, next) {
        case (.requested, .starting), (.requested, .failed), (.requested, .stopped),
            (.starting, .ready), (.starting, .failed), (.starting, .stopping),
            (.ready, .stopping), (.ready, .stopped), (.ready, .failed),
            (.stopping, .stopped), (.stopping, .failed):
            return true
        default:
            return false
        }
    }
}

/// Why an environment stopped.
public enum StopReason: String, Sendable, Codable {
    case student, staff, idle, maxLifetime = "max_lifetime", spendCap = "spend_cap", hostLost = "host_lost", failed, vanished, shutdown

    /// What the student is told about a stopped environment.
    public var explanation: String {
        switch self {
        case .student: "Stopped at your request"
        case .staff: "Stopped by the module team"
        case .idle: "Stopped after a period without activity"
        case .maxLifetime: "Stopped on reaching its maximum running time"
        case .spendCap: "Stopped because the course's compute budget is spent"
        case .hostLost: "Stopped because the machine it ran on was lost"
        case .failed: "Stopped after a failure"
        case .vanished: "Stopped: it was no longer running"
        case .shutdown: "Stopped when the portal shut down"
        }
    }
}

/// An environment as the lifecycle sees it: who and what it is for, where it runs, and its state.
public struct EnvironmentRecord: Sendable, Equatable {
    public var id: Int64
    public var userSlug: String
    public var courseSlug: String
    public var profile: Profile
    public var profileVersion: Int
    /// The host the environment was placed on (the name of its engine in the pool).
    public var engine: String
    public var state: EnvironmentState
    public var message: String?
    public var containerID: String?
    public var containerName: String
    /// `host:port` of the running server, once known.
    public var upstream: String?
    /// The server's secret, sent in ``JupyterCommand/secretHeader`` (decrypted by the store; never sent to a browser).
    public var token: String
    public var homeVolume: String
    /// The URL path the server is served under, e.g. `/user/k3x9…/a1b2c3d4/`.
    public var basePath: String
    public var requestedAt: Date
    public var readyAt: Date?
    /// The GPUs of its host it holds, by id.
    public var gpuIDs: [String]

    public init(
        id: Int64, userSlug: String, courseSlug: String, profile: Profile, profileVersion: Int, engine: String, state: EnvironmentState,
        message: String? = nil, containerID: String? = nil, containerName: String, upstream: String? = nil, token: String, homeVolume: String,
        basePath: String, requestedAt: Date = Date(), readyAt: Date? = nil, gpuIDs: [String] = []
    ) {
        self.id = id
        self.userSlug = userSlug
        self.courseSlug = courseSlug
        self.profile = profile
        self.profileVersion = profileVersion
        self.engine = engine
        self.state = state
        self.message = message
        self.containerID = containerID
        self.containerName = containerName
        self.upstream = upstream
        self.token = token
        self.homeVolume = homeVolume
        self.basePath = basePath
        self.requestedAt = requestedAt
        self.readyAt = readyAt
        self.gpuIDs = gpuIDs
    }
}

/// A request for a student's environment in a course, from a verified launch. Admission decides
/// whether it may start and on which host.
public struct EnvironmentClaim: Sendable {
    public var userID: Int64
    public var courseID: Int64
    public var profile: Profile
    public var profileVersion: Int

    public init(userID: Int64, courseID: Int64, profile: Profile, profileVersion: Int) {
        self.userID = userID
        self.courseID = courseID
        self.profile = profile
        self.profileVersion = profileVersion
    }
}

/// A state change to record, with whatever became known with it.
public struct EnvironmentChange: Sendable {
    public var state: EnvironmentState
    public var message: String?
    public var containerID: String?
    public var upstream: String?
    public var stopReason: StopReason?
    /// With `ready`: how long the start took, and the portal's own share of it, in milliseconds.
    public var timings: (start: Int, portal: Int)?
    /// What went wrong, in the engine's or the store's own words: kept in the environment's event
    /// for operators, never shown to the student (``message`` is for them).
    public var detail: String?

    public init(
        _ state: EnvironmentState, message: String? = nil, containerID: String? = nil, upstream: String? = nil, stopReason: StopReason? = nil,
        timings: (start: Int, portal: Int)? = nil, detail: String? = nil
    ) {
        self.detail = detail
        self.state = state
        self.message = message
        self.containerID = containerID
        self.upstream = upstream
        self.stopReason = stopReason
        self.timings = timings
    }
}

/// Where environments are recorded; the portal backs it with PostgreSQL.
public protocol EnvironmentStore: Sendable {
    /// The live environment of the claim's (student, course), creating a `requested` one when there
    /// is none and admission allows it. `created` is true for exactly one of any number of
    /// simultaneous callers.
    /// - Throws: ``AdmissionRefusal`` when a cap, the hosts' room or the course's budget says no
    ///   (the refusal is recorded).
    func claim(_ claim: EnvironmentClaim) async throws -> (record: EnvironmentRecord, created: Bool)
    /// Records a state change if the current state allows it; returns the updated record, or `nil`
    /// when the change was not allowed (someone else moved it first).
    @discardableResult
    func update(_ id: Int64, _ change: EnvironmentChange) async throws -> EnvironmentRecord?
    /// The environment with `id`.
    func find(_ id: Int64) async throws -> EnvironmentRecord?
    /// Every live environment placed on the host `engine`.
    func live(engine: String) async throws -> [EnvironmentRecord]
}
