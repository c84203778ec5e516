@testable import Environments
import Foundation
import Testing

typealias Host = Environments.Host

@Suite("Placement, caps and prices")
struct AdmissionTests {
    static func host(_ name: String, cpu: Double = 4, memory: Int64 = 8 << 30, gpus: [String] = [], labels: [String: String] = [:]) -> Host {
        Host(name: name, endpoint: "tcp://10.0.0.1:2375", capacity: Capacity(cpu: cpu, memoryBytes: memory, gpus: gpus.map { GPU(id: $0, model: "A100") }), labels: labels)
    }

    static let profile = Profile(slug: "tm351", displayName: "TM351", image: "img", cpu: 1, memoryBytes: 1 << 30, maxLifetimeSeconds: 2 * 3600)

    @Test func leastLoadedSpreadsAndPackingFills() throws {
        let loads = [
            HostLoad(host: Self.host("a"), usedCPU: 2, usedMemoryBytes: 2 << 30, environments: 2),
            HostLoad(host: Self.host("b"), usedCPU: 1, usedMemoryBytes: 1 << 30, environments: 1),
        ]
        let request = ResourceRequest(cpu: 1, memoryBytes: 1 << 30)
        #expect(try Placement(strategy: .leastLoaded).place(request, on: loads).get().host == "b")
        #expect(try Placement(strategy: .packing).place(request, on: loads).get().host == "a")
        // Memory counts as much as CPU: b is emptier by CPU but fuller by memory.
        let skewed = [loads[0], HostLoad(host: Self.host("b"), usedCPU: 0, usedMemoryBytes: 7 << 30)]
        #expect(try Placement(strategy: .leastLoaded).place(request, on: skewed).get().host == "a")
    }

    @Test func drainingDownFullAndUnlabelledHostsAreNotChosen() throws {
        var draining = Self.host("a")
        draining.draining = true
        var down = Self.host("b")
        down.health = .down
        let request = ResourceRequest(cpu: 1, memoryBytes: 1 << 30)
        #expect(Placement().place(request, on: [HostLoad(host: draining), HostLoad(host: down)]) == .failure(.noHostAvailable))
        let full = HostLoad(host: Self.host("c", cpu: 1), usedCPU: 0.5)
        #expect(Placement().place(request, on: [full]) == .failure(.full))
        #expect(Placement().place(request, on: [HostLoad(host: Self.host("c", cpu: 0.5))]) == .failure(.noMatchingHost))
        let labelled = ResourceRequest(cpu: 1, memoryBytes: 1 << 30, hostLabels: ["zone": "lab"])
        #expect(Placement().place(labelled, on: [HostLoad(host: Self.host("d"))]) == .failure(.noMatchingHost))
        #expect(try Placement().place(labelled, on: [HostLoad(host: Self.host("d")), HostLoad(host: Self.host("e", labels: ["zone": "lab"]))]).get().host == "e")
        // Ten tenth-of-a-core environments fill one core exactly.
        #expect(HostLoad(host: Self.host("f", cpu: 1), usedCPU: 0.1 * 9).fits(ResourceRequest(cpu: 0.1, memoryBytes: 1)))
    }

    @Test func gpusAreGivenByIdToOneEnvironmentEach() throws {
        let host = Self.host("g", gpus: ["0", "1", "2"])
        let request = ResourceRequest(cpu: 1, memoryBytes: 1 << 30, gpus: 2)
        #expect(try Placement().place(request, on: [HostLoad(host: host, usedGPUIDs: ["0"])]).get() == PlacementChoice(host: "g", gpuIDs: ["1", "2"]))
        #expect(Placement().place(request, on: [HostLoad(host: host, usedGPUIDs: ["1", "2"])]) == .failure(.full))
        #expect(Placement().place(request, on: [HostLoad(host: Self.host("cpu-only"))]) == .failure(.noMatchingHost))
    }

