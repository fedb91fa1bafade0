import EnvoyAPI
import Foundation
import GRPCCore
import MeshModel
import Synchronization
import SwiftProtobuf
import XDSTesting

/// What the simulated proxies report: who finished its first sync, and when each saw each
/// round's change (the bench cluster in an acknowledged CDS response, and its endpoints in an
/// acknowledged EDS response when it is an EDS cluster).
final class Recorder: Sendable {
    private struct State {
        var synced: Set<Int> = []
        var clusterRound: [Int: Int] = [:]
        var endpointRound: [Int: Int] = [:]
        var edsBench: [Int: Bool] = [:]
        var converged: [Int: [Int: ContinuousClock.Instant]] = [:]
        var failures: [String] = []
        var retries = 0
        /// With verification: each proxy's accepted resources, by type and name (SotW: by index).
        var held: [Int: [String: [String: Data]]] = [:]
    }

    private let state = Mutex(State())
    /// Whether proxies keep the bytes of what they accepted (for --verify).
    let keepsResources: Bool

    init(keepsResources: Bool = false) {
        self.keepsResources = keepsResources
    }

    /// The proxy accepted `resources` of `typeURL`: the whole set (state of the world), or
    /// changes to what it held (delta).
    func accepted(_ proxy: Int, _ typeURL: String, replacing resources: [(name: String, value: Data)]? = nil, updating: [(name: String, value: Data)] = [], removing: [String] = []) {
        state.withLock { state in
            var held = resources.map { Dictionary($0.map { ($0.name, $0.value) }, uniquingKeysWith: { $1 }) } ?? state.held[proxy]?[typeURL] ?? [:]
            for (name, value) in updating { held[name] = value }
            for name in removing { held[name] = nil }
            state.held[proxy, default: [:]][typeURL] = held
        }
    }

    /// What the proxy holds of `typeURL`, by name.
    func held(_ proxy: Int, _ typeURL: String) -> [String: Data] {
        state.withLock { $0.held[proxy]?[typeURL] ?? [:] }
    }

    func synced(_ proxy: Int) { _ = state.withLock { $0.synced.insert(proxy) } }
    func retried() { state.withLock { $0.retries += 1 } }
    var retries: Int { state.withLock { $0.retries } }
    var syncedCount: Int { state.withLock { $0.synced.count } }
    func failed(_ proxy: Int, _ error: any Error) { state.withLock { $0.failures.append("proxy \(proxy): \(error)") } }
    var failures: [String] { state.withLock { $0.failures } }

    /// The proxy acknowledged clusters (`eds`: which of them take endpoints from EDS).
    func clusters(_ proxy: Int, names: some Sequence<String>, eds: Set<String>) {
        guard let round = Self.benchRound(in: names) else { return }
        state.withLock { state in
            state.clusterRound[proxy] = round
            state.edsBench[proxy] = eds.contains(GeneratedMesh.benchCluster(round: round))
            Self.check(&state, proxy)
        }
    }

    /// The proxy acknowledged endpoints of `names`.
    func endpoints(_ proxy: Int, names: some Sequence<String>) {
        guard let round = Self.benchRound(in: names) else { return }
        state.withLock { state in
            state.endpointRound[proxy] = max(round, state.endpointRound[proxy] ?? 0)
            Self.check(&state, proxy)
        }
    }

    private static func check(_ state: inout State, _ proxy: Int) {
        guard let round = state.clusterRound[proxy], state.converged[round]?[proxy] == nil else { return }
        if state.edsBench[proxy] == true, (state.endpointRound[proxy] ?? 0) < round { return }
        state.converged[round, default: [:]][proxy] = .now
    }

    private static func benchRound(in names: some Sequence<String>) -> Int? {
        let prefix = "outbound|", suffix = "||" + GeneratedMesh.benchHost
        return names.compactMap { name -> Int? in
            guard name.hasPrefix(prefix), name.hasSuffix(suffix) else { return nil }
            return Int(name.dropFirst(prefix.count).dropLast(suffix.count)).map { $0 - GeneratedMesh.benchPort(round: 0) }
        }.max()
    }

    func converged(round: Int) -> [Int: ContinuousClock.Instant] { state.withLock { $0.converged[round] ?? [:] } }
}

/// One proxy speaking plain xDS as Envoy does: wildcard CDS and LDS, EDS for the EDS clusters,
/// RDS for the route configurations its listeners name, every response acknowledged.
struct SimulatedProxy: Sendable {
    var index: Int
    var node: Envoy_Config_Core_V3_Node
    var address: HostPort
    var security: XDSClientSecurity
    var metadata: Metadata
    var types: Set<String>
    var recorder: Recorder

    /// Runs the stream until cancelled; like Envoy, retries with back-off when the server turns
    /// the stream away (RESOURCE_EXHAUSTED, UNAVAILABLE).
    func run(delta: Bool) async {
        for attempt in 1...100 where !Task.isCancelled {
            do {
                if delta { try await runDelta() } else { try await runStateOfTheWorld() }
                return
            } catch let error as RPCError where [.resourceExhausted, .unavailable].contains(error.code) && attempt < 100 {
                recorder.retried()
                try? await Task.sleep(for: .milliseconds(Int.random(in: 100...min(100 * attempt, 2000))))
            } catch is CancellationError {
                return
            } catch {
                if !Task.isCancelled { recorder.failed(index, error) }
                return
            }
        }
    }

    static func edsClusters(_ resources: [Google_Protobuf_Any]) -> (all: [String], eds: [String]) {
        let clusters = resources.compactMap { try? Envoy_Config_Cluster_V3_Cluster(unpackingAny: $0) }
        return (clusters.map(\.name), clusters.filter { $0.type == .eds }.map(\.name))
    }

