import Environments
import Foundation
import TestSupport
import Testing

@Suite("Profiles")
struct ProfileTests {
    func parse(_ yaml: String) throws -> [Profile] {
        try ProfileLoader.parse(YAMLValue.parse(yaml, file: "profile.yaml"))
    }

    func error(_ yaml: String) -> ConfigurationError? {
        do {
            _ = try parse(yaml)
            return nil
        } catch let error as ConfigurationError {
            return error
        } catch {
            return nil
        }
    }

    @Test func theExamplesLoad() throws {
        let profiles = try ProfileLoader.load(path: TestEnvironment.repositoryRoot.appendingPathComponent("examples/profiles").path)
        #expect(profiles.map(\.slug) == ["demo", "tm351"])
        let tm351 = try #require(profiles.last)
        #expect(tm351.memoryBytes == 2 << 30)
        #expect(tm351.cpu == 1)
        #expect(tm351.idleTimeoutSeconds == 3600)
        #expect(tm351.maxLifetimeSeconds == 12 * 3600)
        #expect(tm351.materials == .directory("/srv/courses/tm351/notebooks"))
        #expect(tm351.apps == [Profile.App(name: "OpenRefine", path: "/openrefine/")])
        #expect(tm351.match?.matches(contextID: "x", label: "TM351-25J") == true)
        #expect(profiles[0].environment == ["COURSE_CODE": "DEMO-101"])
    }

    @Test func sizesDurationsAndDefaults() throws {
        let profile = try #require(try parse("slug: a\ndisplay_name: A\nimage: img\nmemory: 1.5Gi\ncpu: 0.25\ngpu: 1\npersistence: disposable\n").first)
        #expect(profile.memoryBytes == 1_610_612_736)
        #expect(profile.cpu == 0.25)
        #expect(profile.gpus == 1)
        #expect(profile.persistence == .disposable)
        #expect(profile.idleTimeoutSeconds == 3600)
        #expect(try parse("slug: b\ndisplay_name: B\nimage: i\nmemory: 512M\n").first?.memoryBytes == 512_000_000)
        let list = try parse("- {slug: a, display_name: A, image: i}\n- {slug: b, display_name: B, command: [jupyter, server]}\n")
        #expect(list.map(\.slug) == ["a", "b"])
        #expect(list[1].command == ["jupyter", "server"])
    }

    @Test func validationNamesTheKeyAndWhy() {
        #expect(error("slug: a\ndisplay_name: A\n")?.reason.contains("needs image") == true)
        #expect(error("slug: A B\ndisplay_name: A\nimage: i\n")?.key == "slug")
        #expect(error("slug: a\ndisplay_name: A\nimage: i\nmemory: lots\n")?.key == "memory")
        #expect(error("slug: a\ndisplay_name: A\nimage: i\nmemory: 1MiB\n")?.reason.contains("at least 64MiB") == true)
        #expect(error("slug: a\ndisplay_name: A\nimage: i\ncpu: 0\n")?.key == "cpu")
        #expect(error("slug: a\ndisplay_name: A\nimage: i\ngpu: 99\n")?.key == "gpu")
        #expect(error("slug: a\ndisplay_name: A\nimage: i\nidle_timeout: 10s\n")?.key == "idle_timeout")
        #expect(error("slug: a\ndisplay_name: A\nimage: i\nidle_timeout: 2h\nmax_lifetime: 1h\n")?.reason.contains("max_lifetime") == true)
        #expect(error("slug: a\ndisplay_name: A\nimage: i\npersistence: forever\n")?.key == "persistence")
        #expect(error("slug: a\ndisplay_name: A\nimage: i\nmaterials: {directory: relative/path}\n")?.key == "materials.directory")
        #expect(error("slug: a\ndisplay_name: A\nimage: i\nmaterials: {}\n")?.reason.contains("exactly one") == true)
        #expect(error("slug: a\ndisplay_name: A\nimage: i\nenvironment: {JUPYTER_TOKEN: x}\n")?.reason.contains("set by the portal") == true)
        #expect(error("slug: a\ndisplay_name: A\nimage: i\napps: [{name: x, path: ../etc}]\n")?.key == "apps[0].path")
        let unknown = error("slug: a\ndisplay_name: A\nimage: i\nmemroy: 1G\n")
        #expect(unknown?.key == "memroy")
        #expect(unknown?.line == 4)
    }

    @Test func aDirectoryMustNotDefineAProfileTwice() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("profiles-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "slug: a\ndisplay_name: A\nimage: i\n".write(toFile: directory + "/one.yaml", atomically: true, encoding: .utf8)
        try "slug: a\ndisplay_name: Again\nimage: i\n".write(toFile: directory + "/two.yml", atomically: true, encoding: .utf8)
        #expect(throws: ConfigurationError.self) { try ProfileLoader.load(path: directory) }
    }

    @Test func courseToProfileResolution() {
        let tm351 = Profile(slug: "tm351", displayName: "TM351", image: "i", match: .init(contextLabels: ["TM351-*"]))
        let tm112 = Profile(slug: "tm112", displayName: "TM112", image: "i", match: .init(contextIDs: ["course-112"]))
        let basic = Profile(slug: "basic", displayName: "Basic", image: "i")
        let catalog = ProfileCatalog(
            profiles: [(tm351, 3), (tm112, 1), (basic, 2)],
            mappings: [.init(consumerKey: "moodle", contextID: "c1"): "tm112", .init(consumerKey: "", contextID: "c2"): "basic"],
            defaultProfile: "basic"
        )
        #expect(catalog.resolve(requested: "tm351", consumerKey: "moodle", contextID: "c1", contextLabel: nil) == .profile(tm351, version: 3, source: "link"))
        #expect(catalog.resolve(requested: nil, consumerKey: "moodle", contextID: "c1", contextLabel: "TM351-25J") == .profile(tm112, version: 1, source: "course mapping"))
        #expect(catalog.resolve(requested: nil, consumerKey: "canvas", contextID: "c2", contextLabel: nil) == .profile(basic, version: 2, source: "course mapping"))
        #expect(catalog.resolve(requested: nil, consumerKey: "canvas", contextID: "c9", contextLabel: "TM351-25J") == .profile(tm351, version: 3, source: "match rules"))
        #expect(catalog.resolve(requested: nil, consumerKey: "canvas", contextID: "course-112", contextLabel: nil) == .profile(tm112, version: 1, source: "match rules"))
        #expect(catalog.resolve(requested: nil, consumerKey: "canvas", contextID: "other", contextLabel: "M269") == .profile(basic, version: 2, source: "default"))
        #expect(catalog.resolve(requested: "gpu-large", consumerKey: "moodle", contextID: "c1", contextLabel: nil) == .unknown(slug: "gpu-large", source: "link"))
        #expect(ProfileCatalog(profiles: [(tm351, 1)]).resolve(requested: nil, consumerKey: "x", contextID: "y", contextLabel: "M269") == .none)
    }

    @Test func stateMachine() {
        #expect(EnvironmentState.requested.canMove(to: .starting))
        #expect(EnvironmentState.starting.canMove(to: .ready))
        #expect(EnvironmentState.ready.canMove(to: .stopping))
        #expect(EnvironmentState.stopping.canMove(to: .stopped))
        #expect(EnvironmentState.starting.canMove(to: .failed))
        #expect(!EnvironmentState.stopped.canMove(to: .ready))
        #expect(!EnvironmentState.failed.canMove(to: .starting))
        #expect(!EnvironmentState.ready.canMove(to: .starting))
        #expect(EnvironmentState.allCases.filter(\.isLive) == [.requested, .starting, .ready, .stopping])
    }
}
