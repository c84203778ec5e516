import ArgumentParser
import Foundation
import LTI

/// `portal launch-link`: prints an HTML page that performs a signed LTI 1.1 launch when opened,
/// as a VLE would, for trying a deployment without a VLE.
struct LaunchLinkCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "launch-link",
        abstract: "Print an HTML page that launches the portal as a VLE would (LTI 1.1, signed with a configured consumer).",
        discussion: """
            Save the output to a file and open it in a browser; it posts the signed launch form to the \
            portal's public URL. The launch is valid for the timestamp window (lti.timestamp_window, 5 \
            minutes by default) and once only. Only consumers declared in the configuration file can sign.
            """
    )

    @OptionGroup var options: ConfigOptions
    @Option(help: "The consumer key to sign with (a consumer in the configuration file).") var key: String
    @Option(help: "The LTI user_id of the person launching.") var userID = "demo-student"
    @Option(help: "The person's full name.") var name = "Demo Student"
    @Option(help: "The course's context_id.") var contextID = "DEMO-101"
    @Option(help: "The course's title.") var contextTitle = "Demonstration course"
    @Option(help: "LTI roles, e.g. Learner or Instructor.") var roles = "Learner"
    @Option(help: "A custom parameter as NAME=VALUE (sent as custom_NAME); repeatable.") var custom: [String] = []

    func run() async throws {
        let (configuration, _) = try options.load()
        guard let consumer = configuration.consumers.first(where: { $0.key == key }) else {
            throw CLIError("there is no consumer \"\(key)\" in \(configuration.file); launch-link signs only with consumers declared there")
        }
        let url = configuration.publicURL.absolute("/lti/launch")
        var parameters: [(String, String)] = [
            ("lti_message_type", "basic-lti-launch-request"), ("lti_version", "LTI-1p0"), ("resource_link_id", "launch-link"),
            ("resource_link_title", "Course environment"), ("user_id", userID), ("lis_person_name_full", name), ("roles", roles),
            ("context_id", contextID), ("context_title", contextTitle), ("context_label", contextID),
            ("oauth_consumer_key", consumer.key), ("oauth_signature_method", "HMAC-SHA1"), ("oauth_version", "1.0"),
            ("oauth_timestamp", String(Int(Date().timeIntervalSince1970))), ("oauth_nonce", UUID().uuidString), ("oauth_callback", "about:blank"),
        ]
        for item in custom {
            guard let equals = item.firstIndex(of: "="), equals != item.startIndex else { throw CLIError("--custom expects NAME=VALUE, got \"\(item)\"") }
            parameters.append(("custom_" + item[..<equals].lowercased(), String(item[item.index(after: equals)...])))
        }
        let signable = parameters.map { Parameter(name: $0.0, value: $0.1) }
        let uri = configuration.publicURL
        let base = SignatureBaseString.make(
            method: "POST", baseURI: SignatureBaseString.baseURI(scheme: uri.scheme, host: uri.host, port: uri.port, path: uri.pathPrefix + "/lti/launch"),
            parameters: signable
        )
        parameters.append(("oauth_signature", OAuth1Signature.sign(baseString: base, consumerSecret: consumer.secret)))
        let fields = parameters.map { "<input type=\"hidden\" name=\"\(escape($0.0))\" value=\"\(escape($0.1))\">" }.joined(separator: "\n")
        print(
            """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>Launching the course environment portal</title></head>
            <body onload="document.forms[0].submit()">
            <form method="post" action="\(escape(url))">
            \(fields)
            <p>Launching as \(escape(name)) in \(escape(contextTitle))… <button type="submit">Continue</button></p>
            </form>
            </body></html>
            """
        )
    }

    private func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "\"", with: "&quot;")
            .replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
