/// The values each page template renders. Optional properties render as absent sections.
enum PageModel {
    struct Empty {}

    struct Landing {
        struct Course {
            var title: String
            var label: String?
        }

        /// The student's environment in this course, when environments are on.
        struct Environment {
            var state: String
            var message: String
            var elapsedSeconds: Int
            var inProgress: Bool
            var ready: Bool
            var failed: Bool
            var stopped: Bool
            var profileName: String
            var formToken: String
        }

        var name: String?
        var consumer: String
        var course: Course?
        var roleName: String
        var returnURL: String?
        var environment: Environment?
        /// The course's budget alert, for its module team.
        var budgetNotice: String?
        /// No profile applies to this course (environments are on).
        var noEnvironment: Bool = false
    }

    struct Refused {
        var heading: String
        var message: String
        var reason: String
        var requestID: String
        var returnURL: String?
    }

    struct Failure {
        var message: String
        var requestID: String
    }
}

extension PageModel {
    /// Why the proxy did not forward a browser's request to an environment.
    struct Unavailable {
        var heading: String
        var message: String
        /// Whether to link to the progress page (the environment is starting).
        var progress: Bool = false
        var returnURL: String?

        /// A one-time hand-over link that was used already or is too old.
        static let expiredLink = Unavailable(
            heading: "This link has expired",
            message: "Links like this work once and only for a short while. Open the activity from your course page again."
        )
    }
}

extension PageModel {
    /// The launch could not keep its cookie in the VLE's iframe: continue in a new window.
    struct NewWindow {
        var link: String
    }
}
