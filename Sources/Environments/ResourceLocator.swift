import Foundation

/// Finds the directories the portal ships beside its binary (`Templates/`, `Migrations/`,
/// `Jupyter/`): the configured path, else `$PORTAL_HOME/<name>`, else `<binary>/../share/portal/<name>`
/// (an installed portal), else the current directory, else the source checkout the binary was built
/// from.
public enum ResourceLocator {
    /// The directory called `name`.
    /// - Parameters:
    ///   - configured: the configuration's path for it, used as it is when given.
    ///   - key: the configuration key that sets it, for the error message.
    /// - Throws: ``ResourceError`` naming every place looked in.
    public static func find(_ name: String, configured: String?, key: String) throws(ResourceError) -> String {
        if let configured { return configured }
        var candidates = [String]()
        if let home = ProcessInfo.processInfo.environment["PORTAL_HOME"] { candidates.append("\(home)/\(name)") }
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        candidates.append(executable.appendingPathComponent("../share/portal/\(name)").standardizedFileURL.path)
        candidates.append(FileManager.default.currentDirectoryPath + "/" + name)
        // This file is Sources/Environments/ResourceLocator.swift in the checkout.
        let checkout = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../\(name)").standardizedFileURL.path
        candidates.append(checkout)
        for candidate in candidates {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate, isDirectory: &isDirectory), isDirectory.boolValue { return candidate }
        }
        throw ResourceError(description: "The \(name) directory was not found (looked in \(candidates.joined(separator: ", "))); set \(key) in the configuration.")
    }
}

/// A directory or file the portal ships with is missing or unreadable.
public struct ResourceError: Error, CustomStringConvertible {
    public var description: String
    public init(description: String) { self.description = description }
}
