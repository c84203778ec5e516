import Environments
import Foundation
import PostgresNIO

/// The budget alerts admission records (`spend_alerts`), for the module team's banner and for
/// enforcing a budget's policy on running environments.
struct SpendAlerts: Sendable {
    struct Alert: Sendable {
        var spent: Bool
        var committed: Decimal
        var amount: Decimal
        var currency: String
        var at: Date
    }

    let client: PostgresClient

    /// The course's most serious alert of the period starting at `periodStart`.
    func latest(courseID: Int64, periodStart: Date) async throws -> Alert? {
        let rows = try await client.query(
            """
            SELECT level, committed::text, amount::text, currency, at FROM spend_alerts
            WHERE course_id = \(courseID) AND period_start = \(periodStart) ORDER BY level = \(SpendAlertLevel.spent.rawValue) DESC LIMIT 1
            """
        )
        for try await (level, committed, amount, currency, at) in rows.decode((String, String, String, String, Date).self) {
            let level = try SpendAlertLevel.stored(level, table: "spend_alerts", column: "level")
            return Alert(spent: level == .spent, committed: Decimal(string: committed) ?? 0, amount: Decimal(string: amount) ?? 0, currency: currency, at: at)
        }
        return nil
    }

    /// Live environments of the course `contextID` (of `consumerKey`, or any consumer), other than
    /// those already stopping, whose budget for the period starting at `periodStart` was spent at
    /// least `grace` ago.
    func overBudget(contextID: String, consumerKey: String?, periodStart: Date, grace: Duration) async throws -> [Int64] {
        let seconds = Double(grace.components.seconds)
        let rows = try await client.query(
            """
            SELECT e.id FROM environments e JOIN courses c ON c.id = e.course_id
            JOIN spend_alerts a ON a.course_id = c.id AND a.period_start = \(periodStart) AND a.level = \(SpendAlertLevel.spent.rawValue)
            WHERE c.context_id = \(contextID) AND (\(consumerKey)::text IS NULL OR c.consumer_key = \(consumerKey))
                AND portal_is_live(e.state) AND e.state <> \(EnvironmentState.stopping.rawValue) AND a.at <= now() - make_interval(secs => \(seconds))
            """
        )
        var ids = [Int64]()
        for try await id in rows.decode(Int64.self) { ids.append(id) }
        return ids
    }
}

extension SpendAlerts.Alert {
    /// The banner for the module team.
    func notice(period: String) -> String {
        let share = amount > 0 ? NSDecimalNumber(decimal: committed * 100 / amount).intValue : 100
        if spent {
            return "This course's compute budget for \(period) is spent (\(Money.format(committed, currency)) of \(Money.format(amount, currency))): new launches are refused."
        }
        return "This course has committed \(share)% of its compute budget for \(period) (\(Money.format(committed, currency)) of \(Money.format(amount, currency)))."
    }
}