    @Test func capsAreCheckedInOrderWithRetryAfter() {
        let hosts = [HostLoad(host: Self.host("a"))]
        let admission = Admission(limits: AdmissionLimits(global: 100, course: 10, profile: 5))
        #expect(throws: Never.self) { try admission.decide(Self.profile, AdmissionSnapshot(live: 99, liveInCourse: 9, liveOfProfile: 4, hosts: hosts)).get() }
        let global = admission.decide(Self.profile, AdmissionSnapshot(live: 100, hosts: hosts))
        #expect((try? global.get()) == nil)
        if case .failure(let refusal) = global { #expect(refusal.reason == .globalCap && refusal.retryAfter == .seconds(60)) }
        if case .failure(let refusal) = admission.decide(Self.profile, AdmissionSnapshot(live: 10, liveInCourse: 10, hosts: hosts)) {
            #expect(refusal.reason == .courseCap)
        } else {
            Issue.record("the course cap did not refuse")
        }
        if case .failure(let refusal) = admission.decide(Self.profile, AdmissionSnapshot(live: 5, liveOfProfile: 5, hosts: hosts)) {
            #expect(refusal.reason == .profileCap)
        } else {
            Issue.record("the profile cap did not refuse")
        }
    }

    @Test func pricesAndReservationsAreExactToTheCent() throws {
        // 1.5 cores at 0.04, 3 GiB at 0.005, for a 2-hour maximum lifetime.
        let card = RateCard(name: "standard", currency: "GBP", cpuCoreHour: Decimal(string: "0.04")!, memoryGiBHour: Decimal(string: "0.005")!)
        var profile = Self.profile
        profile.cpu = 1.5
        profile.memoryBytes = 3 << 30
        let hourly = card.hourlyCost(ResourceRequest(profile))
        #expect(hourly == Decimal(string: "0.075"))
        let admitted = try Admission(limits: AdmissionLimits(), rateCards: RateCards([card])).decide(profile, AdmissionSnapshot(hosts: [HostLoad(host: Self.host("a"))])).get()
        #expect(admitted.reservation == Decimal(string: "0.15"))
        #expect(Money.cents(Decimal(string: "0.125")!) == Decimal(string: "0.13"))
        #expect(Money.format(Decimal(string: "12.3")!, "GBP") == "12.30 GBP")
    }

    @Test func theMostSpecificRateCardApplies() {
        let gpuHost = Self.host("g", labels: ["pool": "gpu"])
        let cards = RateCards([
            RateCard(name: "default", currency: "GBP", cpuCoreHour: 1),
            RateCard(name: "gpu-pool", currency: "GBP", cpuCoreHour: 2, hostLabels: ["pool": "gpu"]),
            RateCard(name: "tm351", currency: "GBP", cpuCoreHour: 3, profiles: ["tm351"]),
        ])
        #expect(cards.card(profile: "other", host: Self.host("a"))?.name == "default")
        #expect(cards.card(profile: "other", host: gpuHost)?.name == "gpu-pool")
        #expect(cards.card(profile: "tm351", host: gpuHost)?.name == "tm351")
        #expect(RateCards().card(profile: "tm351", host: gpuHost) == nil)
    }

    @Test func aBudgetRefusesTheLaunchThatWouldPassIt() throws {
        let card = RateCard(name: "standard", currency: "GBP", cpuCoreHour: 1)  // 1 core × 2 h = 2.00 reserved per start
        let cap = SpendCap(amount: 5, currency: "GBP", contact: "tm351@example.ac.uk")
        let admission = Admission(limits: AdmissionLimits(), rateCards: RateCards([card]), spendCap: cap)
        let hosts = [HostLoad(host: Self.host("a"))]
        #expect(throws: Never.self) { try admission.decide(Self.profile, AdmissionSnapshot(hosts: hosts, courseCommitted: 3)).get() }
        guard case .failure(let refusal) = admission.decide(Self.profile, AdmissionSnapshot(hosts: hosts, courseCommitted: Decimal(string: "3.01")!)) else {
            Issue.record("the budget did not refuse")
            return
        }
        #expect(refusal.reason == .spendCap && refusal.retryAfter == nil)
        #expect(refusal.message.contains("budget") && refusal.message.contains("tm351@example.ac.uk"))
        // A card in another currency cannot be checked against the budget: refused, and said why.
        let euros = Admission(limits: AdmissionLimits(), rateCards: RateCards([RateCard(name: "eu", currency: "EUR", cpuCoreHour: 1)]), spendCap: cap)
        #expect((try? euros.decide(Self.profile, AdmissionSnapshot(hosts: hosts)).get()) == nil)
    }

    @Test func budgetPeriods() throws {
        let date = ISO8601DateFormatter().date(from: "2026-11-22T08:00:00Z")!
        let monthly = SpendCap(amount: 1, currency: "GBP")
        let window = try #require(monthly.window(containing: date))
        #expect(ISO8601DateFormatter().string(from: window.start) == "2026-11-01T00:00:00Z")
        #expect(ISO8601DateFormatter().string(from: window.end) == "2026-12-01T00:00:00Z")
        #expect(monthly.describe(window) == "November 2026")
        let from = ISO8601DateFormatter().date(from: "2026-12-01T00:00:00Z")!
        let explicit = SpendCap(amount: 1, currency: "GBP", period: .dates(from: from, to: from.addingTimeInterval(86_400 * 31)))
        #expect(explicit.window(containing: date) == nil)
    }

    @Test func profilesDeclareHostLabelsAndACap() throws {
        let yaml = try YAMLValue.parse("slug: gpu\ndisplay_name: GPU\nimage: img\ngpu: 1\nhost_labels: {pool: gpu}\nmax_running: 12\n", file: "p.yaml")
        let profile = try #require(try ProfileLoader.parse(yaml).first)
        #expect(profile.hostLabels == ["pool": "gpu"] && profile.maxRunning == 12 && profile.gpus == 1)
    }
}
