import ArgumentParser
import Environments
import Foundation

/// `portal profile apply|list`: environment profiles, versioned in the database.
struct ProfileCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "profile",
        abstract: "Manage environment profiles (what a course's environment is).",
        discussion: "Profiles are YAML files that module teams keep in git; see README, Profiles. Each change is a new version; running environments keep theirs.",
        subcommands: [Apply.self, List.self]
    )

    struct Apply: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Validate and store the profiles in a YAML file or a directory of them.")
        @OptionGroup var options: ConfigOptions
        @Argument(help: "A profile file, or a directory of *.yaml files.") var path: String

        func run() async throws {
            try await reportingErrors {
                let applied = try await options.withDatabase { database, _, logger in
                    do {
                        return try await EnvironmentsRuntime.applyProfiles(from: path, client: database.client, logger: logger)
                    } catch let error as ConfigurationError {
                        throw CLIError("profile error: \(error)")
                    }
                }
                for (slug, result) in applied {
                    switch result {
                    case .created: print("\(slug): created (version 1)")
                    case .updated(let version): print("\(slug): updated to version \(version)")
                    case .unchanged(let version): print("\(slug): unchanged (version \(version))")
                    }
                }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List profiles at their current version.")
        @OptionGroup var options: ConfigOptions

        func run() async throws {
            try await reportingErrors {
                let profiles = try await options.withDatabase { database, _, _ in
                    try await ProfileRepository(client: database.client).current()
                }
                if profiles.isEmpty {
                    print("No profiles. Add some with: portal profile apply FILE|DIR")
                    return
                }
                print(["SLUG", "VERSION", "NAME", "IMAGE/COMMAND", "CPU", "MEMORY", "GPU", "HOME"].joined(separator: "\t"))
                for entry in profiles {
                    let profile = entry.profile
                    let runs = profile.image ?? profile.command?.joined(separator: " ") ?? "-"
                    let memory = ByteCountFormatter.string(fromByteCount: profile.memoryBytes, countStyle: .memory)
                    print([profile.slug, "\(entry.version)", profile.displayName, runs, "\(profile.cpu)", memory, "\(profile.gpus)", profile.persistence.rawValue].joined(separator: "\t"))
                }
            }
        }
    }
}

/// `portal course map|unmap|mappings`: which profile a course uses.
struct CourseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "course",
        abstract: "Map courses to environment profiles.",
        discussion: "A link's custom_profile parameter wins over a mapping; without either, profile match rules and then environments.default_profile apply.",
        subcommands: [Map.self, Unmap.self, Mappings.self]
    )

    struct Map: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Use a profile for a course (its LTI context_id).")
        @OptionGroup var options: ConfigOptions
        @Option(help: "The course's LTI context_id.") var contextID: String
        @Option(help: "The profile slug.") var profile: String
        @Option(help: "Only for launches from this consumer key (default: every consumer).") var consumer: String = ""

        func run() async throws {
            try await reportingErrors {
                try await options.withDatabase { database, _, _ in
                    let repository = ProfileRepository(client: database.client)
                    guard try await repository.current().contains(where: { $0.profile.slug == profile }) else {
                        throw CLIError("there is no profile \"\(profile)\"; apply it first with: portal profile apply FILE")
                    }
                    try await repository.map(consumerKey: consumer, contextID: contextID, profile: profile)
                }
                print("Course \(contextID)\(consumer.isEmpty ? "" : " (consumer \(consumer))") now uses profile \(profile).")
            }
        }
    }

    struct Unmap: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a course's mapping.")
        @OptionGroup var options: ConfigOptions
        @Option(help: "The course's LTI context_id.") var contextID: String
        @Option(help: "The consumer key the mapping was made for (default: every consumer).") var consumer: String = ""

        func run() async throws {
            try await reportingErrors {
                let removed = try await options.withDatabase { database, _, _ in
                    try await ProfileRepository(client: database.client).unmap(consumerKey: consumer, contextID: contextID)
                }
                guard removed else { throw CLIError("there is no mapping for course \(contextID)") }
                print("Removed the mapping of course \(contextID).")
            }
        }
    }

    struct Mappings: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List course mappings.")
        @OptionGroup var options: ConfigOptions

        func run() async throws {
            try await reportingErrors {
                let mappings = try await options.withDatabase { database, _, _ in
                    try await ProfileRepository(client: database.client).mappings()
                }
                print(["CONSUMER", "CONTEXT_ID", "PROFILE"].joined(separator: "\t"))
                for mapping in mappings {
                    print([mapping.consumerKey.isEmpty ? "*" : mapping.consumerKey, mapping.contextID, mapping.profileSlug].joined(separator: "\t"))
                }
            }
        }
    }
}
