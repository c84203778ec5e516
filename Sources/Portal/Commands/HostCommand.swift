import ArgumentParser
import Environments
import Foundation

/// `portal host add|list|drain|remove`: the pool of machines that run environments.
struct HostCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "host",
        abstract: "Manage the pool of hosts (container engines) that run environments.",
        discussion: """
            Hosts can also be declared under environments.hosts in the configuration file; those are \
            rewritten at every start. A draining or down host gets no new environments. See README, Hosts.
            """,
        subcommands: [Add.self, List.self, Drain.self, Remove.self]
    )

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a host (a Docker or Podman API endpoint) with its capacity.")
        @OptionGroup var options: ConfigOptions
        @Argument(help: "A name: lower-case letters, digits and '-'.") var name: String
        @Option(help: "unix:///run/podman/podman.sock or tcp://HOST:PORT.") var endpoint: String
        @Option(help: "The address the host publishes environment ports on (default: the endpoint's host, or 127.0.0.1).") var publishAddress: String?
        @Option(help: "CPU cores environments may request in total.") var cpu: Double
        @Option(help: "Memory environments may request in total, e.g. 64GiB.") var memory: String
        @Option(name: .customLong("gpu"), help: "A GPU as ID:MODEL (repeat for each), e.g. 0:A100.") var gpus: [String] = []
        @Option(name: .customLong("label"), help: "A label as KEY=VALUE (repeat for each), matched by profiles' host_labels.") var labels: [String] = []
        @Option(help: "TLS: the CA that signed the engine's certificate.") var tlsCA: String?
        @Option(help: "TLS: the portal's client certificate.") var tlsCert: String?
        @Option(help: "TLS: the client certificate's key.") var tlsKey: String?
        @Flag(help: "Rewrite the host if it exists (its drain flag and health stay).") var replace = false

        func run() async throws {
            try await reportingErrors {
                let host = try describe()
                try await options.withDatabase { database, _, _ in
                    try await HostRepository(client: database.client).add(host, replace: replace)
                }
                print("Host \(host.name) added: \(host.endpoint), \(host.capacity.cpu.formatted()) CPU, \(host.capacity.memoryBytes >> 20) MiB, \(host.capacity.gpus.count) GPU(s).")
            }
        }

        func describe() throws -> Host {
            guard Host.isValidName(name) else { throw CLIError("the host name \"\(name)\" must be lower-case letters, digits and '-', at most 63 characters") }
            guard endpoint.hasPrefix("unix://") || endpoint.hasPrefix("/") || endpoint.hasPrefix("tcp://") else {
                throw CLIError("--endpoint must be unix:///path/to/engine.sock or tcp://HOST:PORT, not \(endpoint)")
            }
            guard cpu > 0 else { throw CLIError("--cpu must be more than 0") }
            let bytes: Int64
            do {
                bytes = try YAMLValue.parse(memory, file: "--memory").byteSize()
            } catch {
                throw CLIError("--memory: \(error.reason)")
            }
            var parsedGPUs = [GPU]()
            for text in gpus {
                let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
                guard parts.count == 2, !parts[0].isEmpty, !parsedGPUs.contains(where: { $0.id == parts[0] }) else {
                    throw CLIError("--gpu \(text): expected ID:MODEL such as 0:A100, each id once")
                }
                parsedGPUs.append(GPU(id: parts[0], model: parts[1]))
            }
            var parsedLabels = [String: String]()
            for text in labels {
                let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2, !parts[0].isEmpty else { throw CLIError("--label \(text): expected KEY=VALUE") }
                parsedLabels[parts[0]] = parts[1]
            }
            var tls: Host.TLS?
            switch (tlsCA, tlsCert, tlsKey) {
            case (nil, nil, nil): break
            case (let ca?, let cert?, let key?):
                guard endpoint.hasPrefix("tcp://") else { throw CLIError("TLS applies to tcp:// endpoints only") }
                tls = Host.TLS(caFile: ca, certificateFile: cert, keyFile: key)
            default: throw CLIError("TLS needs all three of --tls-ca, --tls-cert and --tls-key")
            }
            return Host(
                name: name, endpoint: endpoint, publishAddress: publishAddress, tls: tls, capacity: Capacity(cpu: cpu, memoryBytes: bytes, gpus: parsedGPUs),
                labels: parsedLabels
            )
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the hosts with their state and what their environments requested.")
        @OptionGroup var options: ConfigOptions

        func run() async throws {
            try await reportingErrors {
                let loads = try await options.withDatabase { database, _, _ in try await HostRepository(client: database.client).loads() }
                if loads.isEmpty {
                    print("No hosts. Add one with: portal host add NAME --endpoint … --cpu … --memory …")
                    return
                }
                print(["NAME", "STATE", "ENDPOINT", "ENVIRONMENTS", "CPU", "MEMORY_MIB", "GPUS", "LABELS"].joined(separator: "\t"))
                for load in loads {
                    let host = load.host
                    let state = host.draining ? "draining (\(host.health.rawValue))" : host.health.rawValue
                    let gpus = host.capacity.gpus.isEmpty ? "-" : "\(load.usedGPUIDs.count)/\(host.capacity.gpus.count) " + host.capacity.gpus.map { "\($0.id):\($0.model)" }.joined(separator: ",")
                    let labels = host.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
                    print([
                        host.name, state, host.endpoint, "\(load.environments)", "\(load.usedCPU.formatted())/\(host.capacity.cpu.formatted())",
                        "\(load.usedMemoryBytes >> 20)/\(host.capacity.memoryBytes >> 20)", gpus, labels.isEmpty ? "-" : labels,
                    ].joined(separator: "\t"))
                }
            }
        }
    }

    struct Drain: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop placing new environments on a host; running ones carry on.")
        @OptionGroup var options: ConfigOptions
        @Argument(help: "The host's name.") var name: String
        @Flag(help: "Accept new environments again.") var undo = false

        func run() async throws {
            try await reportingErrors {
                try await options.withDatabase { database, _, _ in try await HostRepository(client: database.client).setDraining(name, !undo) }
                print(undo ? "Host \(name) accepts new environments again." : "Host \(name) is draining: no new environments go there.")
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a host that runs no environment.")
        @OptionGroup var options: ConfigOptions
        @Argument(help: "The host's name.") var name: String

        func run() async throws {
            try await reportingErrors {
                try await options.withDatabase { database, _, _ in try await HostRepository(client: database.client).remove(name) }
                print("Host \(name) removed.")
            }
        }
    }
}
