import Foundation
import HTTPTypes
import Hummingbird
@testable import HummingbirdTesting
import LTI
import Logging
import NIOCore
import PostgresNIO
@testable import Portal
import TestSupport
import Testing

/// Runs the real portal application (HTTP on a loopback port, real PostgreSQL) for a test.
enum PortalHarness {
    static let consumerKey = "vle"
    static let consumerSecret = "vle-secret"

    static func configuration(
        databaseURL: String,
        publicURL: String = "https://portal.example.ac.uk",
        trustedProxies: [String] = [],
        dataDirectory: String = FileManager.default.temporaryDirectory.appendingPathComponent("portal-test-\(UUID().uuidString)").path
    ) throws -> PortalConfiguration {
        PortalConfiguration(
            file: "test.yaml",
            listenHost: "127.0.0.1",
            listenPort: 0,
            publicURL: try #require(PublicURL(publicURL)),
            dataDirectory: dataDirectory,
            database: .external(url: databaseURL),
            databasePoolSize: 8,
            secretKey: .value("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="),
            sessionLifetime: .seconds(3600),
            timestampWindow: .seconds(300),
            noncePurgeInterval: .seconds(60),
            consumers: [.init(key: consumerKey, name: "Test VLE", secret: consumerSecret)],
            trustedProxies: try trustedProxies.map { try #require(IPAddressRange($0)) },
            logLevel: .warning,
            logFormat: .text,
            embeddedPostgresBinDirectory: nil,
            templatesDirectory: TestPaths.templates,
            migrationsDirectory: TestPaths.migrations
        )
    }

    /// Runs `body` against a live portal on a fresh database, its configuration changed by `configure`.
    static func withPortal(
        publicURL: String = "https://portal.example.ac.uk",
        trustedProxies: [String] = [],
        environments: PortalConfiguration.EnvironmentsConfiguration = .init(),
        proxy: PortalConfiguration.ProxyConfiguration = .init(),
        configure: (inout PortalConfiguration) -> Void = { _ in },
        _ body: @Sendable (any TestClientProtocol, PostgresClient) async throws -> Void
    ) async throws {
        let database = try await TestDatabase.create()
        var configuration = try configuration(databaseURL: database.url, publicURL: publicURL, trustedProxies: trustedProxies)
        configuration.environments = environments
        configuration.proxy = proxy
        configure(&configuration)
        var logger = Logger(label: "portal-test")
        logger.logLevel = .warning
        let opened = try await Database.open(configuration, logger: logger)
        let resources = try ResourceDirectories(configuration: configuration)
        let app = try await PortalApplication.build(configuration, database: opened, resources: resources, logger: logger)
        try await app.test(.live) { live in
            let client = PatientClient(port: try #require(live.port))
            client.client.connect()
            do {
                try await body(client, opened.client)
            } catch {
                try await client.client.shutdown()
                throw error
            }
            try await client.client.shutdown()
        }
    }

    /// The live test client with a read timeout for liveness (minutes), not for speed: Hummingbird's
    /// own gives up after 20 s without a byte, which a 50 MB upload that Jupyter writes out before
    /// answering can take on a busy machine.
    struct PatientClient: TestClientProtocol {
        static let timeout = Duration.seconds(600)
        let client: TestClient
        let port: Int?

        init(port: Int) {
            self.port = port
            client = TestClient(host: "localhost", port: port, configuration: .init(timeout: Self.timeout))
        }

        func executeRequest(uri: String, method: HTTPRequest.Method, headers: HTTPFields, body: ByteBuffer?) async throws -> TestResponse {
            var headers = headers
            headers[.connection] = "keep-alive"
            let response = try await client.execute(TestClient.Request(uri, method: method, authority: "localhost", headers: headers, body: body))
            return TestResponse(head: response.head, body: response.body ?? ByteBuffer(), trailerHeaders: response.trailerHeaders)
        }
    }

    /// Signs `params` for `url` with oauthlib (fresh timestamp and nonce unless given).
    static func sign(
        url: String = "https://portal.example.ac.uk/lti/launch", params: [(String, String)] = IndependentSigner.launchParameters(),
        key: String = consumerKey, secret: String = consumerSecret, timestamp: Int? = nil, implementation: IndependentSigner.Implementation = .oauthlib
    ) throws -> IndependentSigner.Signed {
        try signAll([(url, params)], key: key, secret: secret, timestamp: timestamp, implementation: implementation)[0]
    }

    static func signAll(
        _ launches: [(String, [(String, String)])], key: String = consumerKey, secret: String = consumerSecret, timestamp: Int? = nil,
        implementation: IndependentSigner.Implementation = .oauthlib
    ) throws -> [IndependentSigner.Signed] {
        let now = Int(Date().timeIntervalSince1970)
        return try IndependentSigner.sign(
            launches.map {
                IndependentSigner.Spec(
                    implementation, url: $0.0, key: key, secret: secret, params: $0.1,
                    timestamp: implementation == .oauthlib ? (timestamp ?? now) : nil, nonce: implementation == .oauthlib ? UUID().uuidString : nil
                )
            }
        )
    }

    /// POSTs a launch form.
    static func post(_ client: any TestClientProtocol, body: String, path: String = "/lti/launch", headers: HTTPFields = [:]) async throws -> TestResponse {
        var all: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]
        all.append(contentsOf: headers)
        return try await client.execute(uri: path, method: .post, headers: all, body: ByteBuffer(string: body))
    }

    /// The `portal_session` token a response sets.
    static func sessionToken(_ response: TestResponse) -> String? {
        guard let header = response.headers[.setCookie], header.hasPrefix("portal_session=") else { return nil }
        return String(header.dropFirst("portal_session=".count).prefix { $0 != ";" })
    }
}
