import Foundation
import NIOCore
import NIOEmbedded
import NIOHTTP1
@testable import Portal
import Testing

/// The connection's byte-level request reader (``RawRequest/read(_:limits:)`` with the framing the
/// connection follows) against NIO's HTTP parser, which the router's requests go through: for
/// generated and hostile request heads, bodies and pipelined pairs, every request the reader
/// accepts must be read by NIO identically — the same method, target and fields, the same body
/// bytes, the next request at the same byte — or the reader must refuse it (it is then answered
/// `400`/`414`/`431` and the connection closed). A difference would let a request be framed one way
/// by the portal and another by what reads it next: request smuggling.
///
/// The suite runs a bounded number of cases with a fixed seed and a fresh one; for longer runs:
/// `scripts/fuzz-request-reader.sh` (`PORTAL_DIFFERENTIAL_CASES`, `PORTAL_DIFFERENTIAL_SEED`).
@Suite("Request reader against NIO's parser")
struct RequestReaderDifferentialTests {
    /// What one reader made of the bytes: the requests it read, in order, and whether it stopped
    /// at something it refused.
    struct Reading: Equatable, CustomStringConvertible {
        struct Request: Equatable {
            var method: String
            var target: String
            var fields: [String]
            var body: [UInt8]
            /// Whether the connection goes on after it (the portal's reading; not compared).
            var keepAlive = true

            static func == (a: Request, b: Request) -> Bool {
                a.method == b.method && a.target == b.target && a.fields == b.fields && a.body == b.body
            }
        }

        var requests: [Request] = []
        var refused = false

        var description: String {
            requests.map { "\($0.method) \($0.target) \($0.fields) body \($0.body.count)" }.joined(separator: " | ") + (refused ? " | refused" : "")
        }
    }

    /// The portal's reading: heads by ``RawRequest``, bodies by their framing (chunked ones
    /// decoded, as NIO hands them on), until the bytes end or something is refused.
    static func portal(_ bytes: [UInt8]) -> Reading {
        var reading = Reading()
        var offset = 0
        while offset < bytes.count {
            let rest = Array(bytes[offset...])
            let result = rest.withUnsafeBytes { raw -> (Reading.Request, Int)?? in
                guard let read = RawRequest.read(raw, limits: .standard) else { return .some(nil) }  // incomplete
                guard case .success(let (head, request)) = read else { return nil }
                func text(_ range: Range<Int>) -> String { String(decoding: UnsafeRawBufferPointer(rebasing: raw[range]), as: UTF8.self) }
                let fields = head.fields.map { text($0.name).lowercased() + ": " + text($0.value) }
                var body = [UInt8]()
                var length = head.length
                switch request.framed.framing {
                case .none, .untilClose:
                    break
                case .length(let count):
                    guard raw.count - length >= count else { return .some(nil) }
                    body = Array(raw[length..<(length + count)])
                    length += count
                case .chunked:
                    var scanner = ChunkedScanner()
                    switch scanner.scan(UnsafeRawBufferPointer(rebasing: raw[length...])) {
                    case .more: return .some(nil)
                    case .invalid: return nil
                    case .end(let count):
                        guard let decoded = decodeChunks(Array(raw[length..<(length + count)])) else { return nil }
                        body = decoded
                        length += count
                    }
                }
                return (Reading.Request(method: text(request.method), target: text(request.target), fields: fields, body: body, keepAlive: request.isKeepAlive && !request.framed.upgrade), length)
            }
            switch result {
            case .none:
                reading.refused = true
                return reading
            case .some(.none):
                return reading  // waits for more bytes
            case .some(.some(let (request, length))):
                reading.requests.append(request)
                offset += length
                // The connection ends with its response, or an upgrade hands it to NIO: nothing after it is read here.
                if !request.keepAlive { return reading }
            }
        }
        return reading
    }

    /// The data of a chunked body the scanner found whole.
    static func decodeChunks(_ body: [UInt8]) -> [UInt8]? {
        var data = [UInt8]()
        var index = 0
        while index < body.count {
            guard let lineEnd = body[index...].firstIndex(of: UInt8(ascii: "\r")) else { return nil }
            let sizeText = String(decoding: body[index..<lineEnd], as: UTF8.self).prefix { $0.isHexDigit }
            guard let size = Int(sizeText, radix: 16) else { return nil }
            index = lineEnd + 2
            if size == 0 { return data }
            data += body[index..<(index + size)]
            index += size + 2
        }
        return nil
    }

    /// NIO's reading of the same bytes, as the router would get them.
    static func nio(_ bytes: [UInt8]) -> Reading {
        var reading = Reading()
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
        defer { _ = try? channel.finish() }
        do {
            try channel.writeInbound(ByteBuffer(bytes: bytes))
        } catch {
            reading.refused = true
        }
        var current: Reading.Request?
        while let part = try? channel.readInbound(as: HTTPServerRequestPart.self) {
            switch part {
            case .head(let head):
                var target = head.uri
                if target.isEmpty { target = "/" }
                current = Reading.Request(
                    // NIO keeps a value's trailing white space, which the portal's reader trims (RFC 9110 §5.5).
                    method: head.method.rawValue, target: target, fields: head.headers.map { $0.name.lowercased() + ": " + $0.value.trimmingWhitespace() }, body: []
                )
            case .body(var buffer):
                current?.body += buffer.readBytes(length: buffer.readableBytes) ?? []
            case .end:
                if let current { reading.requests.append(current) }
                current = nil
            }
        }
        return reading
    }

    /// Whether NIO agrees with every request the portal read (it may read on where the portal refused).
    static func agree(portal: Reading, nio: Reading) -> Bool {
        guard nio.requests.count >= portal.requests.count else { return false }
        return Array(nio.requests.prefix(portal.requests.count)) == portal.requests
    }

    @Test func handPickedHostileRequestsAreReadAlikeOrRefused() {
        for request in RequestGenerator.handPicked {
            let bytes = Array(request.utf8)
            let portal = Self.portal(bytes)
            let nio = Self.nio(bytes)
            #expect(Self.agree(portal: portal, nio: nio), "\(request.debugDescription)\n  portal: \(portal)\n  NIO:    \(nio)")
        }
    }

    @Test func generatedRequestsAreReadAlikeOrRefused() {
        let environment = ProcessInfo.processInfo.environment
        let cases = environment["PORTAL_DIFFERENTIAL_CASES"].flatMap(Int.init) ?? 4000
        let seeds = environment["PORTAL_DIFFERENTIAL_SEED"].flatMap(UInt64.init).map { [$0] } ?? [20_261_204, UInt64.random(in: 1...UInt64.max)]
        for seed in seeds {
            var generator = RequestGenerator(seed: seed)
            var disagreements = 0
            for number in 0..<cases {
                let bytes = generator.nextCase()
                let portal = Self.portal(bytes)
                let nio = Self.nio(bytes)
                guard !Self.agree(portal: portal, nio: nio) else { continue }
                disagreements += 1
                Issue.record("seed \(seed), case \(number): \(String(decoding: bytes.prefix(600), as: UTF8.self).debugDescription)\n  portal: \(portal)\n  NIO:    \(nio)")
                if disagreements >= 5 { break }
            }
        }
    }
}
