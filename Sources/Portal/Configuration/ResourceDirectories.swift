import Foundation

/// Where the portal finds its `Templates/` and `Migrations/` directories: the configured path, else
/// `$PORTAL_HOME/<name>`, else `<binary>/../share/portal/<name>` (an installed portal), else the
/// current directory, else the source checkout the binary was built from.
struct ResourceDirectories: Sendable {
    var templates: String
    var migrations: String

    init(configuration: PortalConfiguration?) throws {
        templates = try Self.find("Templates", configured: configuration?.templatesDirectory, key: "templates_dir")
        migrations = try Self.find("Migrations", configured: configuration?.migrationsDirectory, key: "migrations_dir")
    }

    static func find(_ name: String, configured: String?, key: String) throws -> String {
        if let configured { return configured }
        var candidates = [String]()
        if let home = ProcessInfo.processInfo.environment["PORTAL_HOME"] { candidates.append("\(home)/\(name)") }
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        candidates.append(executable.appendingPathComponent("../share/portal/\(name)").standardizedFileURL.path)
        candidates.append(FileManager.default.currentDirectoryPath + "/" + name)
        let checkout = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../../\(name)").standardizedFileURL.path
        candidates.append(checkout)
        for candidate in candidates {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate, isDirectory: &isDirectory), isDirectory.boolValue { return candidate }
        }
        throw ResourceError(description: "The \(name) directory was not found (looked in \(candidates.joined(separator: ", "))); set \(key) in the configuration.")
    }
}

struct ResourceError: Error, CustomStringConvertible {
    var description: String
}
