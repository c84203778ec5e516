import Environments
import Foundation

/// Where the portal finds its `Templates/`, `Migrations/` and `Jupyter/` directories: the configured
/// path, else `$PORTAL_HOME/<name>`, else `<binary>/../share/portal/<name>` (an installed portal),
/// else the current directory, else the source checkout the binary was built from
/// (``ResourceLocator``).
struct ResourceDirectories: Sendable {
    var templates: String
    var migrations: String
    /// `jupyter_dir` from the configuration; the directory is looked for only when environments run.
    var configuredJupyter: String?

    init(configuration: PortalConfiguration?) throws {
        templates = try ResourceLocator.find("Templates", configured: configuration?.templatesDirectory, key: "templates_dir")
        migrations = try ResourceLocator.find("Migrations", configured: configuration?.migrationsDirectory, key: "migrations_dir")
        configuredJupyter = configuration?.jupyterDirectory
    }

    /// The Jupyter configuration every environment's server gets.
    func jupyter() throws -> JupyterConfig {
        try JupyterConfig.find(configured: configuredJupyter)
    }
}
