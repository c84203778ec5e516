import Environments
import Foundation
import Testing

@Suite("Course materials")
struct CourseMaterialsTests {
    @Test func aGitRepositoryIsClonedOncePerProfileVersion() throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("materials-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let repository = scratch + "/repo"
        try FileManager.default.createDirectory(atPath: repository + "/week1", withIntermediateDirectories: true)
        try "print('hello')\n".write(toFile: repository + "/week1/hello.py", atomically: true, encoding: .utf8)
        for command in [["init", "-q", "-b", "main"], ["add", "."], ["-c", "user.email=t@example", "-c", "user.name=T", "commit", "-q", "-m", "materials"]] {
            #expect(try Subprocess.run(["/usr/bin/git", "-C", repository] + command).status == 0)
        }
        let materials = CourseMaterials(cacheDirectory: scratch + "/cache")
        let profile = Profile(slug: "course", displayName: "Course", image: "i", materials: .git(url: repository, ref: "main"))
        let directory = try #require(try materials.hostDirectory(for: profile, version: 3))
        #expect(directory == scratch + "/cache/course-v3")
        #expect(FileManager.default.fileExists(atPath: directory + "/week1/hello.py"))
        // Cached: a second start does not clone again.
        try "local change".write(toFile: directory + "/marker", atomically: true, encoding: .utf8)
        #expect(try materials.hostDirectory(for: profile, version: 3) == directory)
        #expect(FileManager.default.fileExists(atPath: directory + "/marker"))

        let broken = Profile(slug: "broken", displayName: "Broken", image: "i", materials: .git(url: scratch + "/nothing-here", ref: nil))
        #expect(throws: EngineError.self) { try materials.hostDirectory(for: broken, version: 1) }
        let missing = Profile(slug: "missing", displayName: "Missing", image: "i", materials: .directory(scratch + "/absent"))
        #expect(throws: EngineError.self) { try materials.hostDirectory(for: missing, version: 1) }
    }

    @Test func seedingCopiesWithoutOverwritingAndOnlyOnce() {
        let command = CourseMaterials.seeding(["jupyter", "server"])
        #expect(command.prefix(2) == ["/bin/sh", "-c"])
        #expect(command[2].contains("cp -rn /opt/portal/materials/."))
        #expect(command[2].contains(".portal-materials-copied"))
        #expect(Array(command.suffix(2)) == ["jupyter", "server"])
    }
}
