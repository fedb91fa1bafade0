internal import Foundation
public import MeshClient
internal import MeshModel
internal import MeshTranslation

/// Builds the service graph from the mesh, the proxies' status and the traffic counted over a
/// window. Pure: the same inputs give the same graph.
///
/// Edges go caller → service (what a caller asked for) and service → workload (who answered), as
/// Kiali's versioned-app graph draws them; rates, error rates and latency quantiles are the
/// difference between the newest totals and the totals one window ago.
enum ServiceGraphBuilder {
    /// The graph of `snapshot`'s mesh with the traffic between `base` and `current`
    /// (`seconds` apart).
    static func graph(
        snapshot: MeshSnapshot, proxies: [ProxyStatus], current: [TrafficKey: TrafficTotals], base: [TrafficKey: TrafficTotals], seconds: Double, now: Date
    ) -> ServiceGraph {
        var window: [TrafficKey: TrafficTotals] = [:]
        for (key, totals) in current {
            let delta = totals - (base[key] ?? TrafficTotals())
            if delta.requests > 0 || delta.mutualTLS > 0 || delta.plaintext > 0 { window[key] = delta }
        }
        let span = max(seconds, 1)

        // Nodes: every workload, every mesh-internal service, and whatever traffic names.
        var nodes: [String: ServiceGraph.Node] = [:]
        let sync = syncStates(proxies)
        for workload in snapshot.registry.workloads.values {
            let id = workloadID(workload.namespace + "/" + workload.name)
            nodes[id] = ServiceGraph.Node(
                id: id, kind: "workload", namespace: workload.namespace, name: workload.name, app: workload.labels["app"], version: workload.labels["version"],
                sync: sync[workload.namespace + "/" + workload.name] ?? "not connected")
        }
        for service in snapshot.registry.services where service.location == .MESH_INTERNAL {
            nodes[serviceID(service.hostname)] = ServiceGraph.Node(id: serviceID(service.hostname), kind: "service", namespace: service.namespace, name: service.hostname)
        }
        func node(workload: String) -> String {
            guard workload != MetricsAttribution.unknown else {
                nodes["unknown"] = ServiceGraph.Node(id: "unknown", kind: "unknown", namespace: "unknown", name: "unknown")
                return "unknown"
            }
            let id = workloadID(workload)
            if nodes[id] == nil {
                let parts = workload.split(separator: "/", maxSplits: 1).map(String.init)
                nodes[id] = ServiceGraph.Node(id: id, kind: "workload", namespace: parts.first ?? "unknown", name: parts.last ?? workload, sync: "not connected")
            }
            return id
        }
        func node(service host: String) -> String {
            let id = serviceID(host)
            if nodes[id] == nil {
                let namespace = snapshot.registry.services.first { $0.hostname == host }?.namespace ?? MetricsAttribution.unknown
                nodes[id] = ServiceGraph.Node(id: id, kind: "service", namespace: namespace, name: host)
            }
            return id
        }

        // Edges: caller → service, service → workload.
        var pairs: [Pair: (TrafficTotals, Set<String>)] = [:]
        for (key, totals) in window {
            let service = node(service: key.service)
            for pair in [Pair(source: node(workload: key.source), target: service), Pair(source: service, target: node(workload: key.destination))] {
                let (sum, protocols) = pairs[pair] ?? (TrafficTotals(), [])
                pairs[pair] = (sum + totals, protocols.union([key.protocolName]))
            }
        }
        let edges = pairs.map { pair, value in
            edge(pair, value.0, protocols: value.1, seconds: span)
        }.sorted { $0.id < $1.id }

        let splits = canarySplits(snapshot: snapshot, window: window)
        let sortedNodes = nodes.values.sorted { ($0.namespace, $0.kind, $0.name) < ($1.namespace, $1.kind, $1.name) }
        return ServiceGraph(
            generatedAt: now.timeIntervalSince1970, windowSeconds: seconds, namespaces: Set(sortedNodes.map(\.namespace)).sorted(),
            nodes: sortedNodes, edges: edges, splits: splits)
    }

