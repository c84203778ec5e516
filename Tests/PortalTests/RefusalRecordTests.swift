import Foundation
import HTTPTypes
import HummingbirdTesting
import LTI
import Logging
import PostgresNIO
@testable import Portal
import TestSupport
import Testing

/// Refused launches cost their sender nothing, so what they write is bounded: fields cut and
/// marked, rows per client and minute limited (also across replicas), a NUL refused and recorded,
/// and a way back to the VLE offered only when the launch was verified.
@Suite("Refused launches: bounded records and safe pages", .enabled(if: TestEnvironment.hasDatabase && TestEnvironment.hasPython))
struct RefusalRecordTests {
    typealias Harness = PortalHarness

    /// A form body of `pairs`, percent-encoded.
    static func form(_ pairs: [(String, String)]) -> String {
        pairs.map { PercentEncoding.encode($0.0) + "=" + PercentEncoding.encode($0.1) }.joined(separator: "&")
    }

    /// `count` characters that do not compress (hex of random UUIDs).
    static func incompressible(_ count: Int) -> String {
        String((0..<(count / 32 + 1)).map { _ in UUID().uuidString.replacingOccurrences(of: "-", with: "") }.joined().prefix(count))
    }

    /// A launch of someone who knows no consumer key: refused as unknown_consumer (401).
    static func forged(userID: String, returnURL: String) -> String {
        form([
            ("oauth_consumer_key", "guess"), ("oauth_signature_method", "HMAC-SHA1"), ("oauth_timestamp", "1"), ("oauth_nonce", UUID().uuidString),
            ("oauth_signature", "AAAA"), ("lti_message_type", "basic-lti-launch-request"), ("user_id", userID),
            ("launch_presentation_return_url", returnURL),
        ])
    }

    static func ints(_ client: PostgresClient, _ sql: String) async throws -> [Int] {
        var values = [Int]()
        for try await (a, b) in try await client.query(PostgresQuery(unsafeSQL: sql)).decode((Int, Int).self) { values += [a, b] }
        return values
    }

    @Test func oversizedUnverifiedFieldsAreCutAt256CharactersOnACharacterBoundaryAndMarked() async throws {
        try await Harness.withPortal { client, db in
            let userID = String(repeating: "a", count: 255) + "é" + String(repeating: "a", count: 500_000)
            let returnURL = "https://evil.example/" + String(repeating: "x", count: 400_000)
            let body = Self.form([
                ("oauth_consumer_key", String(repeating: "k", count: 300)), ("user_id", userID), ("launch_presentation_return_url", returnURL),
                ("context_id", String(repeating: "😀", count: 300)), ("resource_link_id", "short"),
            ])
            let response = try await Harness.post(client, body: body, headers: [.init("X-Forwarded-For")!: "198.51.100.1"])
            #expect(response.status == .badRequest)
            #expect(String(buffer: response.body).contains("missing_oauth_parameter"))

            let rows = try await db.query(
                """
                SELECT length(lti_user_id), octet_length(lti_user_id), right(lti_user_id, 1), length(return_url), length(consumer_key),
                       length(context_id), octet_length(context_id), resource_link_id, truncated_fields
                FROM launches WHERE outcome = 'refused'
                """
            )
            var seen = 0
            for try await (userLength, userBytes, userLast, returnLength, keyLength, contextLength, contextBytes, link, truncated) in rows.decode(
                (Int, Int, String, Int, Int, Int, Int, String, [String]).self
            ) {
                seen += 1
                #expect(userLength == 256 && userBytes == 257 && userLast == "é")
                #expect(returnLength == 256 && keyLength == 256)
                #expect(contextLength == 256 && contextBytes == 1024)
                #expect(link == "short")
                #expect(truncated == ["consumer_key", "lti_user_id", "context_id", "return_url"])
            }
            #expect(seen == 1)
            // The peer was not a trusted proxy: its X-Forwarded-For is not who the client is.
            #expect(try await Self.ints(db, "SELECT refused, recorded FROM launch_refusal_counts WHERE client_addr = '127.0.0.1'") == [1, 1])

            // A refusal with nothing to cut is not marked.
            _ = try await Harness.post(client, body: Self.form([("user_id", "u")]))
            #expect(try await TestDatabase.count(db, "SELECT count(*) FROM launches WHERE outcome = 'refused' AND truncated_fields = '{}'") == 1)
        }
    }

