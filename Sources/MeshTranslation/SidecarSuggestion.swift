public import MeshModel
internal import EnvoyAPI
internal import Foundation
internal import SwiftProtobuf

/// A Sidecar that scopes a workload's configuration to what it uses (`meshctl sidecar suggest`):
/// the services its proxies sent requests to (their load reports), the services whose ALLOW
/// policies name it as a caller, and the root namespace as Istio imports it; with the size of
/// the workload's configuration before and after.
public struct SidecarSuggestion: Sendable {
    /// One imported host and why.
    public struct Host: Codable, Hashable, Sendable {
        /// As the Sidecar writes it: `namespace/host`.
        public var host: String
        public var reason: String
    }

    /// What a proxy of the workload is sent: resources (listeners, routes, clusters, endpoints)
    /// and their encoded bytes; clusters apart, as a change to any of them is pushed.
    public struct Size: Codable, Hashable, Sendable {
        public var resources: Int
        public var clusters: Int
        public var bytes: Int
    }

    /// `meshctl sidecar suggest`: the Sidecar as YAML, the hosts it imports and why, and the size of
    /// the workload's configuration before and after.
    public struct Report: Codable, Hashable, Sendable {
        public var workload: String
        public var hosts: [Host]
        /// The Sidecar, as YAML ready for `meshctl apply -f`.
        public var sidecar: String
        public var before: Size
        public var after: Size
        /// Requests per cluster the workload's proxies reported since meshd started.
        public var observed: [String: UInt64]

        public init(workload: String, hosts: [Host], sidecar: String, before: Size, after: Size, observed: [String: UInt64]) {
            self.workload = workload
            self.hosts = hosts
            self.sidecar = sidecar
            self.before = before
            self.after = after
            self.observed = observed
        }
    }

    /// `namespace/name`.
    public var workload: String
    public var hosts: [Host]
    /// The Sidecar: the one that applies now with its egress hosts replaced, or a new one
    /// selecting the workload's labels.
    public var sidecar: MeshResource
    public var before: Size
    public var after: Size
    /// Requests per cluster the workload's proxies reported.
    public var observed: [String: UInt64]

    /// The suggestion for `id` given the requests per cluster its proxies reported.
    public static func make(for id: ServiceRegistry.WorkloadID, in snapshot: MeshSnapshot, observed: [String: UInt64]) -> SidecarSuggestion? {
        guard let workload = snapshot.registry.workload(id) else { return nil }
        var hosts: [String: String] = [:]
        // Services the proxies sent requests to, by their outbound clusters' host.
        for (cluster, count) in observed where count > 0 {
            let parts = cluster.split(separator: "|", omittingEmptySubsequences: false)
            guard parts.count == 4, parts[0] == "outbound", let service = snapshot.registry.service(hostname: String(parts[3]), visibleFrom: workload.namespace) else { continue }
            let key = "\(service.namespace)/\(service.hostname)"
            if hosts[key] == nil { hosts[key] = "requests seen" }
        }
        // Services whose ALLOW policies name the workload as a caller.
        let principal = "\(snapshot.settings.trustDomain)/ns/\(workload.namespace)/sa/\(workload.serviceAccount)"
        let account = "\(workload.namespace)/\(workload.serviceAccount)"
        for policy in snapshot.authorizationPolicies where (policy.spec.action ?? .ALLOW) == .ALLOW {
            let names = (policy.spec.rules ?? []).flatMap { $0.from ?? [] }.compactMap(\.source).contains { source in
                (source.principals ?? []).contains(principal) || (source.serviceAccounts ?? []).contains(account)
            }
            guard names else { continue }
            for server in snapshot.registry.workloads.values where policy.selects(server, rootNamespace: snapshot.settings.rootNamespace) {
                for service in snapshot.registry.services(servedBy: server) {
                    let key = "\(service.namespace)/\(service.hostname)"
                    if hosts[key] == nil { hosts[key] = "allowed by AuthorizationPolicy \(policy.metadata.namespace)/\(policy.metadata.name)" }
                }
            }
        }
        hosts["\(snapshot.settings.rootNamespace)/*"] = "the root namespace, as Istio imports it"

        let egressHosts = hosts.keys.sorted()
        let sidecar = scoped(workload, in: snapshot, hosts: egressHosts)
        let scopedSnapshot = snapshot.adding([sidecar])
        return SidecarSuggestion(
            workload: "\(workload.namespace)/\(workload.name)", hosts: egressHosts.map { Host(host: $0, reason: hosts[$0]!) }, sidecar: sidecar,
            before: size(of: id, in: snapshot), after: size(of: id, in: scopedSnapshot), observed: observed)
    }

