import Environments
import Foundation

extension PortalConfiguration {
    /// The `proxy` section: how students reach their environments.
    struct ProxyConfiguration: Sendable {
        /// A second origin that serves only environments (`environments_url`), so that notebook
        /// JavaScript never runs on the origin of the portal's staff and finance pages. `nil`: the
        /// portal's own origin serves `/user/…` too (simple, see the README for the risk).
        var environmentsURL: PublicURL?
        /// How often the idle culler looks at running environments.
        var cullInterval: Duration = .seconds(60)
        /// How often activity seen by the proxy is written to the database.
        var activityInterval: Duration = .seconds(10)
        /// How long the proxy trusts a session it looked up before asking the database again.
        var sessionCacheLifetime: Duration = .seconds(10)
    }

    static func proxySection(_ node: YAMLValue?, publicURL: PublicURL) throws(ConfigurationError) -> ProxyConfiguration {
        var result = ProxyConfiguration()
        guard let node else { return result }
        let map = try node.mapping(allowing: ["environments_url", "cull_interval", "activity_interval", "session_cache"])
        if let value = map["environments_url"] {
            guard let url = PublicURL(try value.string()), url.pathPrefix.isEmpty else {
                throw value.error("expected an absolute http(s) URL without a path, such as https://jupyter.example.ac.uk")
            }
            guard url.host != publicURL.host || url.port != publicURL.port || url.scheme != publicURL.scheme else {
                throw value.error("must be a different origin from public_url (another host name), or the separation it gives is lost")
            }
            result.environmentsURL = url
        }
        for (key, minimum, path) in [
            ("cull_interval", Duration.seconds(1), \ProxyConfiguration.cullInterval),
            ("activity_interval", .seconds(1), \.activityInterval),
            ("session_cache", .zero, \.sessionCacheLifetime),
        ] {
            guard let value = map[key] else { continue }
            let duration = try value.duration()
            guard duration >= minimum else { throw value.error("must be at least \(minimum)") }
            result[keyPath: path] = duration
        }
        return result
    }
}
