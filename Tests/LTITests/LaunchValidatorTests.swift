import Foundation
import LTI
import Synchronization
import TestSupport
import Testing

/// A clock the tests set.
final class FixedClock: WallClock {
    private let time: Mutex<Date>
    init(_ date: Date) { time = Mutex(date) }
    func now() -> Date { time.withLock { $0 } }
    func set(_ date: Date) { time.withLock { $0 = date } }
}

/// Signs launches with our own signer, for validator tests that do not need an independent one.
func ownSigned(url: String = "https://portal.example.ac.uk/lti/launch", key: String = "vle", secret: String = "s3cret", timestamp: Int, nonce: String, params: [(String, String)]) -> [Parameter] {
    var parameters = params.map { Parameter(name: $0.0, value: $0.1) }
    parameters += [
        Parameter(name: "oauth_consumer_key", value: key), Parameter(name: "oauth_signature_method", value: "HMAC-SHA1"),
        Parameter(name: "oauth_timestamp", value: String(timestamp)), Parameter(name: "oauth_nonce", value: nonce),
        Parameter(name: "oauth_version", value: "1.0"),
    ]
    let base = SignatureBaseString.make(method: "POST", baseURI: url, parameters: parameters)
    parameters.append(Parameter(name: "oauth_signature", value: OAuth1Signature.sign(baseString: base, consumerSecret: secret)))
    return parameters
}

