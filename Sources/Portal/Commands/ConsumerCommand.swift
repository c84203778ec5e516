import ArgumentParser
import Crypto
import Foundation

/// `portal consumer add|list|remove`: LTI 1.1 consumers stored in the database.
struct ConsumerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consumer",
        abstract: "Manage LTI 1.1 consumers (VLE installations) stored in the database.",
        discussion: "Secrets are sealed with the portal's secret key (secret_key / secret_key_file) and never shown again.",
        subcommands: [Add.self, List.self, Remove.self]
    )

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Register a consumer. Without --secret or --secret-file a strong secret is generated and printed once."
        )
        @OptionGroup var options: ConfigOptions
        @Option(help: "The consumer key the VLE will send (oauth_consumer_key).") var key: String
        @Option(help: "A name for people, e.g. \"Moodle production\".") var name: String?
        @Option(help: "The shared secret (visible in the process list; prefer --secret-file).") var secret: String?
        @Option(help: "A file holding the shared secret.") var secretFile: String?

        func run() async throws {
            try await reportingErrors {
                guard !key.isEmpty, key.allSatisfy({ !$0.isWhitespace }) else { throw CLIError("--key must be non-empty without spaces") }
                var generated = false
                var shared: String
                guard secret == nil || secretFile == nil else { throw CLIError("give --secret or --secret-file, not both") }
                if let secret {
                    shared = secret
                } else if let secretFile {
                    guard let data = FileManager.default.contents(atPath: secretFile) else { throw CLIError("cannot read \(secretFile)") }
                    shared = String(decoding: data, as: UTF8.self).trimmingWhitespace()
                } else {
                    shared = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }.base64EncodedString()
                    generated = true
                }
                guard !shared.isEmpty else { throw CLIError("the secret must not be empty") }
                let secret = shared
                let configuration = try await options.withDatabase { database, configuration, _ in
                    let box = try SecretBox(source: configuration.secretKey)
                    try await ConsumerStore(configured: configuration.consumers, client: database.client, box: box)
                        .add(key: key, name: name ?? key, secret: secret)
                    return configuration
                }
                print("Added consumer \"\(key)\".")
                print("Launch URL:   \(configuration.publicURL.absolute("/lti/launch"))")
                print("Consumer key: \(key)")
                if generated {
                    print("Secret:       \(shared)")
                    print("Copy the secret into the VLE now: it is stored encrypted and will not be shown again.")
                }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List consumers (never their secrets).")
        @OptionGroup var options: ConfigOptions

        func run() async throws {
            try await reportingErrors {
                let listings = try await options.withDatabase { database, configuration, _ in
                    let box = try SecretBox(source: configuration.secretKey)
                    return try await ConsumerStore(configured: configuration.consumers, client: database.client, box: box).list()
                }
                if listings.isEmpty {
                    print("No consumers. Add one with: portal consumer add --key KEY")
                    return
                }
                print(["KEY", "NAME", "ENABLED", "SOURCE", "CREATED"].joined(separator: "\t"))
                for listing in listings {
                    let created = listing.createdAt.map { ISO8601DateFormatter().string(from: $0) } ?? "-"
                    print([listing.key, listing.name, listing.enabled ? "yes" : "no", listing.source, created].joined(separator: "\t"))
                }
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a consumer; its launches are refused from then on.")
        @OptionGroup var options: ConfigOptions
        @Option(help: "The consumer key to remove.") var key: String

        func run() async throws {
            try await reportingErrors {
                try await options.withDatabase { database, configuration, _ in
                    let box = try SecretBox(source: configuration.secretKey)
                    try await ConsumerStore(configured: configuration.consumers, client: database.client, box: box).remove(key: key)
                }
                print("Removed consumer \"\(key)\".")
            }
        }
    }
}
