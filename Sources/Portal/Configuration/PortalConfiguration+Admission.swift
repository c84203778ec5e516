import Environments
import Foundation

extension PortalConfiguration {
    /// The `admission` and `rate_cards` sections: concurrency caps, course budgets and prices.
    struct AdmissionConfiguration: Sendable {
        /// A course's own cap and budget, by `context_id` (and consumer, when given).
        struct CoursePolicy: Sendable {
            var consumerKey: String?
            var contextID: String
            var maxRunning: Int?
            var budget: SpendCap?
        }

        /// Live environments across the installation; `nil` for no cap.
        var maxRunning: Int?
        /// What a launch over a concurrency cap is told to wait.
        var retryAfter: Duration = .seconds(60)
        /// How often budgets with `stop_after_grace` are enforced on running environments.
        var checkInterval: Duration = .seconds(30)
        var courses: [CoursePolicy] = []
        var rateCards: [RateCard] = []

        /// The policy of the course `contextID` of `consumerKey`: one naming the consumer wins over one that does not.
        func policy(consumerKey: String, contextID: String) -> CoursePolicy? {
            courses.first { $0.contextID == contextID && $0.consumerKey == consumerKey } ?? courses.first { $0.contextID == contextID && $0.consumerKey == nil }
        }
    }

    static let hostKeys: Set<String> = ["name", "endpoint", "publish_address", "tls", "cpu", "memory", "gpus", "labels"]

    /// One entry of `environments.hosts`.
    static func host(_ node: YAMLValue) throws(ConfigurationError) -> Host {
        let map = try node.mapping(allowing: hostKeys)
        let nameNode = try map.required("name")
        let name = try nameNode.string()
        guard Host.isValidName(name) else { throw nameNode.error("use lower-case letters, digits and '-', at most 63 characters") }
        let endpoint = try map.required("endpoint").string()
        guard endpoint.hasPrefix("unix://") || endpoint.hasPrefix("/") || endpoint.hasPrefix("tcp://") else {
            throw try map.required("endpoint").error("expected unix:///path/to/engine.sock or tcp://host:port")
        }
        var tls: Host.TLS?
        if let node = map["tls"] {
            let fields = try node.mapping(allowing: ["ca_file", "cert_file", "key_file"])
            tls = Host.TLS(
                caFile: try fields.required("ca_file").string(), certificateFile: try fields.required("cert_file").string(),
                keyFile: try fields.required("key_file").string()
            )
            guard endpoint.hasPrefix("tcp://") else { throw node.error("TLS applies to tcp:// endpoints only") }
        }
        let cpuNode = try map.required("cpu")
        let cpu = try cpuNode.double()
        guard cpu > 0 else { throw cpuNode.error("must be more than 0 cores") }
        let memory = try map.required("memory").byteSize()
        var gpus = [GPU]()
        for item in try map["gpus"]?.sequence() ?? [] {
            let gpu = try item.mapping(allowing: ["id", "model"])
            let id = try gpu.required("id").scalarText()
            guard !gpus.contains(where: { $0.id == id }) else { throw item.error("GPU id \(id) is listed twice") }
            gpus.append(GPU(id: id, model: try gpu["model"]?.string() ?? "gpu"))
        }
        var labels = [String: String]()
        if let node = map["labels"] {
            for key in try node.keys() { labels[key] = try node.child(key).scalarText() }
        }
        return Host(
            name: name, endpoint: endpoint, publishAddress: try map["publish_address"]?.string(), tls: tls,
            capacity: Capacity(cpu: cpu, memoryBytes: memory, gpus: gpus), labels: labels
        )
    }

