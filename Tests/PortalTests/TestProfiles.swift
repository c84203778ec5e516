import Foundation
import TestSupport

/// The profiles the whole-process tests run, and scratch directories holding them.
enum TestProfiles {
    /// `light`: the benchmark server of images/portal-light (nginx and a WebSocket echo), quick to start.
    static func light(cpu: Double = 0.5) -> String {
        """
        slug: light
        display_name: Light
        image: localhost/portal-light:1
        command: ["/usr/local/bin/portal-light"]
        cpu: \(cpu)
        memory: 128MiB
        persistence: disposable
        """
    }

    /// `course-env`: JupyterLab in the portal's image.
    static func jupyter(memory: String) -> String {
        """
        slug: course-env
        display_name: Course environment
        image: \(TestEnvironment.image)
        cpu: 1
        memory: \(memory)
        persistence: disposable
        """
    }

    /// A new scratch directory named after `prefix`, with `profiles/<slug>.yaml` for each profile.
    static func directory(_ prefix: String, profiles: [String: String]) throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory + "/profiles", withIntermediateDirectories: true)
        for (slug, yaml) in profiles { try yaml.write(toFile: directory + "/profiles/\(slug).yaml", atomically: true, encoding: .utf8) }
        return directory
    }
}
