internal import EnvoyAPI
internal import MeshModel
internal import SwiftProtobuf

/// A locality, `region/zone/subzone` (a missing part is empty).
struct Locality: Hashable, Sendable {
    var region = ""
    var zone = ""
    var subzone = ""

    /// The locality `text` spells (`region/zone/subzone`; the subzone keeps any further `/`).
    init(_ text: String?) {
        guard let text, !text.isEmpty else { return }
        let parts = text.split(separator: "/", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
        region = parts[0]
        if parts.count > 1 { zone = parts[1] }
        if parts.count > 2 { subzone = parts[2] }
    }

    init(_ envoy: Envoy_Config_Core_V3_Locality) {
        region = envoy.region
        zone = envoy.zone
        subzone = envoy.subZone
    }

    var envoy: Envoy_Config_Core_V3_Locality {
        var locality = Envoy_Config_Core_V3_Locality()
        locality.region = region
        locality.zone = zone
        locality.subZone = subzone
        return locality
    }

    /// Whether this locality is one `pattern` names (Istio's rule localities: `region/zone/subzone`,
    /// `*` for any value of a part; a left-out zone or subzone matches any).
    func matches(_ pattern: String) -> Bool {
        let rule = Locality(pattern)
        return (rule.region == "*" || rule.region == region)
            && (rule.zone == "*" || rule.zone.isEmpty || rule.zone == zone)
            && (rule.subzone == "*" || rule.subzone.isEmpty || rule.subzone == subzone)
    }

    /// How far `other` is from this locality, as Istio ranks priorities: 0 same subzone, 1 same
    /// zone, 2 same region, 3 another region.
    func distance(to other: Locality) -> Int {
        guard region == other.region else { return 3 }
        guard zone == other.zone else { return 2 }
        return subzone == other.subzone ? 0 : 1
    }

    /// The labels Istio adds to a workload's own for its place in the topology (what
    /// `failoverPriority` may name).
    static func topologyLabels(locality: String?, network: String?) -> [String: String] {
        let place = Locality(locality)
        var labels: [String: String] = [:]
        if !place.region.isEmpty { labels["topology.kubernetes.io/region"] = place.region }
        if !place.zone.isEmpty { labels["topology.kubernetes.io/zone"] = place.zone }
        if !place.subzone.isEmpty { labels["topology.istio.io/subzone"] = place.subzone }
        if let network, !network.isEmpty { labels["topology.istio.io/network"] = network }
        return labels
    }
}

extension WorkloadInstance {
    /// The labels `failoverPriority` compares: the workload's, with its topology as Istio adds it.
    var labelsWithTopology: [String: String] {
        labels.merging(Locality.topologyLabels(locality: locality, network: network)) { _, topology in topology }
    }
}

/// What a load assignment reads of the client under Istio's locality load balancing
/// (DestinationRule `loadBalancer.localityLbSetting`): `nil` when the assignment is the same for
/// every client, so proxies keep sharing it. Istio's default setting is enabled with nothing else
/// set, which orders endpoints by distance only when outlier detection is on (without it Envoy
/// would never leave the first priority).
struct LocalityView: Hashable, Sendable {
    /// The client's locality.
    var client: Locality
    /// The setting that applies.
    var setting: LocalityLoadBalancerSetting
    /// The client's values of the labels `failoverPriority` names (with its topology labels);
    /// empty when `failoverPriority` is not used.
    var priorityLabels: [String: String]

    /// The view of `client` under `policy` (the effective policy of one cluster).
    init?(policy: EffectivePolicy, client: WorkloadInstance) {
        // The common case on the push path, decided before anything is parsed: no setting, and
        // no outlier detection for the default to act on.
        guard policy.loadBalancer?.localityLbSetting != nil || policy.outlierDetection != nil else { return nil }
        let setting = policy.loadBalancer?.localityLbSetting ?? LocalityLoadBalancerSetting(enabled: true)
        guard setting.enabled != false else { return nil }
        let place = Locality(client.locality)
        if let distribute = setting.distribute, !distribute.isEmpty {
            // Only the first rule whose `from` names the client acts; with none, nothing changes.
            guard distribute.contains(where: { place.matches($0.from ?? "") }) else { return nil }
            self.init(client: place, setting: setting, priorityLabels: [:])
            return
        }
        guard policy.outlierDetection != nil else { return nil }
        var labels: [String: String] = [:]
        let priorities = setting.failoverPriority ?? []
        let clientLabels = client.labelsWithTopology
        if !priorities.isEmpty, !clientLabels.isEmpty {
            for entry in priorities {
                let name = Self.priorityLabel(entry).name
                labels[name] = clientLabels[name] ?? ""
            }
        }
        self.init(client: place, setting: setting, priorityLabels: labels)
    }

    private init(client: Locality, setting: LocalityLoadBalancerSetting, priorityLabels: [String: String]) {
        self.client = client
        self.setting = setting
        self.priorityLabels = priorityLabels
    }

    /// Whether a cluster with `policy` weighs localities (Envoy's `locality_weighted_lb_config`),
    /// as Istio decides: with `distribute`, or with failover rules and outlier detection.
    static func weighsLocalities(_ policy: EffectivePolicy) -> Bool {
        guard let setting = policy.loadBalancer?.localityLbSetting, setting.enabled != false else { return false }
        if !(setting.distribute ?? []).isEmpty { return true }
        let hasFailover = !(setting.failover ?? []).isEmpty || !(setting.failoverPriority ?? []).isEmpty
        return hasFailover && policy.outlierDetection != nil
    }

