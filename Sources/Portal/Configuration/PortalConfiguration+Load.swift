import Environments
import Foundation
import Logging

extension PortalConfiguration {
    static let topLevelKeys: Set<String> = [
        "listen", "public_url", "data_dir", "database", "secret_key", "secret_key_file", "session", "lti",
        "trusted_proxies", "log_level", "log_format", "embedded_postgres", "templates_dir", "migrations_dir", "jupyter_dir", "environments",
        "proxy", "admission", "rate_cards", "security", "http",
    ]

    /// Reads the configuration file at `path`, then applies environment overrides from `environment`.
    /// - Throws: ``ConfigurationError`` naming the file, key and reason for anything wrong.
    static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(ConfigurationError) -> PortalConfiguration {
        let root = try YAMLValue.load(path: path).mapping(allowing: topLevelKeys)
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        func resolve(_ relative: String) -> String {
            relative.hasPrefix("/") ? relative : URL(fileURLWithPath: relative, relativeTo: URL(fileURLWithPath: directory + "/")).standardizedFileURL.path
        }
        func overridden(_ name: String, _ value: YAMLValue?) throws(ConfigurationError) -> String? {
            if let text = environment[name], !text.isEmpty { return text }
            return try value?.string()
        }

        let listenText = try overridden("PORTAL_LISTEN", root["listen"]) ?? "127.0.0.1:8080"
        guard let (host, port) = parseListen(listenText) else {
            throw ConfigurationError(file: path, key: "listen", reason: "expected HOST:PORT such as 127.0.0.1:8080 or [::]:443, got \"\(listenText)\"")
        }
        let publicText = try overridden("PORTAL_PUBLIC_URL", root["public_url"]) ?? "http://\(host.contains(":") ? "[\(host)]" : host):\(port)"
        guard let publicURL = PublicURL(publicText) else {
            throw ConfigurationError(file: path, key: "public_url", reason: "expected an absolute http or https URL without query, got \"\(publicText)\"")
        }
        let dataDirectory = resolve(try overridden("PORTAL_DATA_DIR", root["data_dir"]) ?? "data")

        var database = DatabaseLocation.embedded
        var poolSize = 20
        var binDirectory: String?
        if let node = root["database"] {
            let mapping = try node.mapping(allowing: ["url", "url_file", "pool_size"])
            if let url = try secret(mapping, "url", file: path, resolve: resolve) { database = .external(url: url) }
            poolSize = try mapping["pool_size"]?.int(in: 1...500) ?? poolSize
        }
        if let url = try secretFromEnvironment("PORTAL_DATABASE_URL", environment, file: path) { database = .external(url: url) }
        if case .external(let url) = database, !(url.hasPrefix("postgres://") || url.hasPrefix("postgresql://")) {
            throw ConfigurationError(file: path, key: "database.url", reason: "expected a postgres:// or postgresql:// URL")
        }
        if let node = root["embedded_postgres"] {
            let mapping = try node.mapping(allowing: ["bin_dir"])
            binDirectory = try mapping["bin_dir"]?.string()
        }

        var secretKey = SecretKeySource.file(dataDirectory + "/secret.key")
        if let file = root["secret_key_file"] { secretKey = .file(resolve(try file.string())) }
        if let value = root["secret_key"] { secretKey = .value(try value.string()) }
        if let value = try secretFromEnvironment("PORTAL_SECRET_KEY", environment, file: path) { secretKey = .value(value) }

        var sessionLifetime = Duration.seconds(12 * 3600)
        if let node = root["session"] {
            let mapping = try node.mapping(allowing: ["lifetime"])
            sessionLifetime = try mapping["lifetime"]?.duration() ?? sessionLifetime
        }

        var window = Duration.seconds(300)
        var purge = Duration.seconds(60)
        var consumers = [ConsumerEntry]()
        var refusalLimits = LaunchStore.RefusalLimits()
        if let node = root["lti"] {
            let lti = try node.mapping(allowing: ["timestamp_window", "nonce_purge_interval", "consumers", "refusal_records_per_client", "refusal_records_per_minute"])
            refusalLimits.perClient = try lti["refusal_records_per_client"]?.int(in: 1...100_000) ?? refusalLimits.perClient
            refusalLimits.perMinute = try lti["refusal_records_per_minute"]?.int(in: 1...1_000_000) ?? refusalLimits.perMinute
            window = try lti["timestamp_window"]?.duration() ?? window
            purge = try lti["nonce_purge_interval"]?.duration() ?? purge
            if window < .seconds(1) || window > .seconds(3600) {
                throw try lti.required("timestamp_window").error("must be between 1 second and 1 hour")
            }
            for item in try lti["consumers"]?.sequence() ?? [] {
                let entry = try item.mapping(allowing: ["key", "name", "secret", "secret_file"])
                let key = try entry.required("key").string()
                let variable = "PORTAL_LTI_SECRET_" + String(key.uppercased().map { $0.isLetter || $0.isNumber ? $0 : "_" })
                var found = try secretFromEnvironment(variable, environment, file: path)
                if found == nil { found = try secret(entry, "secret", file: path, resolve: resolve) }
                guard let secret = found else {
                    throw item.error("needs secret or secret_file (or the environment variable \(variable))")
                }
                guard !consumers.contains(where: { $0.key == key }) else { throw item.error("consumer key \"\(key)\" is declared twice") }
                consumers.append(ConsumerEntry(key: key, name: try entry["name"]?.string() ?? key, secret: secret))
            }
        }

        var proxies = [IPAddressRange]()
        for item in try root["trusted_proxies"]?.sequence() ?? [] {
            guard let range = IPAddressRange(try item.string()) else {
                throw item.error("expected an IP address or CIDR range such as 10.0.0.0/8 or ::1")
            }
            proxies.append(range)
        }

        let levelText = try overridden("PORTAL_LOG_LEVEL", root["log_level"]) ?? "info"
        guard let level = Logger.Level(rawValue: levelText.lowercased()) else {
            throw ConfigurationError(file: path, key: "log_level", reason: "expected trace, debug, info, notice, warning, error or critical")
        }
        let formatText = try root["log_format"]?.string() ?? "text"
        guard let format = LogFormat(rawValue: formatText) else {
            throw ConfigurationError(file: path, key: "log_format", reason: "expected text or json")
        }

        let environments = try environmentsSection(root["environments"], resolve: resolve)

        var configuration = PortalConfiguration(
            file: path,
            listenHost: host,
            listenPort: port,
            publicURL: publicURL,
            dataDirectory: dataDirectory,
            database: database,
            databasePoolSize: poolSize,
            secretKey: secretKey,
            sessionLifetime: sessionLifetime,
            timestampWindow: window,
            noncePurgeInterval: purge,
            consumers: consumers,
            trustedProxies: proxies,
            logLevel: level,
            logFormat: format,
            embeddedPostgresBinDirectory: binDirectory.map(resolve),
            templatesDirectory: try optionalPath(root["templates_dir"], resolve),
            migrationsDirectory: try optionalPath(root["migrations_dir"], resolve),
            jupyterDirectory: try optionalPath(root["jupyter_dir"], resolve)
        )
        configuration.environments = environments
        configuration.refusalLimits = refusalLimits
        configuration.proxy = try proxySection(root["proxy"], publicURL: publicURL)
        configuration.admission = try admissionSection(root["admission"], rateCards: root["rate_cards"])
        configuration.security = try securitySection(root["security"])
        configuration.http = try httpSection(root["http"])
        return configuration
    }

