@testable import Environments
import Foundation
import TestSupport
import Testing

/// The ustar writer behind ``DockerEngine``'s file upload, read back by independent readers:
/// Python's `tarfile` and GNU tar.
@Suite("Tar archives", .enabled(if: TestEnvironment.hasPython))
struct TarArchiveTests {
    static let entries: [TarArchive.Entry] = [
        .init(path: "etc/portal/jupyter/jupyter_server_config.py", contents: Data("c = get_config()\n".utf8), mode: 0o644),
        .init(path: "etc/portal/empty", contents: Data(), mode: 0o600),
        .init(path: "opt/exactly-512", contents: Data(repeating: 0x41, count: 512), mode: 0o755),
        // Over 100 bytes: split into the prefix and name fields.
        .init(path: "srv/" + String(repeating: "d", count: 90) + "/" + String(repeating: "n", count: 60) + ".bin", contents: Data((0..<1000).map { UInt8($0 % 251) }), mode: 0o444),
    ]

    func write(_ data: Data) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tar-\(UUID().uuidString).tar").path
        guard FileManager.default.createFile(atPath: path, contents: data) else { throw MissingComponent("cannot write \(path)") }
        return path
    }

    func run(_ arguments: [String]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }

    @Test func pythonsTarfileReadsEveryFileBackExactly() throws {
        let archive = try TarArchive.ustar(Self.entries, modified: Date(timeIntervalSince1970: 1_700_000_000))
        #expect(archive.count % 512 == 0)
        #expect(archive.suffix(1024) == Data(count: 1024))
        let path = try write(archive)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let listed = try JSONSerialization.jsonObject(with: Data(try PythonTool.run("tar_list.py", [path]).utf8)) as? [[String: Any]]
        let members = try #require(listed)
        #expect(members.count == Self.entries.count)
        for (member, entry) in zip(members, Self.entries) {
            #expect(member["name"] as? String == entry.path)
            #expect(member["type"] as? String == "0")
            #expect(member["mode"] as? Int == Int(entry.mode))
            #expect(member["uid"] as? Int == 0 && member["gid"] as? Int == 0 && member["uname"] as? String == "root")
            #expect(member["size"] as? Int == entry.contents.count)
            #expect(member["mtime"] as? Int == 1_700_000_000)
            #expect((member["data"] as? String).flatMap { Data(base64Encoded: $0) } == entry.contents)
        }
    }

    @Test func gnuTarListsAndExtractsIt() throws {
        let path = try write(try TarArchive.ustar(Self.entries))
        let target = FileManager.default.temporaryDirectory.appendingPathComponent("untar-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        defer {
            try? FileManager.default.removeItem(atPath: path)
            try? FileManager.default.removeItem(atPath: target)
        }
        let (listStatus, listing) = try run(["tar", "--list", "--verbose", "--numeric-owner", "--file", path])
        #expect(listStatus == 0, "\(listing)")
        #expect(listing.contains("-rw-r--r-- 0/0") && listing.contains("-rw------- 0/0") && listing.contains("-rwxr-xr-x 0/0"), "\(listing)")
        let (status, output) = try run(["tar", "--extract", "--warning=all", "--file", path, "--directory", target])
        #expect(status == 0 && output.isEmpty, "\(output)")
        for entry in Self.entries {
            #expect(FileManager.default.contents(atPath: target + "/" + entry.path) == entry.contents)
            let mode = try FileManager.default.attributesOfItem(atPath: target + "/" + entry.path)[.posixPermissions] as? Int
            #expect(mode == Int(entry.mode))
        }
    }

    @Test func pathsUstarCannotHoldAreRefused() throws {
        for path in ["", "/etc/passwd", "a/../b", "./a", "a//b", "a/\u{0}b", String(repeating: "x", count: 101), "p/" + String(repeating: "n", count: 101)] {
            #expect(throws: EngineError.self, "\(path.debugDescription)") { try TarArchive.ustar([.init(path: path, contents: Data(), mode: 0o644)]) }
        }
        #expect(throws: EngineError.self) { try ContainerSpec.File(path: "relative/file", contents: Data()).relativePath() }
        #expect(throws: EngineError.self) { try ContainerSpec.File(path: "/etc/../passwd", contents: Data()).relativePath() }
        #expect(try ContainerSpec.File(path: "/etc/portal/x", contents: Data()).relativePath() == "etc/portal/x")
    }
}
