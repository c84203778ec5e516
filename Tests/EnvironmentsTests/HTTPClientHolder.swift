import AsyncHTTPClient

/// One HTTP client for the whole test process (never shut down: it lives as long as the process).
enum HTTPClientHolder {
    static let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(redirectConfiguration: .disallow))
}