    /// The Sidecar that applies to `workload` with every egress listener's hosts replaced, or a
    /// new one selecting its labels (named after it) when none applies or the one that applies
    /// is shared (a namespace's or the root namespace's default).
    static func scoped(_ workload: WorkloadInstance, in snapshot: MeshSnapshot, hosts: [String]) -> MeshResource {
        let current = SidecarScope.selectSidecar(for: workload, in: snapshot)
        let own = current.flatMap { current in
            current.metadata.namespace == workload.namespace && !(current.spec.workloadSelector?.labels ?? [:]).isEmpty ? current : nil
        }
        var spec = current?.spec ?? Sidecar()
        if spec.egress?.isEmpty ?? true {
            spec.egress = [IstioEgressListener(hosts: hosts)]
        } else {
            for index in spec.egress!.indices { spec.egress![index].hosts = hosts }
        }
        var metadata: ObjectMeta
        if let own {
            metadata = own.metadata
        } else {
            metadata = ObjectMeta(name: workload.name, namespace: workload.namespace)
            spec.workloadSelector = WorkloadSelector(labels: workload.labels)
        }
        metadata.resourceVersion = nil
        metadata.annotations["meshd.io/suggested-by"] = "meshctl sidecar suggest"
        return MeshResource(apiVersion: "networking.istio.io/v1", metadata: metadata, spec: .sidecar(spec))
    }

    /// What the workload's proxy is sent in `snapshot`.
    static func size(of id: ServiceRegistry.WorkloadID, in snapshot: MeshSnapshot) -> Size {
        let resources = ConfigurationDiff.configuration(of: id, in: snapshot, memo: nil)
        var size = Size(resources: 0, clusters: 0, bytes: 0)
        for type in [XDSTypeURL.listener, XDSTypeURL.route, XDSTypeURL.cluster, XDSTypeURL.endpoint] {
            let ofType = resources.resources(ofType: type)
            size.resources += ofType.count
            size.bytes += ofType.values.reduce(0) { $0 + $1.body.value.count }
            if type == XDSTypeURL.cluster { size.clusters = ofType.count }
        }
        return size
    }

    /// Workloads whose configuration has more than `factor` times the clusters they sent requests
    /// to, with both counts (for `analyze`).
    public static func oversized(in snapshot: MeshSnapshot, observed: [String: [String: UInt64]], factor: Int = 10) -> [(workload: String, clusters: Int, used: Int)] {
        var out: [(String, Int, Int)] = []
        for (name, counts) in observed.sorted(by: { $0.key < $1.key }) {
            let parts = name.split(separator: "/", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { continue }
            let used = counts.filter { $0.value > 0 && $0.key.hasPrefix("outbound|") }.count
            guard used > 0 else { continue }
            let id = ServiceRegistry.WorkloadID(namespace: parts[0], name: parts[1])
            guard snapshot.registry.workload(id) != nil else { continue }
            let clusters = ConfigurationDiff.configuration(of: id, in: snapshot, memo: nil).resources(ofType: XDSTypeURL.cluster).keys.filter { $0.hasPrefix("outbound|") }.count
            if clusters > factor * used { out.append((name, clusters, used)) }
        }
        return out
    }
}
