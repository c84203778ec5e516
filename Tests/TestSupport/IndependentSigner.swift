import Foundation
import LTI

/// Signs LTI 1.1 launches with independent implementations from PyPI (oauthlib's OAuth1 client and
/// the `lti` package's ToolConsumer) through `Tests/tools/lti_sign.py`, so that our verifier is
/// checked against code we did not write.
public enum IndependentSigner {
    /// Which implementation signs.
    public enum Implementation: String, Sendable, Codable {
        case oauthlib, lti
    }

    /// One launch to sign.
    public struct Spec: Sendable, Codable {
        public var impl: Implementation
        public var url: String
        public var key: String
        public var secret: String
        public var params: [[String]]
        public var timestamp: Int?
        public var nonce: String?
        public var signature_method: String?

        public init(
            _ impl: Implementation = .oauthlib, url: String, key: String, secret: String, params: [(String, String)], timestamp: Int? = nil,
            nonce: String? = nil, signatureMethod: String? = nil
        ) {
            self.impl = impl
            self.url = url
            self.key = key
            self.secret = secret
            self.params = params.map { [$0.0, $0.1] }
            self.timestamp = timestamp
            self.nonce = nonce
            self.signature_method = signatureMethod
        }
    }

    /// A signed launch.
    public struct Signed: Sendable, Codable {
        /// The urlencoded form body to POST.
        public var body: String
        /// The decoded body parameters, oauth_* included.
        public var params: [[String]]
        /// The signature base string oauthlib computes for this launch.
        public var base_string: String

        /// The body parameters as ``Parameter`` values.
        public var parameters: [Parameter] { params.map { Parameter(name: $0[0], value: $0[1]) } }

        /// The value of the first parameter called `name`.
        public func value(_ name: String) -> String? { params.first { $0[0] == name }?[1] }

        /// The body with parameter `name` replaced by `value` (re-encoded), for tampering tests.
        public func replacing(_ name: String, with value: String) -> String {
            params.map { pair in
                let v = pair[0] == name ? value : pair[1]
                return PercentEncoding.encode(pair[0]) + "=" + PercentEncoding.encode(v)
            }.joined(separator: "&")
        }
    }

    /// Signs every spec in one Python run.
    public static func sign(_ specs: [Spec]) throws -> [Signed] {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lti-sign-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = directory.appendingPathComponent("in.json")
        let output = directory.appendingPathComponent("out.json")
        try JSONEncoder().encode(specs).write(to: input)
        _ = try PythonTool.run("lti_sign.py", [input.path, output.path])
        return try JSONDecoder().decode([Signed].self, from: Data(contentsOf: output))
    }

    /// Base LTI 1.1 launch parameters for a learner in a course.
    public static func launchParameters(user: String = "student-1", context: String = "TM351-25J", roles: String = "Learner", extra: [(String, String)] = []) -> [(String, String)] {
        [
            ("lti_message_type", "basic-lti-launch-request"),
            ("lti_version", "LTI-1p0"),
            ("resource_link_id", "activity-42"),
            ("resource_link_title", "Notebook environment"),
            ("user_id", user),
            ("roles", roles),
            ("context_id", context),
            ("context_title", "Data management and analysis"),
            ("context_label", context),
            ("lis_person_name_full", "Student \(user)"),
            ("launch_presentation_return_url", "https://vle.example.ac.uk/mod/lti/return.php?course=7"),
            ("tool_consumer_instance_guid", "vle.example.ac.uk"),
        ] + extra
    }
}
