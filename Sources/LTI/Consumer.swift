/// An LTI 1.1 tool consumer (a VLE installation) as the portal knows it: its key, shared secret and
/// whether launches from it are allowed. The secret is redacted from every description.
public struct Consumer: Sendable, CustomStringConvertible {
    /// The `oauth_consumer_key` the VLE sends.
    public var key: String
    /// The shared secret.
    public var secret: String
    /// Whether launches are accepted from this consumer.
    public var enabled: Bool

    /// Creates a consumer.
    public init(key: String, secret: String, enabled: Bool = true) {
        self.key = key
        self.secret = secret
        self.enabled = enabled
    }

    public var description: String { "Consumer(key: \(key), enabled: \(enabled), secret: <redacted>)" }
}

/// Looks up consumers by key; the portal backs it with its configuration and PostgreSQL.
public protocol ConsumerDirectory: Sendable {
    /// The consumer registered under `key`, or `nil` if there is none.
    func consumer(forKey key: String) async throws -> Consumer?
}

/// A fixed set of consumers held in memory.
public struct StaticConsumerDirectory: ConsumerDirectory {
    private let consumers: [String: Consumer]

    /// Creates a directory of `consumers`; a later duplicate key replaces an earlier one.
    public init(_ consumers: [Consumer]) {
        self.consumers = Dictionary(consumers.map { ($0.key, $0) }, uniquingKeysWith: { _, last in last })
    }

    public func consumer(forKey key: String) async throws -> Consumer? { consumers[key] }
}
