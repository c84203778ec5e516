import Foundation

/// A POSIX ustar archive (IEEE 1003.1-1988) of regular files, the format the Docker Engine API's
/// `PUT /containers/{id}/archive` extracts. Built in memory: the files the portal puts into
/// containers are small. Entries hold only files (no directory entries), so extracting at `/` never
/// changes a directory that exists; the engine creates missing ones (root, 0755).
enum TarArchive {
    struct Entry: Equatable {
        /// A relative path (`etc/portal/jupyter/jupyter_server_config.py`).
        var path: String
        var contents: Data
        var mode: UInt16
    }

    static let blockSize = 512

    /// The archive of `entries`, owned by root, modified at `modified`.
    /// - Throws: ``EngineError`` for a path ustar cannot hold (empty, `.`/`..` components, a NUL,
    ///   a name over 100 bytes that no `/` splits into 155 + 100) or a file of 8 GiB or more.
    static func ustar(_ entries: [Entry], modified: Date = Date()) throws -> Data {
        var archive = Data()
        archive.reserveCapacity(entries.reduce(2 * blockSize) { $0 + blockSize + padded($1.contents.count) })
        let mtime = max(0, Int(modified.timeIntervalSince1970))
        for entry in entries {
            archive.append(contentsOf: try header(entry, mtime: mtime))
            archive.append(entry.contents)
            archive.append(Data(count: padded(entry.contents.count) - entry.contents.count))
        }
        archive.append(Data(count: 2 * blockSize))  // the end-of-archive marker
        return archive
    }

    static func padded(_ count: Int) -> Int { (count + blockSize - 1) / blockSize * blockSize }

    /// The 512-byte header of one regular file.
    static func header(_ entry: Entry, mtime: Int) throws -> [UInt8] {
        let (prefix, name) = try split(entry.path)
        guard entry.contents.count < 1 << 33 else {
            throw EngineError(.failed, "The file \(entry.path) is too large to put into a container (\(entry.contents.count) bytes; ustar holds less than 8 GiB).")
        }
        var block = [UInt8](repeating: 0, count: blockSize)
        func put(_ bytes: some Sequence<UInt8>, at offset: Int) {
            for (index, byte) in bytes.enumerated() { block[offset + index] = byte }
        }
        func octal(_ value: Int, at offset: Int, width: Int) {
            let digits = String(value, radix: 8)
            put((String(repeating: "0", count: width - 1 - digits.count) + digits).utf8, at: offset)  // NUL-terminated by the zeroed block
        }
        put(name, at: 0)
        octal(Int(entry.mode & 0o7777), at: 100, width: 8)
        octal(0, at: 108, width: 8)  // uid
        octal(0, at: 116, width: 8)  // gid
        octal(entry.contents.count, at: 124, width: 12)
        octal(mtime, at: 136, width: 12)
        block[156] = UInt8(ascii: "0")  // a regular file
        put("ustar\0".utf8, at: 257)
        put("00".utf8, at: 263)
        put("root".utf8, at: 265)
        put("root".utf8, at: 297)
        put(prefix, at: 345)
        // The checksum: the sum of the header's bytes with its own field read as spaces.
        put("        ".utf8, at: 148)
        let sum = block.reduce(0) { $0 + Int($1) }
        let digits = String(sum, radix: 8)
        put((String(repeating: "0", count: 6 - digits.count) + digits).utf8, at: 148)
        block[154] = 0
        block[155] = UInt8(ascii: " ")
        return block
    }

    /// The ustar prefix and name fields of `path`.
    static func split(_ path: String) throws -> (prefix: [UInt8], name: [UInt8]) {
        let components = path.split(separator: "/", omittingEmptySubsequences: false)
        guard !path.isEmpty, !path.hasPrefix("/"), !path.utf8.contains(0), components.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." }) else {
            throw EngineError(.failed, "The path \(path.debugDescription) cannot be put into a container: it must be relative, without empty, . or .. parts.")
        }
        let bytes = Array(path.utf8)
        if bytes.count <= 100 { return ([], bytes) }
        // The longest prefix that fits, cut at a slash, leaving a name that fits.
        for cut in stride(from: min(155, bytes.count - 2), through: 1, by: -1) where bytes[cut] == UInt8(ascii: "/") {
            let name = Array(bytes[(cut + 1)...])
            if name.count <= 100 { return (Array(bytes[..<cut]), name) }
            break
        }
        throw EngineError(.failed, "The path \(path) is too long to put into a container (ustar holds 155 + 100 bytes split at a slash).")
    }
}
