import Environments
import Foundation
import Logging
import ServiceLifecycle

/// Enforces the `stop_after_grace` policy of course budgets: once a course's budget is spent (a
/// launch was refused for it), its running environments are stopped after the grace period with
/// the reason `spend_cap`. Runs on every replica; a stop already under way is not repeated.
struct SpendMonitor: Service {
    let alerts: SpendAlerts
    let rules: AdmissionRules
    let lifecycle: EnvironmentLifecycle
    let interval: Duration
    let logger: Logger

    func run() async throws {
        guard rules.configuration.courses.contains(where: { if case .stopAfterGrace = $0.budget?.policy { true } else { false } }) else {
            // Nothing to enforce; a service that returned would end the portal.
            try? await gracefulShutdown()
            return
        }
        await repeatUntilShutdown(every: interval, immediately: true) { await enforce() }
    }

    func enforce(at now: Date = Date()) async {
        for course in rules.configuration.courses {
            guard let cap = course.budget, case .stopAfterGrace(let grace) = cap.policy, let window = cap.window(containing: now) else { continue }
            do {
                let ids = try await alerts.overBudget(contextID: course.contextID, consumerKey: course.consumerKey, periodStart: window.start, grace: grace)
                for id in ids { lifecycle.requestStop(id, reason: .spendCap) }
                if !ids.isEmpty {
                    logger.warning("stopping environments of a course whose budget is spent", metadata: ["course": "\(course.contextID)", "count": "\(ids.count)"])
                }
            } catch {
                logger.warning("checking course budgets failed", metadata: ["error": "\(error)"])
            }
        }
    }
}