    /// A `failoverPriority` entry: a label name, or `name=value` (the value the client is taken to
    /// have).
    static func priorityLabel(_ entry: String) -> (name: String, value: String?) {
        guard let separator = entry.firstIndex(of: "=") else { return (entry, nil) }
        return (String(entry[..<separator]), String(entry[entry.index(after: separator)...]))
    }

    /// One locality's endpoints before the view acts: the Envoy group and the workloads behind its
    /// endpoints, in the same order.
    struct Group {
        var endpoints: Envoy_Config_Endpoint_V3_LocalityLbEndpoints
        var instances: [WorkloadInstance]
    }

    /// The groups with Istio's weights and priorities for this client.
    func apply(to groups: [Group]) -> [Envoy_Config_Endpoint_V3_LocalityLbEndpoints] {
        var result = groups.map { group in
            var endpoints = group.endpoints
            endpoints.loadBalancingWeight = Envoy.uint32(Self.weight(of: endpoints.lbEndpoints))
            return endpoints
        }
        if let distribute = setting.distribute, !distribute.isEmpty {
            applyWeights(distribute, to: &result)
            return result
        }
        let failover = setting.failover ?? []
        let priorities = setting.failoverPriority ?? []
        if !priorities.isEmpty, !priorityLabels.isEmpty {
            result = splitByLabels(groups, priorities: priorities)
            if !failover.isEmpty { applyDistance(failover, to: &result) }
        } else {
            applyDistance(failover, to: &result)
        }
        return result
    }

    private static func weight(of endpoints: [LbEndpoint]) -> UInt32 {
        endpoints.reduce(0) { $0 + ($1.hasLoadBalancingWeight ? $1.loadBalancingWeight.value : 1) }
    }

    /// `distribute`: the first rule whose `from` names the client gives each `to` locality its
    /// share (split over the groups it matches by their own weights, rounded up); localities no
    /// `to` names get nothing.
    private func applyWeights(_ rules: [LocalityLoadBalancerSetting.Distribute], to groups: inout [Envoy_Config_Endpoint_V3_LocalityLbEndpoints]) {
        guard let rule = rules.first(where: { client.matches($0.from ?? "") }) else { return }
        var unclaimed = Set(groups.indices)
        let targets = rule.to ?? [:]
        for target in targets.keys.sorted() {
            let share = UInt64(targets[target]!)
            let claimed = groups.indices.filter { unclaimed.contains($0) && Locality(groups[$0].locality).matches(target) }
            let total = claimed.reduce(UInt64(0)) { $0 + UInt64(groups[$1].loadBalancingWeight.value) }
            for index in claimed {
                unclaimed.remove(index)
                let weighted = (UInt64(groups[index].loadBalancingWeight.value) * share + total - 1) / max(total, 1)
                if weighted > 0 { groups[index].loadBalancingWeight = Envoy.uint32(UInt32(clamping: weighted)) }
            }
        }
        for index in unclaimed { groups[index].lbEndpoints = [] }
    }

    /// Priorities by distance from the client (same subzone first, then zone, region, the rest);
    /// a `failover` rule from the client's region puts every other region but its `to` last.
    /// Existing priorities (from `failoverPriority`) rank first.
    private func applyDistance(_ failover: [LocalityLoadBalancerSetting.Failover], to groups: inout [Envoy_Config_Endpoint_V3_LocalityLbEndpoints]) {
        let rule = failover.first { $0.from == client.region }
        let ranks = groups.map { group -> Int in
            let place = Locality(group.locality)
            var distance = client.distance(to: place)
            if distance == 3, let rule, place.region != rule.to { distance = 4 }
            return Int(group.priority) * 5 + distance
        }
        let order = Array(Set(ranks)).sorted()
        for index in groups.indices { groups[index].priority = UInt32(order.firstIndex(of: ranks[index])!) }
    }

    /// `failoverPriority`: each locality's endpoints split by how many of the labels, in order,
    /// they share with the client (all: first priority); priorities then numbered without gaps.
    private func splitByLabels(_ groups: [Group], priorities: [String]) -> [Envoy_Config_Endpoint_V3_LocalityLbEndpoints] {
        let names = priorities.map(Self.priorityLabel)
        var split: [Envoy_Config_Endpoint_V3_LocalityLbEndpoints] = []
        for group in groups {
            var byRank: [Int: [LbEndpoint]] = [:]
            for (endpoint, instance) in zip(group.endpoints.lbEndpoints, group.instances) {
                let labels = instance.labelsWithTopology
                let mismatch = names.firstIndex { ($0.value ?? priorityLabels[$0.name] ?? "") != (labels[$0.name] ?? "") }
                byRank[mismatch.map { names.count - $0 } ?? 0, default: []].append(endpoint)
            }
            for rank in byRank.keys.sorted() {
                var part = group.endpoints
                part.lbEndpoints = byRank[rank]!
                part.priority = UInt32(rank)
                part.loadBalancingWeight = Envoy.uint32(Self.weight(of: part.lbEndpoints))
                split.append(part)
            }
        }
        let order = Array(Set(split.map(\.priority))).sorted()
        for index in split.indices { split[index].priority = UInt32(order.firstIndex(of: split[index].priority)!) }
        return split
    }
}
