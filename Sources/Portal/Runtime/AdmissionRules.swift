import Environments

/// The configured caps, course budgets, prices and placement, turned into the ``Admission`` that
/// decides one launch.
struct AdmissionRules: Sendable {
    var configuration = PortalConfiguration.AdmissionConfiguration()
    var placement = Placement()

    /// The admission for a launch of `profile` in the course `contextID` of `consumerKey`.
    func admission(consumerKey: String, contextID: String, profile: Profile) -> Admission {
        let course = configuration.policy(consumerKey: consumerKey, contextID: contextID)
        return Admission(
            limits: AdmissionLimits(global: configuration.maxRunning, course: course?.maxRunning, profile: profile.maxRunning),
            placement: placement, rateCards: RateCards(configuration.rateCards), spendCap: course?.budget, retryAfter: configuration.retryAfter
        )
    }

    /// The budget of a course, if it has one.
    func budget(consumerKey: String, contextID: String) -> SpendCap? {
        configuration.policy(consumerKey: consumerKey, contextID: contextID)?.budget
    }
}
