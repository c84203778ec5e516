import Foundation
import Yams

/// A configuration or profile file that could not be used: which file, which key, where, and why.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    /// The file the problem is in.
    public var file: String
    /// The dotted key path, e.g. `lti.consumers[0].secret`; empty for the whole file.
    public var key: String
    /// The 1-based line, when known.
    public var line: Int?
    /// What is wrong and what would be right.
    public var reason: String

    /// Creates an error.
    public init(file: String, key: String, line: Int? = nil, reason: String) {
        self.file = file
        self.key = key
        self.line = line
        self.reason = reason
    }

    public var description: String {
        let location = line.map { "\(file):\($0)" } ?? file
        return key.isEmpty ? "\(location): \(reason)" : "\(location): \(key): \(reason)"
    }
}

/// A node of a YAML document together with its file and key path, so that every value read from it
/// can be validated with an error that names the file, the key and the reason.
public struct YAMLValue {
    /// The file the node came from.
    public let file: String
    /// The dotted key path of this node.
    public let path: String
    let node: Node

    /// Parses `text` (the contents of `file`).
    /// - Throws: ``ConfigurationError`` when the text is not YAML or is empty.
    public static func parse(_ text: String, file: String) throws(ConfigurationError) -> YAMLValue {
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch {
            throw ConfigurationError(file: file, key: "", reason: "not valid YAML: \(error)")
        }
        guard let node else { throw ConfigurationError(file: file, key: "", reason: "the file is empty") }
        return YAMLValue(file: file, path: "", node: node)
    }

