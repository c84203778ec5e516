import Foundation
import LTI
import TestSupport
import Testing

/// What a launch may carry (no NUL, fields within ``LaunchLimits``) and which refusals come from
/// a verified launch, whose return URL a refusal page may offer.
@Suite("LTI 1.1 launch limits and verified refusals")
struct LaunchHardeningTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    let url = "https://portal.example.ac.uk/lti/launch"
    var base: [(String, String)] { IndependentSigner.launchParameters() }

    func validator(nonces: InMemoryNonceStore? = nil) -> LaunchValidator {
        let clock = FixedClock(now)
        return LaunchValidator(
            consumers: StaticConsumerDirectory([Consumer(key: "vle", secret: "s3cret"), Consumer(key: "off", secret: "x", enabled: false)]),
            nonces: nonces ?? InMemoryNonceStore(clock: clock), clock: clock
        )
    }

    /// The refusal of `parameters`, signed unless they already are; `nil` when accepted.
    func refusal(_ parameters: [Parameter], validator: LaunchValidator? = nil) async -> LaunchRefusal? {
        do {
            _ = try await (validator ?? self.validator()).validate(LaunchRequest(method: "POST", baseURI: url, parameters: parameters))
            return nil
        } catch let refusal as LaunchRefusal {
            return refusal
        } catch {
            Issue.record("unexpected error \(error)")
            return nil
        }
    }

    func signed(_ params: [(String, String)], nonce: String = UUID().uuidString, key: String = "vle", secret: String = "s3cret", offset: Int = 0) -> [Parameter] {
        ownSigned(key: key, secret: secret, timestamp: Int(now.timeIntervalSince1970) + offset, nonce: nonce, params: params)
    }

    @Test(arguments: ["user_id=a%00b", "lis_person_name_full=Ada%00", "na%00me=x", "a=\u{0}"])
    func aNULCharacterAnywhereInTheFormIsMalformed(form: String) throws {
        #expect(throws: LaunchRefusal.self) { try PercentEncoding.parseForm(Substring(form)) }
        do {
            _ = try PercentEncoding.parseForm(Substring(form))
        } catch {
            #expect(error.reason == .malformedRequest)
            #expect(error.message.contains("NUL"))
        }
    }

    @Test func aNULCharacterInTheOAuthHeaderIsMalformed() {
        #expect(throws: LaunchRefusal.self) { try LaunchRequest.oauthHeaderParameters(#"OAuth oauth_nonce="a%00b", oauth_version="1.0""#) }
        #expect((try? LaunchRequest.oauthHeaderParameters(#"OAuth oauth_nonce="ab""#))?.count == 1)
    }

    @Test func identifiersAndValuesOverTheirLimitsAreRefusedAfterVerification() async throws {
        let long = String(repeating: "é", count: LaunchLimits.identifierLength + 1)
        let atLimit = String(repeating: "é", count: LaunchLimits.identifierLength)
        for name in ["user_id", "context_id", "resource_link_id"] {
            let over = await refusal(signed(base.filter { $0.0 != name } + [(name, long)]))
            #expect(over?.reason == .fieldTooLong, "\(name)")
            #expect(over?.message.contains(name) == true, "\(name)")
            #expect(over?.signatureVerified == true, "\(name)")
            #expect(await refusal(signed(base.filter { $0.0 != name } + [(name, atLimit)])) == nil, "\(name)")
        }
        let longValue = String(repeating: "x", count: LaunchLimits.valueLength + 1)
        for name in ["lis_person_name_full", "context_title", "roles", "lis_result_sourcedid", "custom_profile"] {
            #expect(await refusal(signed(base.filter { $0.0 != name } + [(name, longValue)]))?.reason == .fieldTooLong, "\(name)")
        }
        let manyCustom = (0...LaunchLimits.customParameterCount).map { ("custom_p\($0)", "v") }
        #expect(await refusal(signed(base + manyCustom))?.reason == .fieldTooLong)
        let fewCustom = (1...LaunchLimits.customParameterCount).map { ("custom_p\($0)", "v") }
        #expect(await refusal(signed(base + fewCustom)) == nil)
    }

    @Test func anOversizedNonceOrConsumerKeyIsRefusedBeforeAnyLookup() async {
        #expect(await refusal(signed(base, nonce: String(repeating: "n", count: 256)))?.reason == .fieldTooLong)
        let key = String(repeating: "k", count: 256)
        let refused = await refusal(signed(base, key: key))
        #expect(refused?.reason == .fieldTooLong)
        #expect(refused?.signatureVerified == false)
    }

    /// Only a refusal after the signature verified with the consumer's secret may trust the launch.
    @Test func onlyRefusalsAfterTheSignatureVerifiedAreMarkedVerified() async throws {
        let unverified: [(String, [Parameter])] = [
            ("unsigned", base.map { Parameter(name: $0.0, value: $0.1) }),
            ("unknown consumer", signed(base, key: "nobody")),
            ("disabled consumer", signed(base, key: "off", secret: "x")),
            ("stale timestamp", signed(base, offset: -1000)),
            ("wrong secret", signed(base, secret: "guess")),
        ]
        for (name, parameters) in unverified {
            let refused = try #require(await refusal(parameters), "\(name)")
            #expect(!refused.signatureVerified, "\(name)")
        }
        let verified: [(String, [Parameter])] = [
            ("missing resource link", signed(base.filter { $0.0 != "resource_link_id" })),
            ("wrong version", signed(base.filter { $0.0 != "lti_version" } + [("lti_version", "LTI-2p0")])),
            ("no user", signed(base.filter { $0.0 != "user_id" })),
        ]
        for (name, parameters) in verified {
            let refused = try #require(await refusal(parameters), "\(name)")
            #expect(refused.signatureVerified, "\(name)")
        }
        let nonces = InMemoryNonceStore(clock: FixedClock(now))
        let once = signed(base, nonce: "once")
        #expect(await refusal(once, validator: validator(nonces: nonces)) == nil)
        let replayed = try #require(await refusal(once, validator: validator(nonces: nonces)))
        #expect(replayed.reason == .replayedNonce && replayed.signatureVerified)
    }

    @Test func messagesQuoteWhatALaunchSentShortened() async throws {
        let type = String(repeating: "t", count: 10_000)
        let refused = try #require(await refusal(signed(base.filter { $0.0 != "lti_message_type" } + [("lti_message_type", type)])))
        #expect(refused.reason == .wrongMessageType)
        #expect(refused.message.count < 200)
        #expect(LaunchRefusal.quoted("short") == "short")
        #expect(LaunchRefusal.quoted(String(repeating: "😀", count: 41)) == String(repeating: "😀", count: 40) + "…")
    }
}
