/// The values each page template renders. Optional properties render as absent sections.
enum PageModel {
    struct Empty {}

    struct Landing {
        struct Course {
            var title: String
            var label: String?
        }

        var name: String?
        var consumer: String
        var course: Course?
        var roleName: String
        var returnURL: String?
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
