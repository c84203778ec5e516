import Environments
import Foundation
import PostgresNIO

/// Usage of a period grouped by course, profile, host or user: runs, refused starts, resource-hours
/// and cost per currency. A run belongs to the period it was requested in; each run's cost is
/// rounded to the cent before it is added, so every total is the sum of the rows above it to the cent.
struct UsageReport: Sendable {
    enum Grouping: String, CaseIterable, Sendable {
        case course, profile, host, user

        /// The columns that name a group.
        var columns: [String] {
            switch self {
            case .course: ["consumer", "context_id", "course_label"]
            case .profile: ["profile"]
            case .host: ["host"]
            case .user: ["consumer", "lti_user_id", "user"]
            }
        }

        /// The same, as SQL over `usage_sessions` (runs) and over refusals joined to users `u` and courses `c`.
        var runKey: String {
            switch self {
            case .course: "ARRAY[consumer_key, context_id, COALESCE(course_label, '')]"
            case .profile: "ARRAY[profile_slug]"
            case .host: "ARRAY[host]"
            case .user: "ARRAY[consumer_key, lti_user_id, user_slug]"
            }
        }

        var refusalKey: String? {
            switch self {
            case .course: "ARRAY[COALESCE(c.consumer_key, ''), COALESCE(c.context_id, ''), COALESCE(c.label, '')]"
            case .profile: "ARRAY[COALESCE(r.profile_slug, '')]"
            case .host: nil  // a refused start was never placed
            case .user: "ARRAY[COALESCE(u.consumer_key, ''), COALESCE(u.lti_user_id, ''), COALESCE(u.slug, '')]"
            }
        }
    }

    struct Row: Sendable, Equatable {
        var key: [String]
        /// `nil` for a group with refused starts only.
        var currency: String?
        var runs: Int
        var refused: Int
        var cpuCoreHours: Decimal
        var memoryGiBHours: Decimal
        var gpuHours: Decimal
        var cost: Decimal
    }

    var from: Date
    /// Exclusive.
    var to: Date
    var grouping: Grouping
    var rows: [Row] = []

    /// Reads the report.
    static func load(_ client: PostgresClient, from: Date, to: Date, by grouping: Grouping) async throws -> UsageReport {
        var report = UsageReport(from: from, to: to, grouping: grouping)
        var runs = PostgresQuery(unsafeSQL: """
            SELECT \(grouping.runKey) AS key, currency, count(*)::bigint,
                   round(sum(cpu * seconds / 3600), 4)::text, round(sum(memory_bytes::numeric / 1073741824 * seconds / 3600), 4)::text,
                   round(sum(gpus * seconds / 3600), 4)::text, sum(round(cost, 2))::text
            FROM usage_sessions WHERE requested_at >= $1 AND requested_at < $2
            GROUP BY 1, 2 ORDER BY 1, 2
            """)
        runs.binds.append(from)
        runs.binds.append(to)
        for try await (key, currency, count, cpu, memory, gpu, cost) in try await client.query(runs).decode(([String], String?, Int64, String?, String?, String?, String?).self) {
            report.rows.append(
                Row(key: key, currency: currency, runs: Int(count), refused: 0, cpuCoreHours: decimal(cpu), memoryGiBHours: decimal(memory), gpuHours: decimal(gpu), cost: decimal(cost))
            )
        }
        if let refusalKey = grouping.refusalKey {
            var refused = PostgresQuery(unsafeSQL: """
                SELECT \(refusalKey) AS key, count(*)::bigint FROM admission_refusals r
                LEFT JOIN users u ON u.id = r.user_id LEFT JOIN courses c ON c.id = r.course_id
                WHERE r.at >= $1 AND r.at < $2 GROUP BY 1 ORDER BY 1
                """)
            refused.binds.append(from)
            refused.binds.append(to)
            for try await (key, count) in try await client.query(refused).decode(([String], Int64).self) {
                if let index = report.rows.firstIndex(where: { $0.key == key }) {
                    report.rows[index].refused = Int(count)
                } else {
                    report.rows.append(Row(key: key, currency: nil, runs: 0, refused: Int(count), cpuCoreHours: 0, memoryGiBHours: 0, gpuHours: 0, cost: 0))
                }
            }
            report.rows.sort { $0.key.lexicographicallyPrecedes($1.key) }
        }
        return report
    }

    private static func decimal(_ text: String?) -> Decimal {
        text.flatMap { Decimal(string: $0, locale: Locale(identifier: "en_US_POSIX")) } ?? 0
    }

    /// One total per currency (and one for refusals-only groups), summing the rows.
    var totals: [Row] {
        var byCurrency = [String?: Row]()
        for row in rows {
            var total = byCurrency[row.currency] ?? Row(key: ["TOTAL"], currency: row.currency, runs: 0, refused: 0, cpuCoreHours: 0, memoryGiBHours: 0, gpuHours: 0, cost: 0)
            total.runs += row.runs
            total.refused += row.refused
            total.cpuCoreHours += row.cpuCoreHours
            total.memoryGiBHours += row.memoryGiBHours
            total.gpuHours += row.gpuHours
            total.cost += row.cost
            byCurrency[row.currency] = total
        }
        return byCurrency.values.sorted { ($0.currency ?? "") < ($1.currency ?? "") }
    }

    static let measureColumns = ["currency", "runs", "refused", "cpu_core_hours", "memory_gib_hours", "gpu_hours", "cost"]

    /// RFC 4180 CSV with a header, the rows, then a TOTAL row per currency.
    func csv() -> String {
        var text = CSV.record(grouping.columns + Self.measureColumns)
        for row in rows { text += CSV.record(row.key + Self.fields(row)) }
        for total in totals { text += CSV.record(["TOTAL"] + Array(repeating: "", count: grouping.columns.count - 1) + Self.fields(total)) }
        return text
    }

    private static func fields(_ row: Row) -> [String] {
        [row.currency ?? "", "\(row.runs)", "\(row.refused)", "\(row.cpuCoreHours)", "\(row.memoryGiBHours)", "\(row.gpuHours)", Self.cents(row.cost)]
    }

    static func cents(_ amount: Decimal) -> String {
        Money.format(amount, "").trimmingCharacters(in: .whitespaces)
    }

    /// `{"from", "to", "by", "rows": [...], "totals": [...]}` with amounts as strings of cents.
    func json() throws -> Data {
        func object(_ row: Row, key: [String]) -> [String: Any] {
            var object: [String: Any] = Dictionary(uniqueKeysWithValues: zip(grouping.columns, key))
            object["currency"] = row.currency ?? NSNull()
            object["runs"] = row.runs
            object["refused"] = row.refused
            object["cpu_core_hours"] = "\(row.cpuCoreHours)"
            object["memory_gib_hours"] = "\(row.memoryGiBHours)"
            object["gpu_hours"] = "\(row.gpuHours)"
            object["cost"] = Self.cents(row.cost)
            return object
        }
        let formatter = ISO8601DateFormatter()
        let document: [String: Any] = [
            "from": formatter.string(from: from), "to": formatter.string(from: to), "by": grouping.rawValue,
            "rows": rows.map { object($0, key: $0.key) },
            "totals": totals.map { total -> [String: Any] in
                var object = object(total, key: [])
                object["total"] = true
                return object
            },
        ]
        return try JSONSerialization.data(withJSONObject: document, options: [.sortedKeys, .prettyPrinted])
    }
}
