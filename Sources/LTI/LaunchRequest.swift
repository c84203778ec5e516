/// The parts of an HTTP request that an LTI 1.1 launch is verified from.
public struct LaunchRequest: Sendable {
    /// The HTTP method, normally `POST`.
    public var method: String
    /// The normalised URL the VLE signed (see ``SignatureBaseString/baseURI(scheme:host:port:path:)``).
    public var baseURI: String
    /// All parameters: the URL's query, the `Authorization: OAuth` header (without `realm`) and the
    /// form body, decoded, duplicates kept.
    public var parameters: [Parameter]

    /// Creates a launch request.
    public init(method: String, baseURI: String, parameters: [Parameter]) {
        self.method = method
        self.baseURI = baseURI
        self.parameters = parameters
    }

    /// The first value of `name`, if present.
    public func value(_ name: String) -> String? {
        parameters.first { $0.name == name }?.value
    }

    /// The first value of `name` unless it is absent or empty.
    public func nonEmptyValue(_ name: String) -> String? {
        guard let value = value(name), !value.isEmpty else { return nil }
        return value
    }

    /// Parses the parameters of an `Authorization: OAuth …` header (RFC 5849 §3.5.1), without `realm`.
    /// - Returns: an empty list when the header is not an OAuth header.
    /// - Throws: ``LaunchRefusal`` when the header is malformed or holds a NUL character.
    public static func oauthHeaderParameters(_ header: String) throws(LaunchRefusal) -> [Parameter] {
        let trimmed = header.drop { $0 == " " }
        guard trimmed.count > 6, trimmed.prefix(6).lowercased() == "oauth " else { return [] }
        var result = [Parameter]()
        for item in trimmed.dropFirst(6).split(separator: ",") {
            let item = item.drop { $0 == " " }
            guard let equals = item.firstIndex(of: "=") else {
                throw LaunchRefusal(.malformedRequest, "The OAuth Authorization header is malformed.")
            }
            let name = item[..<equals]
            var value = item[item.index(after: equals)...]
            while value.last == " " { value = value.dropLast() }
            guard value.count >= 2, value.first == "\"", value.last == "\"" else {
                throw LaunchRefusal(.malformedRequest, "The OAuth Authorization header is malformed.")
            }
            guard let decodedName = PercentEncoding.decode(name, plusAsSpace: false),
                let decodedValue = PercentEncoding.decode(value.dropFirst().dropLast(), plusAsSpace: false)
            else {
                throw LaunchRefusal(.malformedRequest, "The OAuth Authorization header has a malformed percent-escape.")
            }
            guard !PercentEncoding.containsNUL(decodedName), !PercentEncoding.containsNUL(decodedValue) else { throw PercentEncoding.nulRefusal }
            if decodedName != "realm" {
                result.append(Parameter(name: decodedName, value: decodedValue))
            }
        }
        return result
    }
}
