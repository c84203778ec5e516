import Foundation

/// The portal's Jupyter configuration, put into every environment at ``JupyterCommand/configPath``
/// before its server starts: the files of the `Jupyter/` directory (in the repository, or
/// `share/portal/Jupyter` beside an installed binary; see ``ResourceLocator``), above all
/// `jupyter_server_config.py` with the identity provider that authenticates the portal by its secret
/// header. Read once when the portal starts.
public struct JupyterConfig: Sendable, Equatable {
    /// The directory's name in the repository and in an installation.
    public static let directoryName = "Jupyter"
    /// The file that must be there.
    public static let serverConfig = "jupyter_server_config.py"

    /// The files, at their paths inside the environment.
    public let files: [ContainerSpec.File]

    /// Reads every `*.py` and `*.json` file of `directory` (not hidden, not in subdirectories).
    /// - Throws: ``ResourceError`` when the directory cannot be read or has no ``serverConfig``.
    public init(directory: String) throws(ResourceError) {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw ResourceError(description: "The Jupyter configuration directory \(directory) cannot be read: \(error.localizedDescription)")
        }
        var files = [ContainerSpec.File]()
        for name in names.sorted() where !name.hasPrefix(".") && (name.hasSuffix(".py") || name.hasSuffix(".json")) {
            let path = directory + "/" + name
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            guard let contents = FileManager.default.contents(atPath: path) else {
                throw ResourceError(description: "The Jupyter configuration file \(path) cannot be read.")
            }
            files.append(ContainerSpec.File(path: JupyterCommand.configPath + "/" + name, contents: contents, mode: 0o644))
        }
        guard files.contains(where: { $0.path.hasSuffix("/" + Self.serverConfig) }) else {
            throw ResourceError(description: "The Jupyter configuration directory \(directory) has no \(Self.serverConfig); every environment's server needs it.")
        }
        self.files = files
    }

    /// The configuration from the `Jupyter/` directory ``ResourceLocator`` finds (`configured` first).
    public static func find(configured: String?) throws(ResourceError) -> JupyterConfig {
        try JupyterConfig(directory: try ResourceLocator.find(directoryName, configured: configured, key: "jupyter_dir"))
    }
}