    /// 60 forged launches of 200 KB each, as fast as one connection sends them: 20 rows (the
    /// default limit), counted beyond it, the table barely grows — and a genuine launch from the
    /// same address still goes through.
    @Test func aFloodOfRefusalsFromOneClientStaysBoundedInRowsAndBytes() async throws {
        try await Harness.withPortal { client, db in
            let before = try await TestDatabase.count(db, "SELECT pg_total_relation_size('launches')::bigint")
            for _ in 0..<60 {
                let body = Self.forged(userID: Self.incompressible(100_000), returnURL: "https://evil.example/" + Self.incompressible(100_000))
                let response = try await Harness.post(client, body: body)
                #expect(response.status == .unauthorized)
                #expect(String(buffer: response.body).contains("unknown_consumer"))
            }
            let after = try await TestDatabase.count(db, "SELECT pg_total_relation_size('launches')::bigint")
            #expect(after - before < 512 * 1024, "launches grew by \(after - before) bytes")
            let rows = try await TestDatabase.count(db, "SELECT count(*) FROM launches WHERE outcome = 'refused'")
            let limit = LaunchStore.RefusalLimits().perClient
            // One minute's limit, or two if the flood straddled a minute.
            #expect(rows >= limit && rows <= 2 * limit)
            let client127 = try await Self.ints(db, "SELECT sum(refused)::bigint, sum(recorded)::bigint FROM launch_refusal_counts WHERE client_addr = '127.0.0.1'")
            #expect(client127 == [60, rows])
            #expect(try await TestDatabase.count(db, "SELECT count(*) FROM launch_refusal_counts WHERE client_addr = '127.0.0.1' AND recorded > \(limit)") == 0)

            let genuine = try await Harness.post(client, body: try Harness.sign().body)
            #expect(genuine.status == .seeOther)
            #expect(try await TestDatabase.count(db, "SELECT count(*) FROM launches WHERE outcome = 'accepted'") == 1)
        }
    }

    /// Two "replicas" (separate connection pools) recording refusals of three clients at once
    /// never record more than the limits between them, and count every refusal.
    @Test func refusalLimitsHoldAcrossReplicasOnOneDatabase() async throws {
        let database = try await TestDatabase.create()
        let limits = LaunchStore.RefusalLimits(perClient: 5, perMinute: 12)
        try await database.withClient { migrator in
            _ = try await MigrationRunner(migrations: try Migration.load(from: TestPaths.migrations), logger: Logger(label: "test")).run(on: migrator)
        }
        try await database.withClient { first in
            try await database.withClient { second in
                let stores = [first, second].map { LaunchStore(client: $0, sessionLifetime: .seconds(60), refusalLimits: limits) }
                let request = LaunchRequest(method: "POST", baseURI: "", parameters: [Parameter(name: "user_id", value: "x")])
                let refusal = LaunchRefusal(.missingOAuthParameter, "unsigned")
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for index in 0..<30 {
                        let facts = LaunchStore.RequestFacts(remoteAddress: "10.0.0.1", clientAddress: "203.0.113.\(index % 3)", requestID: "r\(index)")
                        group.addTask { try await stores[index % 2].refuse(refusal, request: request, facts: facts) }
                    }
                    try await group.waitForAll()
                }
                let launches = try await TestDatabase.count(first, "SELECT count(*) FROM launches")
                #expect(try await Self.ints(first, "SELECT sum(refused)::bigint, sum(recorded)::bigint FROM launch_refusal_counts WHERE client_addr = '*'") == [30, launches])
                #expect(try await TestDatabase.count(first, "SELECT count(*) FROM launch_refusal_counts WHERE client_addr <> '*' AND recorded > 5") == 0)
                #expect(try await TestDatabase.count(first, "SELECT count(*) FROM launch_refusal_counts WHERE client_addr = '*' AND recorded > 12") == 0)
                for index in 0..<3 {
                    #expect(try await TestDatabase.count(first, "SELECT sum(refused)::bigint FROM launch_refusal_counts WHERE client_addr = '203.0.113.\(index)'") == 10)
                }
                if try await TestDatabase.count(first, "SELECT count(DISTINCT minute) FROM launch_refusal_counts") == 1 {
                    #expect(launches == 12)
                }
            }
        }
    }

    @Test func aNULInAValidlySignedParameterIsA400RefusalAndRecorded() async throws {
        try await Harness.withPortal { client, db in
            let signed = try Harness.sign(params: IndependentSigner.launchParameters(extra: [("lis_person_name_given", "Ada\u{0}Lovelace")]))
            #expect(signed.body.contains("%00"))
            let response = try await Harness.post(client, body: signed.body)
            #expect(response.status == .badRequest)
            let html = String(buffer: response.body)
            #expect(html.contains("malformed_request"))
            #expect(html.contains("NUL"))
            #expect(try await TestDatabase.count(db, "SELECT count(*) FROM launches WHERE outcome = 'refused' AND reason = 'malformed_request' AND message LIKE '%NUL%'") == 1)
            #expect(try await TestDatabase.count(db, "SELECT count(*) FROM users") == 0)
        }
    }

    /// A VLE's signed launch with a field beyond LaunchLimits gets a page saying which field, and is
    /// recorded, instead of a database error (an identifier this long cannot be indexed).
    @Test func aVerifiedLaunchWithAnOversizedFieldIsRefusedWithAPageNotADatabaseError() async throws {
        try await Harness.withPortal { client, db in
            let long = String(repeating: "é", count: 3000)
            let signed = try Harness.sign(params: IndependentSigner.launchParameters(user: long))
            let response = try await Harness.post(client, body: signed.body)
            #expect(response.status == .badRequest)
            let html = String(buffer: response.body)
            #expect(html.contains("field_too_long") && html.contains("user_id"))
            // Verified: the way back to the VLE is offered.
            #expect(html.contains("Back to your course"))
            #expect(
                try await TestDatabase.count(
                    db, "SELECT count(*) FROM launches WHERE reason = 'field_too_long' AND length(lti_user_id) = 256 AND truncated_fields = '{lti_user_id}'"
                ) == 1
            )
            #expect(try await TestDatabase.count(db, "SELECT count(*) FROM users") == 0)
        }
    }

    /// A refusal page links back to the VLE only when the launch's signature verified with its
    /// consumer's secret; before that, the return URL is whatever the sender chose.
    @Test func onlyAVerifiedLaunchsRefusalLinksBackToTheVLE() async throws {
        try await Harness.withPortal { client, _ in
            let phishing = [("launch_presentation_return_url", "https://evil.example/login")]
            let base = IndependentSigner.launchParameters().filter { $0.0 != "launch_presentation_return_url" } + phishing
            let now = Int(Date().timeIntervalSince1970)
            let unverified: [(String, String, Int)] = [
                ("wrong secret", try Harness.sign(params: base, secret: "guess").body, 401),
                ("unknown key", try Harness.sign(params: base, key: "stranger").body, 401),
                ("stale timestamp", try Harness.sign(params: base, timestamp: now - 1000).body, 401),
                ("unsigned", Self.form(base), 400),
            ]
            for (name, body, status) in unverified {
                let response = try await Harness.post(client, body: body)
                #expect(response.status.code == status, "\(name)")
                let html = String(buffer: response.body)
                #expect(!html.contains("evil.example"), "\(name)")
                #expect(!html.contains("Back to your course"), "\(name)")
                #expect(html.contains("Go back to your course page in the VLE"), "\(name)")
            }
            // Verified, then refused: the return URL is the VLE's own.
            let genuine = IndependentSigner.launchParameters()
            let signed = try Harness.sign(params: genuine)
            #expect(try await Harness.post(client, body: signed.body).status == .seeOther)
            let replayed = try await Harness.post(client, body: signed.body)
            #expect(replayed.status == .unauthorized)
            #expect(String(buffer: replayed.body).contains("replayed_nonce"))
            #expect(String(buffer: replayed.body).contains("https://vle.example.ac.uk/mod/lti/return.php?course=7&amp;lti_errormsg="))
            let noLink = try await Harness.post(client, body: try Harness.sign(params: genuine.filter { $0.0 != "resource_link_id" }).body)
            #expect(String(buffer: noLink.body).contains("Back to your course"))
        }
    }
}