    /// Reads and parses the file at `path`.
    public static func load(path: String) throws(ConfigurationError) -> YAMLValue {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigurationError(file: path, key: "", reason: "cannot read the file: \(error.localizedDescription)")
        }
        return try parse(text, file: path)
    }

    /// An error about this node.
    public func error(_ reason: String) -> ConfigurationError {
        ConfigurationError(file: file, key: path, line: node.mark.map { $0.line }, reason: reason)
    }

    /// This node as a mapping whose keys must all be in `allowed`.
    public func mapping(allowing allowed: Set<String>) throws(ConfigurationError) -> YAMLMapping {
        guard case .mapping(let mapping) = node else { throw error("expected a mapping of keys to values") }
        var values = [String: YAMLValue]()
        for (keyNode, valueNode) in mapping {
            guard let key = keyNode.string else { throw error("keys must be strings") }
            let child = YAMLValue(file: file, path: path.isEmpty ? key : "\(path).\(key)", node: valueNode)
            guard allowed.contains(key) else {
                throw child.error("unknown key; expected one of: \(allowed.sorted().joined(separator: ", "))")
            }
            guard values.updateValue(child, forKey: key) == nil else { throw child.error("the key appears twice") }
        }
        return YAMLMapping(value: self, values: values)
    }

    /// This node as a list.
    public func sequence() throws(ConfigurationError) -> [YAMLValue] {
        guard case .sequence(let sequence) = node else { throw error("expected a list") }
        return sequence.enumerated().map { YAMLValue(file: file, path: "\(path)[\($0.offset)]", node: $0.element) }
    }

    /// Whether the node is YAML null (`~`, `null` or nothing).
    public var isNull: Bool { node.null != nil }

    /// This node as a non-empty string.
    public func string() throws(ConfigurationError) -> String {
        guard case .scalar(let scalar) = node else { throw error("expected a text value") }
        guard !scalar.string.isEmpty else { throw error("must not be empty") }
        return scalar.string
    }

    /// This node as an integer within `range`.
    public func int(in range: ClosedRange<Int> = Int.min...Int.max) throws(ConfigurationError) -> Int {
        guard let value = node.int else { throw error("expected a whole number") }
        guard range.contains(value) else { throw error("must be between \(range.lowerBound) and \(range.upperBound)") }
        return value
    }

    /// This node as a number (integer or decimal).
    public func double() throws(ConfigurationError) -> Double {
        guard case .scalar(let scalar) = node, let value = Double(scalar.string), value.isFinite else { throw error("expected a number") }
        return value
    }

    /// The text of a scalar as written (possibly empty), for free-form values such as environment variables.
    public func scalarText() throws(ConfigurationError) -> String {
        guard case .scalar(let scalar) = node else { throw error("expected a single value, not a list or mapping") }
        return scalar.string
    }

    /// A size in bytes: a number with a unit `K`, `M`, `G`, `T` (powers of 1000) or `Ki`, `Mi`, `Gi`,
    /// `Ti` (powers of 1024), optionally followed by `B` (`512MiB`, `2G`, `1.5Gi`), or plain bytes.
    public func byteSize() throws(ConfigurationError) -> Int64 {
        let text = try string().trimmingCharacters(in: .whitespaces)
        var number = Substring(text)
        if number.hasSuffix("B") || number.hasSuffix("b") { number = number.dropLast() }
        var multiplier: Double = 1
        let units: [(String, Double)] = [
            ("Ki", 1024), ("Mi", 1024 * 1024), ("Gi", 1024 * 1024 * 1024), ("Ti", 1024 * 1024 * 1024 * 1024),
            ("K", 1e3), ("k", 1e3), ("M", 1e6), ("G", 1e9), ("T", 1e12),
        ]
        for (suffix, factor) in units where number.hasSuffix(suffix) {
            number = number.dropLast(suffix.count)
            multiplier = factor
            break
        }
        guard let value = Double(number.trimmingCharacters(in: .whitespaces)), value > 0, value * multiplier < 9e18 else {
            throw error("expected a size such as 512MiB, 2GiB or 4G")
        }
        return Int64(value * multiplier)
    }

    /// The keys of a mapping node, in order.
    public func keys() throws(ConfigurationError) -> [String] {
        guard case .mapping(let mapping) = node else { throw error("expected a mapping of names to values") }
        var result = [String]()
        for (key, _) in mapping {
            guard let name = key.string else { throw error("keys must be text") }
            result.append(name)
        }
        return result
    }

    /// The value at `key` of a mapping node with free-form keys.
    public func child(_ key: String) throws(ConfigurationError) -> YAMLValue {
        guard case .mapping(let mapping) = node, let value = mapping[Node(key)] else { throw error("\(key) is missing") }
        return YAMLValue(file: file, path: path.isEmpty ? key : "\(path).\(key)", node: value)
    }

    /// This node as a boolean (`true` or `false`).
    public func bool() throws(ConfigurationError) -> Bool {
        guard let value = node.bool else { throw error("expected true or false") }
        return value
    }

    /// This node as a duration: a number of seconds, or a number with a unit `s`, `m`, `h` or `d`
    /// (`90s`, `5m`, `12h`, `7d`).
    public func duration() throws(ConfigurationError) -> Duration {
        let text = try string().trimmingCharacters(in: .whitespaces)
        let units: [(Character, Int64)] = [("s", 1), ("m", 60), ("h", 3600), ("d", 86400)]
        var number = Substring(text)
        var multiplier: Int64 = 1
        if let last = text.last, let unit = units.first(where: { $0.0 == last }) {
            number = text.dropLast()
            multiplier = unit.1
        }
        guard let value = Int64(number), value >= 0 else {
            throw error("expected a duration such as 300, 90s, 5m, 12h or 7d")
        }
        return .seconds(value * multiplier)
    }
}

/// The keys of a YAML mapping, each a ``YAMLValue``.
public struct YAMLMapping {
    /// The mapping node itself.
    public let value: YAMLValue
    let values: [String: YAMLValue]

    /// The value at `key`, or `nil` when it is absent or null.
    public subscript(key: String) -> YAMLValue? {
        guard let child = values[key], !child.isNull else { return nil }
        return child
    }

    /// The value at `key`.
    /// - Throws: ``ConfigurationError`` when it is absent.
    public func required(_ key: String) throws(ConfigurationError) -> YAMLValue {
        guard let child = self[key] else {
            let path = value.path.isEmpty ? key : "\(value.path).\(key)"
            throw ConfigurationError(file: value.file, key: path, line: value.node.mark.map { $0.line }, reason: "is required")
        }
        return child
    }
}