@Suite("LTI 1.1 launch validation")
struct LaunchValidatorTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    let url = "https://portal.example.ac.uk/lti/launch"

    func validator(clock: FixedClock? = nil, nonces: InMemoryNonceStore? = nil, consumers: [Consumer]? = nil) -> LaunchValidator {
        let clock = clock ?? FixedClock(now)
        return LaunchValidator(
            consumers: StaticConsumerDirectory(consumers ?? [Consumer(key: "vle", secret: "s3cret"), Consumer(key: "off", secret: "x", enabled: false)]),
            nonces: nonces ?? InMemoryNonceStore(clock: clock),
            clock: clock
        )
    }

    func request(_ parameters: [Parameter]) -> LaunchRequest {
        LaunchRequest(method: "POST", baseURI: url, parameters: parameters)
    }

    func refusal(_ validator: LaunchValidator, _ parameters: [Parameter]) async -> LaunchRefusal.Reason? {
        await refusal(validator, request(parameters))
    }

    func refusal(_ validator: LaunchValidator, _ request: LaunchRequest) async -> LaunchRefusal.Reason? {
        do {
            _ = try await validator.validate(request)
            return nil
        } catch let refusal as LaunchRefusal {
            return refusal.reason
        } catch {
            Issue.record("unexpected error \(error)")
            return nil
        }
    }

    var base: [(String, String)] { IndependentSigner.launchParameters() }

    @Test func acceptsAndParsesAValidLaunch() async throws {
        let params = base + [("custom_profile", "tm351"), ("lis_outcome_service_url", "https://vle/outcomes"), ("lis_result_sourcedid", "abc")]
        let launch = try await validator().validate(request(ownSigned(timestamp: Int(now.timeIntervalSince1970), nonce: "n1", params: params)))
        #expect(launch.consumerKey == "vle")
        #expect(launch.userID == "student-1")
        #expect(launch.context == Launch.Context(id: "TM351-25J", title: "Data management and analysis", label: "TM351-25J"))
        #expect(launch.portalRole == .learner)
        #expect(launch.custom == ["custom_profile": "tm351"])
        #expect(launch.outcomeServiceURL == "https://vle/outcomes")
        #expect(launch.resultSourcedID == "abc")
        #expect(launch.returnURL == "https://vle.example.ac.uk/mod/lti/return.php?course=7")
        #expect(launch.person.fullName == "Student student-1")
    }

    @Test func refusesTamperedSignatureAndBody() async {
        let signed = ownSigned(timestamp: Int(now.timeIntervalSince1970), nonce: "n2", params: base)
        var tamperedSignature = signed
        tamperedSignature[tamperedSignature.count - 1].value = "AAAAAAAAAAAAAAAAAAAAAAAAAAA="
        #expect(await refusal(validator(), tamperedSignature) == .invalidSignature)
        let tamperedBody = signed.map { $0.name == "roles" ? Parameter(name: "roles", value: "Instructor") : $0 }
        #expect(await refusal(validator(), tamperedBody) == .invalidSignature)
        let extra = signed + [Parameter(name: "custom_extra", value: "1")]
        #expect(await refusal(validator(), extra) == .invalidSignature)
        // The same launch verified against another URL (e.g. http instead of https) fails.
        let other = LaunchValidator(consumers: StaticConsumerDirectory([Consumer(key: "vle", secret: "s3cret")]), nonces: InMemoryNonceStore(), clock: FixedClock(now))
        #expect(await refusal(other, LaunchRequest(method: "POST", baseURI: "http://portal.example.ac.uk/lti/launch", parameters: signed)) == .invalidSignature)
    }

    @Test(arguments: [-301, 301, -3600, 86400])
    func refusesTimestampsOutsideTheWindow(offset: Int) async {
        let signed = ownSigned(timestamp: Int(now.timeIntervalSince1970) + offset, nonce: "n-\(offset)", params: base)
        #expect(await refusal(validator(), signed) == .staleTimestamp)
    }

    @Test(arguments: [-300, -1, 0, 299, 300])
    func acceptsTimestampsInsideTheWindow(offset: Int) async {
        let signed = ownSigned(timestamp: Int(now.timeIntervalSince1970) + offset, nonce: "n+\(offset)", params: base)
        #expect(await refusal(validator(), signed) == nil)
    }

    @Test func refusesAReplayedNonceForTheWholeWindow() async {
        let clock = FixedClock(now)
        let nonces = InMemoryNonceStore(clock: clock)
        let validator = validator(clock: clock, nonces: nonces)
        let signed = ownSigned(timestamp: Int(now.timeIntervalSince1970), nonce: "once", params: base)
        #expect(await refusal(validator, signed) == nil)
        #expect(await refusal(validator, signed) == .replayedNonce)
        clock.set(now.addingTimeInterval(300))
        #expect(await refusal(validator, signed) == .replayedNonce)
        clock.set(now.addingTimeInterval(302))
        #expect(await refusal(validator, signed) == .staleTimestamp)
        // The same nonce from another consumer is a different nonce.
        let twoConsumers = LaunchValidator(
            consumers: StaticConsumerDirectory([Consumer(key: "vle", secret: "s3cret"), Consumer(key: "vle2", secret: "s3cret")]),
            nonces: nonces, clock: FixedClock(now)
        )
        let otherConsumer = ownSigned(key: "vle2", timestamp: Int(now.timeIntervalSince1970), nonce: "once", params: base)
        #expect(await refusal(twoConsumers, otherConsumer) == nil)
    }

    @Test func aRefusedLaunchDoesNotConsumeItsNonce() async {
        let clock = FixedClock(now)
        let nonces = InMemoryNonceStore(clock: clock)
        let validator = validator(clock: clock, nonces: nonces)
        var signed = ownSigned(timestamp: Int(now.timeIntervalSince1970), nonce: "keep", params: base)
        let good = signed
        signed[signed.count - 1].value = "AAAAAAAAAAAAAAAAAAAAAAAAAAA="
        #expect(await refusal(validator, signed) == .invalidSignature)
        #expect(await refusal(validator, good) == nil)
    }

    @Test func refusesUnknownDisabledAndUnsignedLaunches() async {
        let t = Int(now.timeIntervalSince1970)
        #expect(await refusal(validator(), ownSigned(key: "nobody", timestamp: t, nonce: "a", params: base)) == .unknownConsumer)
        #expect(await refusal(validator(), ownSigned(key: "off", secret: "x", timestamp: t, nonce: "b", params: base)) == .consumerDisabled)
        #expect(await refusal(validator(), base.map { Parameter(name: $0.0, value: $0.1) }) == .missingOAuthParameter)
        let noNonce = ownSigned(timestamp: t, nonce: "c", params: base).filter { $0.name != "oauth_nonce" }
        #expect(await refusal(validator(), noNonce) == .missingOAuthParameter)
        let plaintext = ownSigned(timestamp: t, nonce: "d", params: base).map {
            $0.name == "oauth_signature_method" ? Parameter(name: $0.name, value: "PLAINTEXT") : $0
        }
        #expect(await refusal(validator(), plaintext) == .unsupportedSignatureMethod)
        let version = ownSigned(timestamp: t, nonce: "e", params: base).map { $0.name == "oauth_version" ? Parameter(name: $0.name, value: "2.0") : $0 }
        #expect(await refusal(validator(), version) == .unsupportedOAuthVersion)
        let duplicate = ownSigned(timestamp: t, nonce: "f", params: base) + [Parameter(name: "oauth_nonce", value: "g")]
        #expect(await refusal(validator(), duplicate) == .duplicateOAuthParameter)
        let badTimestamp = ownSigned(timestamp: t, nonce: "h", params: base).map { $0.name == "oauth_timestamp" ? Parameter(name: $0.name, value: "soon") : $0 }
        #expect(await refusal(validator(), badTimestamp) == .malformedRequest)
    }

    /// LTI 1.1 certification cases 1.1–1.9 (message checks), as in the notes' checklist.
    @Test(arguments: [
        ("resource_link_id", nil as String?, LaunchRefusal.Reason.missingResourceLink),
        ("resource_link_id", "", .missingResourceLink),
        ("lti_version", "LTI-2p0", .wrongLTIVersion),
        ("lti_version", nil, .wrongLTIVersion),
        ("lti_message_type", "ContentItemSelectionRequest", .wrongMessageType),
        ("lti_message_type", nil, .wrongMessageType),
        ("user_id", nil, .missingUser),
    ])
    func certificationMessageChecks(name: String, value: String?, expected: LaunchRefusal.Reason) async {
        var params = base.filter { $0.0 != name }
        if let value { params.append((name, value)) }
        let signed = ownSigned(timestamp: Int(now.timeIntervalSince1970), nonce: "cert-\(name)-\(value ?? "nil")", params: params)
        #expect(await refusal(validator(), signed) == expected)
        #expect(expected.kind.httpStatus == (expected == .missingUser ? 403 : 400))
    }

    @Test func missingReturnURLAndUnsafeReturnURLsAreNotOffered() async throws {
        let t = Int(now.timeIntervalSince1970)
        let none = try await validator().validate(request(ownSigned(timestamp: t, nonce: "r1", params: base.filter { $0.0 != "launch_presentation_return_url" })))
        #expect(none.returnURL == nil)
        let script = base.filter { $0.0 != "launch_presentation_return_url" } + [("launch_presentation_return_url", "javascript:alert(1)")]
        #expect(try await validator().validate(request(ownSigned(timestamp: t, nonce: "r2", params: script))).returnURL == nil)
        #expect(Launch.returnURL("https://vle/return?x=1", errorMessage: "No luck & sorry") == "https://vle/return?x=1&lti_errormsg=No%20luck%20%26%20sorry")
    }
}
