import Environments
import Foundation
import TestSupport

enum TestPaths {
    static var migrations: String { TestEnvironment.repositoryRoot.appendingPathComponent("Migrations").path }
    static var templates: String { TestEnvironment.repositoryRoot.appendingPathComponent("Templates").path }
    static var jupyter: String { TestEnvironment.repositoryRoot.appendingPathComponent(JupyterConfig.directoryName).path }

    /// The portal's Jupyter configuration from the checkout, as every lifecycle under test puts it into environments.
    static func jupyterConfig() throws -> JupyterConfig { try JupyterConfig(directory: jupyter) }
}
