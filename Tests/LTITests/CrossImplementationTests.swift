import Foundation
import LTI
import TestSupport
import Testing

/// Launches signed at test time by oauthlib and the PyPI `lti` ToolConsumer must verify, and our base
/// string must equal oauthlib's byte for byte.
@Suite("Launches signed by independent implementations", .enabled(if: TestEnvironment.hasPython))
struct CrossImplementationTests {
    struct Vector {
        var name: String
        var url: String
        var params: [(String, String)]
        var impl: IndependentSigner.Implementation = .oauthlib
    }

    static let now = Int(Date().timeIntervalSince1970)

    static let vectors: [Vector] = [
        Vector(name: "plain", url: "https://portal.example.ac.uk/lti/launch", params: IndependentSigner.launchParameters()),
        Vector(
            name: "duplicate keys", url: "https://portal.example.ac.uk/lti/launch",
            params: IndependentSigner.launchParameters(extra: [("custom_tag", "b"), ("custom_tag", "a"), ("custom_tag", "a")])
        ),
        Vector(
            name: "UTF-8", url: "https://portal.example.ac.uk/lti/launch",
            params: IndependentSigner.launchParameters(user: "élève-☃", extra: [("lis_person_name_full", "Zoë Øster 李小龍 🎓")])
        ),
        Vector(
            name: "plus and %20", url: "https://portal.example.ac.uk/lti/launch",
            params: IndependentSigner.launchParameters(extra: [("custom_expr", "1+1 = 2"), ("custom_path", "a%20b c"), ("custom_empty", "")])
        ),
        Vector(name: "tilde", url: "https://portal.example.ac.uk/~tool/lti/launch", params: IndependentSigner.launchParameters(extra: [("custom_home", "~/work ~x")])),
        Vector(
            name: "launch URL with query", url: "https://portal.example.ac.uk/lti/launch?course=TM351&profile=gpu%20large&course=x",
            params: IndependentSigner.launchParameters()
        ),
        Vector(name: "non-default port", url: "http://portal.example.ac.uk:8080/lti/launch", params: IndependentSigner.launchParameters()),
        Vector(name: "https with explicit 443", url: "https://Portal.Example.ac.uk:443/lti/launch", params: IndependentSigner.launchParameters()),
        Vector(name: "CRLF text", url: "https://portal.example.ac.uk/lti/launch", params: IndependentSigner.launchParameters(extra: [("resource_link_description", "Line one\r\nLine two")])),
        Vector(name: "lti ToolConsumer", url: "https://portal.example.ac.uk/lti/launch", params: IndependentSigner.launchParameters(), impl: .lti),
        Vector(
            name: "lti ToolConsumer, query and UTF-8", url: "https://portal.example.ac.uk:8443/lti/launch?x=1",
            params: IndependentSigner.launchParameters(user: "ünïcode", extra: [("custom_note", "a+b %41 ~")]), impl: .lti
        ),
    ]

    /// Splits a launch URL into what the portal would see: its base string URI and its query parameters.
    static func split(_ url: String) throws -> (String, [Parameter]) {
        let components = try #require(URLComponents(string: url))
        let base = SignatureBaseString.baseURI(scheme: components.scheme ?? "", host: components.host ?? "", port: components.port, path: components.percentEncodedPath)
        let query = try PercentEncoding.parseForm(Substring(components.percentEncodedQuery ?? ""))
        return (base, query)
    }

    @Test func everyVectorVerifies() async throws {
        let specs = Self.vectors.enumerated().map { index, vector in
            IndependentSigner.Spec(
                vector.impl, url: vector.url, key: "vle", secret: "s3cret & more/+=", params: vector.params,
                timestamp: vector.impl == .oauthlib ? Self.now : nil, nonce: vector.impl == .oauthlib ? "nonce-\(index)-\(UUID().uuidString)" : nil
            )
        }
        let signed = try IndependentSigner.sign(specs)
        let validator = LaunchValidator(
            consumers: StaticConsumerDirectory([Consumer(key: "vle", secret: "s3cret & more/+=")]), nonces: InMemoryNonceStore()
        )
        for (vector, launch) in zip(Self.vectors, signed) {
            let (base, query) = try Self.split(vector.url)
            let parameters = query + launch.parameters
            let ours = SignatureBaseString.make(method: "POST", baseURI: base, parameters: parameters)
            #expect(ours == launch.base_string, "base string differs for \(vector.name)")
            do {
                let verified = try await validator.validate(LaunchRequest(method: "POST", baseURI: base, parameters: parameters))
                let expectedUser = vector.params.first { $0.0 == "user_id" }?.1
                #expect(verified.userID == expectedUser, "\(vector.name)")
            } catch {
                Issue.record("\(vector.name): \(error)")
            }
        }
    }

    @Test func tamperedIndependentLaunchesFail() async throws {
        let spec = IndependentSigner.Spec(url: "https://portal.example.ac.uk/lti/launch", key: "vle", secret: "s3cret", params: IndependentSigner.launchParameters(), timestamp: Self.now, nonce: UUID().uuidString)
        let sha256 = IndependentSigner.Spec(
            url: "https://portal.example.ac.uk/lti/launch", key: "vle", secret: "s3cret", params: IndependentSigner.launchParameters(), timestamp: Self.now,
            nonce: UUID().uuidString, signatureMethod: "HMAC-SHA256"
        )
        let signed = try IndependentSigner.sign([spec, sha256])
        let validator = LaunchValidator(consumers: StaticConsumerDirectory([Consumer(key: "vle", secret: "s3cret")]), nonces: InMemoryNonceStore())
        let tampered = try PercentEncoding.parseForm(Substring(signed[0].replacing("roles", with: "Instructor")))
        await #expect(throws: LaunchRefusal.self) {
            _ = try await validator.validate(LaunchRequest(method: "POST", baseURI: "https://portal.example.ac.uk/lti/launch", parameters: tampered))
        }
        do {
            _ = try await validator.validate(LaunchRequest(method: "POST", baseURI: "https://portal.example.ac.uk/lti/launch", parameters: signed[1].parameters))
            Issue.record("an HMAC-SHA256 launch was accepted")
        } catch let refusal as LaunchRefusal {
            #expect(refusal.reason == .unsupportedSignatureMethod)
        }
    }
}
