import Foundation

/// What compute costs: prices per CPU core-hour, memory GiB-hour and GPU-hour in one currency, for
/// some profiles or some hosts (by label) or, with neither, for everything. Environments are charged
/// for what they requested, from the start of their start to their stop.
public struct RateCard: Sendable, Equatable {
    public var name: String
    /// ISO 4217 code, e.g. `GBP`.
    public var currency: String
    public var cpuCoreHour: Decimal
    public var memoryGiBHour: Decimal
    public var gpuHour: Decimal
    /// The profiles the card prices; empty for any.
    public var profiles: [String]
    /// Labels a host must carry for the card to apply (a host pool); empty for any host.
    public var hostLabels: [String: String]

    public init(
        name: String, currency: String, cpuCoreHour: Decimal, memoryGiBHour: Decimal = 0, gpuHour: Decimal = 0, profiles: [String] = [],
        hostLabels: [String: String] = [:]
    ) {
        self.name = name
        self.currency = currency
        self.cpuCoreHour = cpuCoreHour
        self.memoryGiBHour = memoryGiBHour
        self.gpuHour = gpuHour
        self.profiles = profiles
        self.hostLabels = hostLabels
    }

    /// The cost of one hour of `request`.
    public func hourlyCost(_ request: ResourceRequest) -> Decimal {
        // Through text, so that 0.1 cores is exactly 0.1 (not the nearest binary fraction).
        let cores = Decimal(string: String(request.cpu)) ?? Decimal(request.cpu)
        let gibibytes = Decimal(request.memoryBytes) / Decimal(1 << 30)
        return cores * cpuCoreHour + gibibytes * memoryGiBHour + Decimal(request.gpus) * gpuHour
    }

    /// Whether the card prices `profile` on `host`.
    public func applies(profile: String, host: Host) -> Bool {
        (profiles.isEmpty || profiles.contains(profile)) && hostLabels.allSatisfy { host.labels[$0.key] == $0.value }
    }

    /// How specific the card is: naming profiles and labels beats naming one, which beats neither.
    var specificity: Int { (profiles.isEmpty ? 0 : 2) + (hostLabels.isEmpty ? 0 : 1) }
}

/// Every rate card, and which one prices an environment: the most specific that applies, the first
/// declared among equals.
public struct RateCards: Sendable, Equatable {
    public var cards: [RateCard]

    public init(_ cards: [RateCard] = []) {
        self.cards = cards
    }

    public func card(profile: String, host: Host) -> RateCard? {
        var best: RateCard?
        for card in cards where card.applies(profile: profile, host: host) {
            if let current = best, card.specificity <= current.specificity { continue }
            best = card
        }
        return best
    }
}

/// A course's compute budget for a period.
public struct SpendCap: Sendable, Equatable {
    public enum Period: Sendable, Equatable {
        /// Calendar months (UTC); the budget renews on the 1st.
        case monthly
        /// From `from` (inclusive) to `to` (exclusive).
        case dates(from: Date, to: Date)
    }

    /// What happens to running environments once the budget is spent.
    public enum Policy: Sendable, Equatable {
        /// They run to their end (idle timeout or max lifetime).
        case runToEnd
        /// They are stopped after a grace period.
        case stopAfterGrace(Duration)
    }

    public var amount: Decimal
    public var currency: String
    public var period: Period
    public var policy: Policy
    /// Whom students and module teams should contact (shown on the refusal page).
    public var contact: String?
    /// The share of the budget at which the module team is warned.
    public var warnAt: Decimal

    public init(amount: Decimal, currency: String, period: Period = .monthly, policy: Policy = .runToEnd, contact: String? = nil, warnAt: Decimal = Decimal(8) / 10) {
        self.amount = amount
        self.currency = currency
        self.period = period
        self.policy = policy
        self.contact = contact
        self.warnAt = warnAt
    }

    /// The budget period containing `date`, or `nil` when explicit dates do not cover it.
    public func window(containing date: Date) -> DateInterval? {
        switch period {
        case .dates(let from, let to):
            return date >= from && date < to ? DateInterval(start: from, end: to) : nil
        case .monthly:
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = .utc
            guard let start = calendar.dateInterval(of: .month, for: date) else { return nil }
            return start
        }
    }

    /// A name for the period, for people (`November 2026`, `2026-09-01 to 2027-01-31`).
    public func describe(_ window: DateInterval) -> String {
        let formatter = DateFormatter()
        formatter.timeZone = .utc
        formatter.locale = Locale(identifier: "en_GB")
        switch period {
        case .monthly:
            formatter.dateFormat = "MMMM yyyy"
            return formatter.string(from: window.start)
        case .dates:
            formatter.dateFormat = "yyyy-MM-dd"
            return "\(formatter.string(from: window.start)) to \(formatter.string(from: window.end.addingTimeInterval(-1)))"
        }
    }
}

/// Money rounding: amounts are kept exact and rounded half-up to cents only when shown or totalled.
public enum Money {
    public static func cents(_ amount: Decimal) -> Decimal {
        var value = amount
        var rounded = Decimal()
        NSDecimalRound(&rounded, &value, 2, .plain)
        return rounded
    }

    /// `12.30 GBP`.
    public static func format(_ amount: Decimal, _ currency: String) -> String {
        let formatter = NumberFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.minimumFractionDigits = 2
        formatter.maximumFractionDigits = 2
        formatter.usesGroupingSeparator = false
        return "\(formatter.string(from: cents(amount) as NSDecimalNumber) ?? "\(amount)") \(currency)"
    }
}

extension TimeZone {
    static let utc = TimeZone(secondsFromGMT: 0) ?? .current
}