    /// One edge's figures per sample interval, from `samples` (oldest first) and the current
    /// totals at `now`; nil when no such edge was ever seen.
    static func series(edge id: String, samples: [TrafficHistory.Sample], current: [TrafficKey: TrafficTotals], now: Date) -> EdgeSeries? {
        let points = samples + [TrafficHistory.Sample(time: now, totals: current)]
        var out: [EdgeSeries.Point] = []
        var seen = false
        var ends: (String, String)? = nil
        for (earlier, later) in zip(points, points.dropFirst()) {
            var sum = TrafficTotals()
            for (key, totals) in later.totals {
                let service = serviceID(key.service)
                let source = key.source == MetricsAttribution.unknown ? "unknown" : workloadID(key.source)
                let destination = key.destination == MetricsAttribution.unknown ? "unknown" : workloadID(key.destination)
                for pair in [Pair(source: source, target: service), Pair(source: service, target: destination)] where pair.id == id {
                    sum = sum + (totals - (earlier.totals[key] ?? TrafficTotals()))
                    seen = true
                    ends = (pair.source, pair.target)
                }
            }
            let seconds = max(later.time.timeIntervalSince(earlier.time), 0.001)
            out.append(EdgeSeries.Point(
                time: later.time.timeIntervalSince1970, requestRate: Double(sum.requests) / seconds,
                errorRate: sum.requests > 0 ? Double(sum.errors) / Double(sum.requests) : 0, p99: sum.duration(quantile: 0.99)))
        }
        guard seen, let ends else { return nil }
        return EdgeSeries(id: id, source: ends.0, target: ends.1, points: out)
    }

    struct Pair: Hashable {
        var source: String
        var target: String
        var id: String { "\(source)>\(target)" }
    }

    static func workloadID(_ workload: String) -> String { "workload:\(workload)" }
    static func serviceID(_ host: String) -> String { "service:\(host)" }

    static func edge(_ pair: Pair, _ totals: TrafficTotals, protocols: Set<String>, seconds: Double) -> ServiceGraph.Edge {
        let security: String
        switch (totals.mutualTLS > 0, totals.plaintext > 0) {
        case (true, false): security = "mutual_tls"
        case (false, true): security = "none"
        case (true, true): security = "mixed"
        case (false, false): security = "unknown"
        }
        return ServiceGraph.Edge(
            id: pair.id, source: pair.source, target: pair.target, requestRate: Double(totals.requests) / seconds,
            errorRate: totals.requests > 0 ? Double(totals.errors) / Double(totals.requests) : 0,
            p50: totals.duration(quantile: 0.5), p99: totals.duration(quantile: 0.99), security: security,
            protocolName: protocols.sorted().joined(separator: ","))
    }

    /// Each proxy's xDS state, per workload: SYNCED when every type is, else the other states.
    static func syncStates(_ proxies: [ProxyStatus]) -> [String: String] {
        var out: [String: String] = [:]
        for proxy in proxies {
            let behind = proxy.types.filter { $0.value.state != "SYNCED" }.sorted { $0.key < $1.key }
            let state = behind.isEmpty ? "SYNCED" : behind.map { "\($0.key) \($0.value.state)" }.joined(separator: ", ")
            // A workload with several proxies shows the worst.
            if out[proxy.workload] == nil || state != "SYNCED" { out[proxy.workload] = state }
        }
        return out
    }

    /// The weighted splits of the VirtualServices: configured weights by the destination's
    /// version (its subset's `version` label, else the subset), and the window's requests by the
    /// answering workload's `version`.
    static func canarySplits(snapshot: MeshSnapshot, window: [TrafficKey: TrafficTotals]) -> [ServiceGraph.Split] {
        var out: [ServiceGraph.Split] = []
        for virtualService in snapshot.virtualServices.sorted(by: { $0.key < $1.key }) {
            let namespace = virtualService.metadata.namespace
            for route in virtualService.spec.http ?? [] {
                let destinations = route.route ?? []
                guard destinations.count > 1 else { continue }
                let host = HostName.resolve(destinations[0].destination.host, in: namespace, domainSuffix: snapshot.settings.domainSuffix)
                let rule = snapshot.destinationRules.first { HostName.resolve($0.spec.host, in: $0.metadata.namespace, domainSuffix: snapshot.settings.domainSuffix) == host }
                var configured: [String: Double] = [:]
                for destination in destinations {
                    let subset = destination.destination.subset ?? ""
                    let version = rule?.spec.subsets?.first { $0.name == subset }?.labels?["version"] ?? (subset.isEmpty ? MetricsAttribution.unknown : subset)
                    configured[version, default: 0] += Double(destination.weight ?? 0)
                }
                var observed: [String: UInt64] = [:]
                for (key, totals) in window where key.service == host && key.destination != MetricsAttribution.unknown {
                    observed[key.version, default: 0] += totals.requests
                }
                let total = Double(observed.values.reduce(0, +))
                let versions = Set(configured.keys).union(observed.keys).sorted()
                out.append(ServiceGraph.Split(
                    virtualService: "\(namespace)/\(virtualService.metadata.name)", service: host,
                    shares: versions.map { version in
                        ServiceGraph.Split.Share(
                            version: version, configured: configured[version], observed: total > 0 ? Double(observed[version] ?? 0) / total * 100 : 0)
                    }))
                break
            }
        }
        return out
    }
}