    static func admissionSection(_ node: YAMLValue?, rateCards: YAMLValue?) throws(ConfigurationError) -> AdmissionConfiguration {
        var result = AdmissionConfiguration()
        for item in try rateCards?.sequence() ?? [] {
            result.rateCards.append(try rateCard(item))
        }
        guard let node else { return result }
        let map = try node.mapping(allowing: ["max_running", "retry_after", "check_interval", "courses"])
        result.maxRunning = try map["max_running"]?.int(in: 1...1_000_000)
        if let value = map["retry_after"] {
            result.retryAfter = try value.duration()
            guard result.retryAfter >= .seconds(1) else { throw value.error("must be at least 1 second") }
        }
        if let value = map["check_interval"] {
            result.checkInterval = try value.duration()
            guard result.checkInterval >= .seconds(1) else { throw value.error("must be at least 1 second") }
        }
        for item in try map["courses"]?.sequence() ?? [] {
            let entry = try item.mapping(allowing: ["consumer", "context_id", "max_running", "budget"])
            var policy = AdmissionConfiguration.CoursePolicy(
                consumerKey: try entry["consumer"]?.string(), contextID: try entry.required("context_id").string(),
                maxRunning: try entry["max_running"]?.int(in: 1...1_000_000)
            )
            if let budget = entry["budget"] { policy.budget = try spendCap(budget) }
            guard !result.courses.contains(where: { $0.contextID == policy.contextID && $0.consumerKey == policy.consumerKey }) else {
                throw item.error("the course \(policy.contextID) is listed twice")
            }
            result.courses.append(policy)
        }
        return result
    }

    private static func rateCard(_ node: YAMLValue) throws(ConfigurationError) -> RateCard {
        let map = try node.mapping(allowing: ["name", "currency", "cpu_core_hour", "memory_gib_hour", "gpu_hour", "profiles", "host_labels"])
        var card = RateCard(
            name: try map.required("name").string(), currency: try currency(map.required("currency")),
            cpuCoreHour: try money(map.required("cpu_core_hour")), memoryGiBHour: try map["memory_gib_hour"].map(money) ?? 0,
            gpuHour: try map["gpu_hour"].map(money) ?? 0
        )
        for item in try map["profiles"]?.sequence() ?? [] { card.profiles.append(try item.string()) }
        if let labels = map["host_labels"] {
            for key in try labels.keys() { card.hostLabels[key] = try labels.child(key).scalarText() }
        }
        return card
    }

    private static func spendCap(_ node: YAMLValue) throws(ConfigurationError) -> SpendCap {
        let map = try node.mapping(allowing: ["amount", "currency", "period", "from", "to", "policy", "grace", "contact", "warn_at"])
        var cap = SpendCap(amount: try money(map.required("amount")), currency: try currency(map.required("currency")))
        let period = try map["period"]?.string() ?? (map["from"] == nil ? "month" : "dates")
        switch period {
        case "month":
            cap.period = .monthly
        case "dates":
            let from = try date(map.required("from")), to = try date(map.required("to"))
            guard from < to else { throw try map.required("to").error("must be after from") }
            // `to` is the last day of the period, inclusive.
            cap.period = .dates(from: from, to: to.addingTimeInterval(86_400))
        default:
            throw try map.required("period").error("expected month, or dates with from and to (YYYY-MM-DD)")
        }
        switch try map["policy"]?.string() ?? "run_to_end" {
        case "run_to_end": cap.policy = .runToEnd
        case "stop_after_grace": cap.policy = .stopAfterGrace(try map["grace"]?.duration() ?? .seconds(900))
        default: throw try map.required("policy").error("expected run_to_end or stop_after_grace")
        }
        cap.contact = try map["contact"]?.string()
        if let warn = map["warn_at"] {
            let share = try warn.double()
            guard share > 0, share < 1 else { throw warn.error("expected a share of the budget between 0 and 1, such as 0.8") }
            cap.warnAt = Decimal(string: String(share)) ?? cap.warnAt
        }
        return cap
    }

    private static func money(_ node: YAMLValue) throws(ConfigurationError) -> Decimal {
        let text = try node.scalarText()
        guard let value = Decimal(string: text, locale: Locale(identifier: "en_US_POSIX")), value >= 0, text.allSatisfy({ $0.isNumber || $0 == "." }) else {
            throw node.error("expected an amount such as 0.04 (no currency sign)")
        }
        return value
    }

    private static func currency(_ node: YAMLValue) throws(ConfigurationError) -> String {
        let code = try node.string()
        guard code.count == 3, code.allSatisfy({ $0.isASCII && $0.isUppercase }) else { throw node.error("expected an ISO 4217 code such as GBP or EUR") }
        return code
    }

    private static func date(_ node: YAMLValue) throws(ConfigurationError) -> Date {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(secondsFromGMT: 0)
        formatter.dateFormat = "yyyy-MM-dd"
        guard let date = formatter.date(from: try node.scalarText()) else { throw node.error("expected a date as YYYY-MM-DD") }
        return date
    }
}
