import Foundation

/// Caps on how many environments may be live at once; `nil` for no cap.
public struct AdmissionLimits: Sendable, Equatable {
    /// Across the whole installation.
    public var global: Int?
    /// In the launch's course.
    public var course: Int?
    /// Of the launch's profile.
    public var profile: Int?

    public init(global: Int? = nil, course: Int? = nil, profile: Int? = nil) {
        self.global = global
        self.course = course
        self.profile = profile
    }
}

/// What admission sees, read under the admission lock so that no other start can change it before
/// the decision is recorded.
public struct AdmissionSnapshot: Sendable, Equatable {
    /// Live environments (requested, starting, ready, stopping) everywhere, in the course, of the profile.
    public var live: Int
    public var liveInCourse: Int
    public var liveOfProfile: Int
    public var hosts: [HostLoad]
    /// The course's spend in its budget period so far: final costs of ended runs, reservations of live ones.
    public var courseCommitted: Decimal

    public init(live: Int = 0, liveInCourse: Int = 0, liveOfProfile: Int = 0, hosts: [HostLoad], courseCommitted: Decimal = 0) {
        self.live = live
        self.liveInCourse = liveInCourse
        self.liveOfProfile = liveOfProfile
        self.hosts = hosts
        self.courseCommitted = courseCommitted
    }
}

/// A start that may go ahead: where, with which GPUs, at what price, reserving what.
public struct Admitted: Sendable, Equatable {
    public var host: String
    public var gpuIDs: [String]
    public var rateCard: RateCard?
    /// The hourly price of the request under ``rateCard`` (0 without one).
    public var hourlyCost: Decimal
    /// The most the run can cost: ``hourlyCost`` over the profile's maximum lifetime.
    public var reservation: Decimal
}

/// Why a launch was not given an environment, for the student and the records.
public struct AdmissionRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Reason: String, Sendable, CaseIterable {
        case globalCap = "global_cap"
        case courseCap = "course_cap"
        case profileCap = "profile_cap"
        /// Every suitable host is full.
        case noCapacity = "no_capacity"
        /// No suitable host accepts environments now (draining or down), or none exists.
        case noHost = "no_host"
        case spendCap = "spend_cap"
    }

    public var reason: Reason
    /// What the student is told.
    public var message: String
    /// When trying again may help; `nil` when it will not (a spent budget, a profile the pool cannot run).
    public var retryAfter: Duration?

    public init(_ reason: Reason, _ message: String, retryAfter: Duration? = nil) {
        self.reason = reason
        self.message = message
        self.retryAfter = retryAfter
    }

    public var description: String { "\(reason.rawValue): \(message)" }
}

/// Decides whether a start may go ahead: the caps (global, course, profile), placement on a host
/// with room, and the course's budget. The decision is a pure function of the snapshot; the
/// caller makes it atomic by reading the snapshot and recording the result under one lock.
public struct Admission: Sendable {
    public var limits: AdmissionLimits
    public var placement: Placement
    public var rateCards: RateCards
    public var spendCap: SpendCap?
    /// What a student over a concurrency cap is told to wait.
    public var retryAfter: Duration

    public init(limits: AdmissionLimits, placement: Placement = Placement(), rateCards: RateCards = RateCards(), spendCap: SpendCap? = nil, retryAfter: Duration = .seconds(60)) {
        self.limits = limits
        self.placement = placement
        self.rateCards = rateCards
        self.spendCap = spendCap
        self.retryAfter = retryAfter
    }

    public func decide(_ profile: Profile, _ snapshot: AdmissionSnapshot, at now: Date = Date()) -> Result<Admitted, AdmissionRefusal> {
        let busy = "Please try again in a few minutes."
        if let cap = limits.global, snapshot.live >= cap {
            return .failure(AdmissionRefusal(.globalCap, "All \(cap) places for running environments are in use. \(busy)", retryAfter: retryAfter))
        }
        if let cap = limits.course, snapshot.liveInCourse >= cap {
            return .failure(AdmissionRefusal(.courseCap, "Your course's \(cap) places for running environments are all in use. \(busy)", retryAfter: retryAfter))
        }
        if let cap = limits.profile, snapshot.liveOfProfile >= cap {
            return .failure(
                AdmissionRefusal(.profileCap, "All \(cap) places for the environment \"\(profile.displayName)\" are in use. \(busy)", retryAfter: retryAfter)
            )
        }
        let request = ResourceRequest(profile)
        let choice: PlacementChoice
        switch placement.place(request, on: snapshot.hosts) {
        case .success(let chosen):
            choice = chosen
        case .failure(.full):
            return .failure(AdmissionRefusal(.noCapacity, "The machines that run environments are full. \(busy)", retryAfter: retryAfter))
        case .failure(.noHostAvailable):
            return .failure(AdmissionRefusal(.noHost, "No machine that can run your environment is available at the moment. \(busy)", retryAfter: retryAfter))
        case .failure(.noMatchingHost):
            return .failure(
                AdmissionRefusal(.noHost, "No machine here can run the environment \"\(profile.displayName)\" (it needs \(Self.needs(request))). Please tell your course team.")
            )
        }
        guard let host = snapshot.hosts.first(where: { $0.host.name == choice.host })?.host else {
            return .failure(AdmissionRefusal(.noHost, "No machine is available at the moment. \(busy)", retryAfter: retryAfter))
        }
        let card = rateCards.card(profile: profile.slug, host: host)
        let hourly = card?.hourlyCost(request) ?? 0
        let reservation = hourly * Decimal(profile.maxLifetimeSeconds) / 3600
        if let cap = spendCap, let window = cap.window(containing: now) {
            let contact = cap.contact.map { " Please contact \($0)." } ?? " Please tell your course team."
            if let card, card.currency != cap.currency {
                return .failure(
                    AdmissionRefusal(.spendCap, "The course's budget is in \(cap.currency) but its environments are priced in \(card.currency), so its spend cannot be checked.\(contact)")
                )
            }
            if snapshot.courseCommitted + reservation > cap.amount {
                return .failure(AdmissionRefusal(.spendCap, "Your course's compute budget for \(cap.describe(window)) is spent.\(contact)"))
            }
        }
        return .success(Admitted(host: choice.host, gpuIDs: choice.gpuIDs, rateCard: card, hourlyCost: hourly, reservation: reservation))
    }

    static func needs(_ request: ResourceRequest) -> String {
        var parts = ["\(request.cpu.formatted()) CPU", "\(request.memoryBytes >> 20) MiB memory"]
        if request.gpus > 0 { parts.append("\(request.gpus) GPU\(request.gpus == 1 ? "" : "s")") }
        if !request.hostLabels.isEmpty { parts.append("a machine labelled " + request.hostLabels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")) }
        return parts.joined(separator: ", ")
    }
}
