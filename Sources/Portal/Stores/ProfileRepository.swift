import Environments
import Foundation
import PostgresNIO

/// Versioned profiles and course → profile mappings in PostgreSQL.
struct ProfileRepository: Sendable {
    /// A profile at one version.
    struct Versioned: Sendable {
        var profile: Profile
        var version: Int
    }

    /// What applying a profile did.
    enum Applied: Sendable, Equatable {
        case created, updated(Int), unchanged(Int)
    }

    let client: PostgresClient

    static func encode(_ profile: Profile) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(profile), as: UTF8.self)
    }

    /// Stores `profile` as a new version unless it equals the current one.
    func apply(_ profile: Profile, source: String) async throws -> Applied {
        let spec = try Self.encode(profile)
        return try await client.withTransaction(logger: .init(label: "profiles")) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(hashtext('portal.profiles'))", logger: .init(label: "profiles"))
            let current = try await connection.query(
                """
                SELECT p.current_version, pv.spec::text FROM profiles p JOIN profile_versions pv ON pv.slug = p.slug AND pv.version = p.current_version
                WHERE p.slug = \(profile.slug)
                """,
                logger: .init(label: "profiles")
            )
            var existing: (Int, String)?
            for try await row in current.decode((Int, String).self) { existing = row }
            if let (version, stored) = existing {
                let storedProfile = try JSONDecoder().decode(Profile.self, from: Data(stored.utf8))
                if storedProfile == profile { return .unchanged(version) }
                let next = version + 1
                try await connection.query(
                    "INSERT INTO profile_versions (slug, version, spec, source) VALUES (\(profile.slug), \(next), \(spec)::jsonb, \(source))",
                    logger: .init(label: "profiles")
                )
                try await connection.query(
                    "UPDATE profiles SET current_version = \(next), updated_at = now() WHERE slug = \(profile.slug)", logger: .init(label: "profiles")
                )
                return .updated(next)
            }
            try await connection.query("INSERT INTO profiles (slug, current_version) VALUES (\(profile.slug), 1)", logger: .init(label: "profiles"))
            try await connection.query(
                "INSERT INTO profile_versions (slug, version, spec, source) VALUES (\(profile.slug), 1, \(spec)::jsonb, \(source))",
                logger: .init(label: "profiles")
            )
            return .created
        }
    }

    /// Every profile at its current version, by slug.
    func current() async throws -> [Versioned] {
        var result = [Versioned]()
        let rows = try await client.query(
            """
            SELECT pv.spec::text, p.current_version FROM profiles p
            JOIN profile_versions pv ON pv.slug = p.slug AND pv.version = p.current_version ORDER BY p.slug
            """
        )
        for try await (spec, version) in rows.decode((String, Int).self) {
            result.append(Versioned(profile: try JSONDecoder().decode(Profile.self, from: Data(spec.utf8)), version: version))
        }
        return result
    }

    /// Maps a course (`consumerKey` "" for every consumer) to a profile.
    func map(consumerKey: String, contextID: String, profile: String) async throws {
        try await client.query(
            """
            INSERT INTO course_profile_mappings (consumer_key, context_id, profile_slug) VALUES (\(consumerKey), \(contextID), \(profile))
            ON CONFLICT (consumer_key, context_id) DO UPDATE SET profile_slug = EXCLUDED.profile_slug, updated_at = now()
            """
        )
    }

    /// Removes a mapping; returns whether there was one.
    func unmap(consumerKey: String, contextID: String) async throws -> Bool {
        var removed = false
        for try await _ in try await client.query(
            "DELETE FROM course_profile_mappings WHERE consumer_key = \(consumerKey) AND context_id = \(contextID) RETURNING 1"
        ) { removed = true }
        return removed
    }

    /// Every mapping: (consumer key, context id) → profile slug.
    func mappings() async throws -> [CourseMapping] {
        var result = [CourseMapping]()
        let rows = try await client.query("SELECT consumer_key, context_id, profile_slug FROM course_profile_mappings ORDER BY consumer_key, context_id")
        for try await (consumer, context, profile) in rows.decode((String, String, String).self) {
            result.append(CourseMapping(consumerKey: consumer, contextID: context, profileSlug: profile))
        }
        return result
    }
}

/// An explicit course → profile mapping.
struct CourseMapping: Sendable, Equatable {
    var consumerKey: String
    var contextID: String
    var profileSlug: String
}
