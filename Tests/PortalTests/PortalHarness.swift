import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
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
        try await app.test(.live) { client in
            try await body(client, opened.client)
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
