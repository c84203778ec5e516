/// Request bytes for the differential test of the request reader: plausible requests with every
/// part varied the ways smuggling attempts and broken clients vary them — line endings, methods,
/// versions, `Host`, `Content-Length` and `Transfer-Encoding` in their odd forms, folded and
/// malformed field lines, control bytes, chunked bodies right and wrong, and a second request
/// pipelined behind the first. Deterministic for a seed (SplitMix64).
struct RequestGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    private mutating func random() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    private mutating func below(_ bound: Int) -> Int { Int(random() % UInt64(bound)) }

    private mutating func chance(_ percent: Int) -> Bool { below(100) < percent }

    private mutating func pick<T>(_ options: [T]) -> T { options[below(options.count)] }

    /// One case: a request, and sometimes another after it.
    mutating func nextCase() -> [UInt8] {
        var bytes = request()
        if chance(40) { bytes += request() }
        if chance(10) { bytes += Array(pick(["\r\n", "\n", "GET", " ", "\0"]).utf8) }
        return bytes
    }

    private mutating func lineEnd() -> String {
        chance(92) ? "\r\n" : pick(["\n", "\r", "\r\r\n", "\n\r"])
    }

    private mutating func request() -> [UInt8] {
        let method = chance(85) ? pick(["GET", "POST", "PUT", "HEAD", "DELETE", "OPTIONS", "PATCH"]) : pick(["get", "PROPFIND", "G ET", "GET\t", "", "CONNECT", "PRI"])
        let target = chance(85) ? pick(["/", "/user/a/b/lab", "/user/a/b/api/contents?x=1&y=%20", "/lti/launch"]) : pick([
            "*", "http://evil.example/user/a/b/", "/a b", "/%00", "/\u{1}", "", "/" + String(repeating: "a", count: 9000), "//user/a/b/",
        ])
        let version = chance(90) ? pick(["HTTP/1.1", "HTTP/1.0"]) : pick(["HTTP/1.2", "HTTP/2.0", "http/1.1", "HTTP/1.1 ", "HTTP/1", "HTTP/1.10", ""])
        var head = "\(method) \(target) \(version)" + lineEnd()
        var fields = [String]()
        switch below(10) {
        case 0: break
        case 1: fields += ["Host: a", "Host: b"]
        case 2: fields.append(pick(["Host:", "Host : x", " Host: x", "host: x"]))
        default: fields.append("Host: portal.example.ac.uk")
        }
        var body = [UInt8]()
        switch below(8) {
        case 0, 1, 2:
            break
        case 3, 4:
            let count = below(40)
            let lengths = chance(80) ? ["\(count)"] : [pick(["+\(count)", " \(count) ", "0x\(count)", "-1", "\(count),\(count)", "\(count)\t", "99999999999999999999", ""])]
            for value in lengths { fields.append("Content-Length: \(value)") }
            if chance(15) { fields.append("Content-Length: \(chance(50) ? count : count + 1)") }
            body = Array(String(repeating: "b", count: count + (chance(10) ? below(5) : 0)).utf8)
        default:
            let coding = chance(75) ? "chunked" : pick(["Chunked", "gzip, chunked", "chunked, gzip", "chunked ", " chunked", "xchunked", "identity", "chunked;q=1", ""])
            fields.append((chance(90) ? "Transfer-Encoding: " : pick(["Transfer-Encoding : ", "Transfer-Encoding:\t", "transfer-encoding:"])) + coding)
            if chance(10) { fields.append("Transfer-Encoding: chunked") }
            if chance(15) { fields.append("Content-Length: \(below(30))") }
            body = chunks()
        }
        for _ in 0..<below(4) {
            fields.append(chance(85) ? pick(["Accept: */*", "Cookie: portal_session=abc; theme=dark", "Connection: keep-alive", "Connection: close", "X-A: b c"]) : pick([
                " folded", "\tfolded", "NoColon", ": empty name", "Bad Name: x", "X: a\u{7F}b", "X: a\u{0}b", "X-Long: " + String(repeating: "x", count: 40_000),
                "Connection: Upgrade", "Upgrade: websocket", "Expect: 100-continue",
            ]))
        }
        if chance(3) { fields += Array(repeating: "X-Many: 1", count: 150) }
        fields.shuffle(using: &self)
        for field in fields { head += field + lineEnd() }
        head += lineEnd()
        return Array(head.utf8) + body
    }

    private mutating func chunks() -> [UInt8] {
        var body = ""
        for _ in 0..<below(3) {
            let data = String(repeating: "c", count: 1 + below(20))
            let size = String(data.utf8.count, radix: 16)
            body += (chance(90) ? size : pick([size.uppercased(), " \(size)", "\(size) ", "0x\(size)", "-\(size)", "\(size);ext=1", "g"])) + lineEnd()
            body += data + (chance(90) ? "\r\n" : pick(["", "\n", "x\r\n"]))
        }
        body += chance(90) ? "0\r\n" : pick(["0;ext\r\n", "00\r\n", "0\n", "0"])
        if chance(15) { body += "X-Trailer: 1\r\n" }
        body += chance(90) ? "\r\n" : pick(["", "\n"])
        return Array(body.utf8)
    }

    /// Requests that smuggling write-ups use, and the security review's.
    static let handPicked = [
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n0\r\n\r\nG",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc",
        "GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n",
        "GET / HTTP/1.1\nHost: x\n\n",
        "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\nhello\r\n0\r\nT: 1\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX\r\n0\r\n\r\n",
        "GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "get / HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /\r\n\r\n",
    ]
}

extension RequestGenerator: RandomNumberGenerator {
    mutating func next() -> UInt64 { random() }
}