    static func routeNames(_ resources: [Google_Protobuf_Any]) -> [String] {
        let listeners = resources.compactMap { try? Envoy_Config_Listener_V3_Listener(unpackingAny: $0) }
        let managers = listeners.flatMap { $0.filterChains.flatMap(\.filters) }
            .compactMap { try? Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager(unpackingAny: $0.typedConfig) }
        return Set(managers.compactMap { manager -> String? in if case .rds(let rds) = manager.routeSpecifier { return rds.routeConfigName } else { return nil } }).sorted()
    }

    private func runStateOfTheWorld() async throws {
        try await ADSTestClient.withStream(to: address, security: security, metadata: metadata) { conversation in
            var names: [String: [String]] = [:]
            var accepted: [String: (version: String, nonce: String)] = [:]
            var seen: Set<String> = []
            for typeURL in [XDSTypeURL.cluster, XDSTypeURL.listener] where types.contains(typeURL) {
                conversation.request(typeURL, node: node)
            }
            // Subscribing to nothing: the stream is open and carries no request (what a connection
            // alone costs the server).
            if types.isEmpty { recorder.synced(index) }
            func subscribe(_ typeURL: String, _ wanted: [String]) {
                guard types.contains(typeURL), wanted != names[typeURL] else { return }
                names[typeURL] = wanted
                conversation.request(typeURL, names: wanted, version: accepted[typeURL]?.version ?? "", nonce: accepted[typeURL]?.nonce ?? "")
            }
            while !Task.isCancelled {
                let response = try await conversation.receive(timeout: .seconds(86400))
                accepted[response.typeURL] = (response.versionInfo, response.nonce)
                // In state of the world a response is the whole set: named by position here.
                if recorder.keepsResources {
                    recorder.accepted(index, response.typeURL, replacing: response.resources.enumerated().map { ("\($0.offset)", $0.element.value) })
                }
                conversation.request(response.typeURL, names: names[response.typeURL] ?? [], version: response.versionInfo, nonce: response.nonce)
                switch response.typeURL {
                case XDSTypeURL.cluster:
                    let clusters = Self.edsClusters(response.resources)
                    recorder.clusters(index, names: clusters.all, eds: Set(clusters.eds))
                    subscribe(XDSTypeURL.endpoint, clusters.eds.sorted())
                case XDSTypeURL.listener:
                    subscribe(XDSTypeURL.route, Self.routeNames(response.resources))
                case XDSTypeURL.endpoint:
                    recorder.endpoints(index, names: response.resources.compactMap { try? Envoy_Config_Endpoint_V3_ClusterLoadAssignment(unpackingAny: $0).clusterName })
                default:
                    break
                }
                seen.insert(response.typeURL)
                if seen.isSuperset(of: types.intersection([XDSTypeURL.cluster, XDSTypeURL.listener])) { recorder.synced(index) }
            }
        }
    }

    private func runDelta() async throws {
        try await ADSTestClient.withDeltaStream(to: address, security: security, metadata: metadata) { conversation in
            var held: [String: Set<String>] = [:]
            var subscribed: [String: Set<String>] = [:]
            var edsClusters: Set<String> = []
            var seen: Set<String> = []
            for typeURL in [XDSTypeURL.cluster, XDSTypeURL.listener] where types.contains(typeURL) {
                conversation.request(typeURL, node: node)
            }
            // Subscribing to nothing: the stream is open and carries no request (what a connection
            // alone costs the server).
            if types.isEmpty { recorder.synced(index) }
            func resubscribe(_ typeURL: String, _ wanted: Set<String>) {
                guard types.contains(typeURL) else { return }
                let current = subscribed[typeURL] ?? []
                let add = wanted.subtracting(current), remove = current.subtracting(wanted)
                guard !add.isEmpty || !remove.isEmpty else { return }
                subscribed[typeURL] = wanted
                conversation.request(typeURL, subscribe: add.sorted(), unsubscribe: remove.sorted())
            }
            while !Task.isCancelled {
                let response = try await conversation.receive(timeout: .seconds(86400))
                conversation.request(response.typeURL, nonce: response.nonce)
                if recorder.keepsResources {
                    recorder.accepted(index, response.typeURL, updating: response.resources.map { ($0.name, $0.resource.value) }, removing: response.removedResources)
                }
                var names = held[response.typeURL] ?? []
                names.formUnion(response.resources.map(\.name))
                names.subtract(response.removedResources)
                held[response.typeURL] = names
                switch response.typeURL {
                case XDSTypeURL.cluster:
                    let clusters = Self.edsClusters(response.resources.map(\.resource))
                    edsClusters.formUnion(clusters.eds)
                    edsClusters.subtract(response.removedResources)
                    recorder.clusters(index, names: names, eds: edsClusters)
                    resubscribe(XDSTypeURL.endpoint, edsClusters)
                case XDSTypeURL.listener:
                    resubscribe(XDSTypeURL.route, Set(Self.routeNames(response.resources.map(\.resource))))
                case XDSTypeURL.endpoint:
                    recorder.endpoints(index, names: response.resources.map(\.name))
                default:
                    break
                }
                seen.insert(response.typeURL)
                if seen.isSuperset(of: types.intersection([XDSTypeURL.cluster, XDSTypeURL.listener])) { recorder.synced(index) }
            }
        }
    }
}

/// Resident memory and CPU time of a process, from /proc.
enum ProcessFigures {
    static func residentBytes(_ pid: Int32) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kilobytes = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        else { return nil }
        return kilobytes * 1024
    }

    static func cpuSeconds(_ pid: Int32) -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")")
        else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // After the command: state is field 3, utime 14 and stime 15 (1-based over the whole line).
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}
