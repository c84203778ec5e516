import LTI
import Testing

@Suite("OAuth 1.0 signature base string (RFC 5849 §3.4.1)")
struct SignatureBaseStringTests {
    /// The worked example of RFC 5849 §3.4.1.1 and §3.4.1.3.2.
    @Test func rfc5849Example() throws {
        let query = try PercentEncoding.parseForm("b5=%3D%253D&a3=a&c%40=&a2=r%20b")
        let header = try LaunchRequest.oauthHeaderParameters(
            #"OAuth realm="Example", oauth_consumer_key="9djdj82h48djs9d2", oauth_token="kkk9d7dh3k39sjv7", oauth_signature_method="HMAC-SHA1", oauth_timestamp="137131201", oauth_nonce="7d8f3e4a", oauth_signature="bYT5CMsGcbgUdFHObYMEfcx6bsw%3D""#
        )
        let body = try PercentEncoding.parseForm("c2&a3=2+q")
        let parameters = query + header + body
        #expect(
            SignatureBaseString.normalise(parameters)
                == "a2=r%20b&a3=2%20q&a3=a&b5=%3D%253D&c%40=&c2=&oauth_consumer_key=9djdj82h48djs9d2&oauth_nonce=7d8f3e4a&oauth_signature_method=HMAC-SHA1&oauth_timestamp=137131201&oauth_token=kkk9d7dh3k39sjv7"
        )
        let base = SignatureBaseString.make(method: "post", baseURI: SignatureBaseString.baseURI(scheme: "HTTP", host: "Example.com", port: 80, path: "/request"), parameters: parameters)
        #expect(
            base
                == "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q%26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk9d7dh3k39sjv7"
        )
        #expect(!header.contains { $0.name == "realm" })
    }

    @Test(arguments: [
        ("http", "Portal.Example.AC.UK", 80, "/lti/launch", "http://portal.example.ac.uk/lti/launch"),
        ("HTTPS", "portal.example", 443, "/lti/launch", "https://portal.example/lti/launch"),
        ("https", "portal.example", 8443, "/lti/launch", "https://portal.example:8443/lti/launch"),
        ("http", "127.0.0.1", 8080, "", "http://127.0.0.1:8080/"),
        ("http", "portal.example", 443, "/x", "http://portal.example:443/x"),
    ])
    func baseURINormalisation(scheme: String, host: String, port: Int, path: String, expected: String) {
        #expect(SignatureBaseString.baseURI(scheme: scheme, host: host, port: port, path: path) == expected)
    }

    @Test func percentEncodingKeepsOnlyUnreserved() {
        #expect(PercentEncoding.encode("AZaz09-._~") == "AZaz09-._~")
        #expect(PercentEncoding.encode("a b+c/é*!") == "a%20b%2Bc%2F%C3%A9%2A%21")
        #expect(PercentEncoding.encode("☃") == "%E2%98%83")
    }

    @Test func formParsingKeepsDuplicatesAndEmptyValues() throws {
        let pairs = try PercentEncoding.parseForm("a=1&a=2&b=&c&d=x+y%2Bz")
        #expect(pairs.map(\.name) == ["a", "a", "b", "c", "d"])
        #expect(pairs.map(\.value) == ["1", "2", "", "", "x y+z"])
        #expect(throws: LaunchRefusal.self) { try PercentEncoding.parseForm("a=%zz") }
        #expect(throws: LaunchRefusal.self) { try PercentEncoding.parseForm("a=%C3") }
    }

    @Test func hmacSignatureMatchesKnownValue() {
        // The key is enc(secret) + "&"; Python: base64(hmac.new(b"key&", message, sha1).digest()).
        let signature = OAuth1Signature.sign(baseString: "The quick brown fox jumps over the lazy dog", consumerSecret: "key")
        #expect(signature == "zjRQZUOj4J+rptg+OBGxGKXW68g=")
        #expect(OAuth1Signature.isValid(signature: signature, baseString: "The quick brown fox jumps over the lazy dog", consumerSecret: "key"))
        #expect(!OAuth1Signature.isValid(signature: signature, baseString: "The quick brown fox jumps over the lazy cat", consumerSecret: "key"))
        #expect(!OAuth1Signature.isValid(signature: "not base64!", baseString: "x", consumerSecret: "key"))
    }
}