    private static func environmentsSection(_ node: YAMLValue?, resolve: (String) -> String) throws(ConfigurationError) -> EnvironmentsConfiguration {
        var result = EnvironmentsConfiguration()
        guard let node else { return result }
        // With an environments section, the embedded default engine is the sandboxed process engine.
        result.engine = .process
        let map = try node.mapping(allowing: [
            "engine", "endpoint", "venv", "profiles_dir", "default_profile", "start_timeout", "stop_timeout", "course_mappings", "hosts", "placement",
            "health_interval", "lost_after",
        ])
        if let engine = map["engine"] {
            guard let kind = EnvironmentsConfiguration.EngineKind(rawValue: try engine.string()) else {
                throw engine.error("expected docker (Docker or Podman through the Docker Engine API), process (sandboxed local processes) or none")
            }
            result.engine = kind
        }
        result.endpoint = try map["endpoint"]?.string() ?? result.endpoint
        result.venv = try optionalPath(map["venv"], resolve) ?? result.venv
        result.profilesDirectory = try optionalPath(map["profiles_dir"], resolve)
        result.defaultProfile = try map["default_profile"]?.string()
        if let value = map["start_timeout"] {
            result.startTimeout = try value.duration()
            guard result.startTimeout >= .seconds(5) else { throw value.error("must be at least 5 seconds") }
        }
        if let value = map["stop_timeout"] {
            result.stopTimeout = try value.duration()
            guard result.stopTimeout >= .seconds(10) else { throw value.error("must be at least 10 seconds: a server with a running kernel needs that long") }
        }
        for item in try map["hosts"]?.sequence() ?? [] {
            guard result.engine == .docker else { throw item.error("hosts need engine: docker (the process engine runs on this machine only)") }
            let host = try host(item)
            guard !result.hosts.contains(where: { $0.name == host.name }) else { throw item.error("the host \(host.name) is declared twice") }
            result.hosts.append(host)
        }
        if let value = map["placement"] {
            guard let strategy = Placement.Strategy(rawValue: try value.string()) else { throw value.error("expected least_loaded or packing") }
            result.placement = strategy
        }
        for (key, path) in [("health_interval", \EnvironmentsConfiguration.healthInterval), ("lost_after", \.lostAfter)] {
            guard let value = map[key] else { continue }
            let duration = try value.duration()
            guard duration >= .seconds(1) else { throw value.error("must be at least 1 second") }
            result[keyPath: path] = duration
        }
        for item in try map["course_mappings"]?.sequence() ?? [] {
            let entry = try item.mapping(allowing: ["consumer", "context_id", "profile"])
            result.courseMappings.append(
                .init(consumerKey: try entry["consumer"]?.string() ?? "", contextID: try entry.required("context_id").string(), profile: try entry.required("profile").string())
            )
        }
        return result
    }

