/// What one environment needs from a host.
public struct ResourceRequest: Sendable, Equatable {
    public var cpu: Double
    public var memoryBytes: Int64
    public var gpus: Int
    /// Labels the host must carry with these values (e.g. `gpu: a100`, `zone: library`).
    public var hostLabels: [String: String]

    public init(cpu: Double, memoryBytes: Int64, gpus: Int = 0, hostLabels: [String: String] = [:]) {
        self.cpu = cpu
        self.memoryBytes = memoryBytes
        self.gpus = gpus
        self.hostLabels = hostLabels
    }

    /// What `profile` asks for.
    public init(_ profile: Profile) {
        self.init(cpu: profile.cpu, memoryBytes: profile.memoryBytes, gpus: profile.gpus, hostLabels: profile.hostLabels)
    }
}

/// A host and what its live environments have asked for (requested resources, not measured use:
/// an environment may use its whole limit at any time).
public struct HostLoad: Sendable, Equatable {
    public var host: Host
    public var usedCPU: Double
    public var usedMemoryBytes: Int64
    /// GPUs held by live environments.
    public var usedGPUIDs: Set<String>
    public var environments: Int

    public init(host: Host, usedCPU: Double = 0, usedMemoryBytes: Int64 = 0, usedGPUIDs: Set<String> = [], environments: Int = 0) {
        self.host = host
        self.usedCPU = usedCPU
        self.usedMemoryBytes = usedMemoryBytes
        self.usedGPUIDs = usedGPUIDs
        self.environments = environments
    }

    /// The larger of the CPU and memory shares in use, from 0 (empty) to 1 (full).
    public var load: Double {
        let cpu = host.capacity.cpu > 0 ? usedCPU / host.capacity.cpu : 1
        let memory = host.capacity.memoryBytes > 0 ? Double(usedMemoryBytes) / Double(host.capacity.memoryBytes) : 1
        return max(cpu, memory)
    }

    /// The GPUs free for a new environment, in the host's order.
    public var freeGPUs: [GPU] { host.capacity.gpus.filter { !usedGPUIDs.contains($0.id) } }

    /// Whether `request` fits in what is left.
    public func fits(_ request: ResourceRequest) -> Bool {
        // A small tolerance so that ten 0.1-core environments fill a 1-core host.
        usedCPU + request.cpu <= host.capacity.cpu + 1e-9 && usedMemoryBytes + request.memoryBytes <= host.capacity.memoryBytes
            && freeGPUs.count >= request.gpus
    }
}

/// Where a new environment goes, and the GPUs it gets there.
public struct PlacementChoice: Sendable, Equatable {
    public var host: String
    public var gpuIDs: [String]
}

/// Chooses a host for each new environment. Only hosts that accept environments (not draining, not
/// down) and carry the requested labels are candidates; of those with room, `leastLoaded` spreads
/// environments (the emptiest host first) and `packing` fills one host before the next (so others
/// can be drained or switched off). Ties go to the host named first.
public struct Placement: Sendable, Equatable {
    public enum Strategy: String, Sendable, CaseIterable {
        case leastLoaded = "least_loaded"
        case packing
    }

    /// Why no host was chosen.
    public enum Refusal: Error, Sendable, Equatable {
        /// No host carries the labels or the GPUs at all (a profile the pool cannot run).
        case noMatchingHost
        /// Matching hosts exist but none accepts environments now (draining or down).
        case noHostAvailable
        /// Matching hosts are full.
        case full
    }

    public var strategy: Strategy

    public init(strategy: Strategy = .leastLoaded) {
        self.strategy = strategy
    }

    /// Picks a host for `request` among `loads`.
    public func place(_ request: ResourceRequest, on loads: [HostLoad]) -> Result<PlacementChoice, Refusal> {
        let matching = loads.filter { load in
            request.hostLabels.allSatisfy { load.host.labels[$0.key] == $0.value } && load.host.capacity.gpus.count >= request.gpus
                && load.host.capacity.cpu + 1e-9 >= request.cpu && load.host.capacity.memoryBytes >= request.memoryBytes
        }
        guard !matching.isEmpty else { return .failure(.noMatchingHost) }
        let available = matching.filter(\.host.acceptsEnvironments)
        guard !available.isEmpty else { return .failure(.noHostAvailable) }
        let candidates = available.filter { $0.fits(request) }.sorted { a, b in
            if a.load != b.load { return strategy == .leastLoaded ? a.load < b.load : a.load > b.load }
            return a.host.name < b.host.name
        }
        guard let chosen = candidates.first else { return .failure(.full) }
        return .success(PlacementChoice(host: chosen.host.name, gpuIDs: chosen.freeGPUs.prefix(request.gpus).map(\.id)))
    }
}
