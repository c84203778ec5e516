/// What an engine could not do, with a message an operator can act on.
public struct EngineError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The engine cannot be reached at all.
        case unreachable
        /// The image is not on the host.
        case imageMissing
        /// The thing does not exist.
        case notFound
        /// A name is taken.
        case conflict
        /// The host port the server was to be published on was taken meanwhile (two simultaneous
        /// starts can be handed the same free port); creating the container again picks another.
        case portConflict
        /// Anything else the engine refused.
        case failed
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