    private static func optionalPath(_ value: YAMLValue?, _ resolve: (String) -> String) throws(ConfigurationError) -> String? {
        guard let value else { return nil }
        return resolve(try value.string())
    }

    /// Parses `HOST:PORT` (`[v6]:PORT` for IPv6).
    static func parseListen(_ text: String) -> (String, Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return nil }
        return (host, port)
    }

    /// A secret given inline as `key` or through a file named by `key_file`.
    private static func secret(_ mapping: YAMLMapping, _ key: String, file: String, resolve: (String) -> String) throws(ConfigurationError) -> String? {
        if let value = mapping[key], mapping["\(key)_file"] != nil {
            throw value.error("give either \(key) or \(key)_file, not both")
        }
        if let value = mapping[key] { return try value.string() }
        guard let node = mapping["\(key)_file"] else { return nil }
        let secretPath = resolve(try node.string())
        return try readSecretFile(secretPath) { reason in node.error(reason) }
    }

    /// A secret from environment variable `name`, or from the file named by `name_FILE`.
    private static func secretFromEnvironment(_ name: String, _ environment: [String: String], file: String) throws(ConfigurationError) -> String? {
        if let value = environment[name], !value.isEmpty { return value }
        guard let secretPath = environment[name + "_FILE"], !secretPath.isEmpty else { return nil }
        return try readSecretFile(secretPath) { reason in ConfigurationError(file: file, key: "$\(name)_FILE", reason: reason) }
    }

    private static func readSecretFile(_ path: String, error: (String) -> ConfigurationError) throws(ConfigurationError) -> String {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw error("cannot read the secret file \(path)")
        }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw error("the secret file \(path) is empty") }
        return trimmed
    }
}
