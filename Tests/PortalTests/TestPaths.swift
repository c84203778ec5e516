import Foundation
import TestSupport

enum TestPaths {
    static var migrations: String { TestEnvironment.repositoryRoot.appendingPathComponent("Migrations").path }
    static var templates: String { TestEnvironment.repositoryRoot.appendingPathComponent("Templates").path }
}