/// Who a refusal is counted against, and how its fields are kept.
@Suite("Refusal keys and capped fields")
struct RefusalKeyTests {
    @Test func theClientIsThePeerUnlessATrustedProxyForwardedIt() throws {
        let resolver = LaunchURLResolver(publicURL: try #require(PublicURL("https://portal.example.ac.uk")), trustedProxies: [try #require(IPAddressRange("10.0.0.0/8"))])
        let forwarded: HTTPFields = [.init("X-Forwarded-For")!: "198.51.100.7, 203.0.113.9, 10.1.1.1"]
        #expect(ClientAddress.of(headers: forwarded, peer: "10.0.0.2", resolver: resolver) == "203.0.113.9")
        #expect(ClientAddress.of(headers: forwarded, peer: "192.0.2.1", resolver: resolver) == "192.0.2.1")
        #expect(ClientAddress.of(headers: [:], peer: "10.0.0.2", resolver: resolver) == "10.0.0.2")
        #expect(ClientAddress.of(headers: [.init("X-Forwarded-For")!: "10.2.2.2"], peer: "10.0.0.2", resolver: resolver) == "10.2.2.2")
        #expect(ClientAddress.of(headers: [.init("X-Forwarded-For")!: "junk, 10.2.2.2"], peer: "10.0.0.2", resolver: resolver) == "10.2.2.2")
        #expect(ClientAddress.of(headers: forwarded, peer: nil, resolver: resolver) == nil)
    }

    @Test func refusalsAreCountedPerIPv4AddressAndPerIPv6Network() {
        #expect(ClientAddress.refusalKey("203.0.113.9") == "203.0.113.9")
        #expect(ClientAddress.refusalKey("::ffff:203.0.113.9") == "203.0.113.9")
        #expect(ClientAddress.refusalKey("2001:db8:1:2::1") == "2001:db8:1:2::/64")
        #expect(ClientAddress.refusalKey("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64")
        #expect(ClientAddress.refusalKey(nil) == "unknown")
        #expect(ClientAddress.refusalKey("not an address") == "unknown")
    }

    @Test func fieldsAreCutByCharacterAndTheCutOnesNamed() {
        var fields = CappedFields(limit: 4)
        #expect(fields.cap("abcd", column: "a") == "abcd")
        #expect(fields.cap("ab😀d€", column: "b") == "ab😀d")
        #expect(fields.cap(nil, column: "c") == nil)
        #expect(fields.cap("e\u{301}e\u{301}e\u{301}", column: "d") == "e\u{301}e\u{301}")
        #expect(fields.cap("x\u{0}y", column: "e") == "x\u{FFFD}y")
        #expect(fields.truncated == ["b", "d"])
    }
}
