internal import MeshModel

/// The traffic policy that applies to one cluster, after Istio's override rules: the rule's
/// top-level policy, overridden field by field by its `portLevelSettings` for the port, then by the
/// subset's policy, then by the subset's port-level settings.
struct EffectivePolicy: Sendable {
    var loadBalancer: LoadBalancerSettings?
    var connectionPool: ConnectionPoolSettings?
    var outlierDetection: OutlierDetection?
    var tls: ClientTLSSettings?

    init(rule: DestinationRule?, port: UInt32, subset: String? = nil) {
        guard let rule else { return }
        apply(rule.trafficPolicy, port: port)
        if let subset, let policy = rule.subsets?.first(where: { $0.name == subset })?.trafficPolicy {
            apply(policy, port: port)
        }
    }

    private mutating func apply(_ policy: TrafficPolicy?, port: UInt32) {
        guard let policy else { return }
        loadBalancer = policy.loadBalancer ?? loadBalancer
        connectionPool = policy.connectionPool ?? connectionPool
        outlierDetection = policy.outlierDetection ?? outlierDetection
        tls = policy.tls ?? tls
        if let portLevel = policy.portLevelSettings?.first(where: { $0.port?.number == port }) {
            loadBalancer = portLevel.loadBalancer ?? loadBalancer
            connectionPool = portLevel.connectionPool ?? connectionPool
            outlierDetection = portLevel.outlierDetection ?? outlierDetection
            tls = portLevel.tls ?? tls
        }
    }
}

/// Finds the VirtualService that routes a host for a proxy: visible to the proxy's namespace
/// (`exportTo`), bound to the mesh (`gateways` empty or containing `mesh`), with a host matching
/// the service — an exact host before the longest wildcard, then the proxy's namespace, then the
/// service's, then by namespace and name.
struct VirtualServiceIndex: Sendable {
    let services: [Configured<VirtualService>]
    let settings: MeshSettings

    init(snapshot: MeshSnapshot) {
        services = snapshot.virtualServices.filter { service in
            let gateways = service.spec.gateways ?? []
            return gateways.isEmpty || gateways.contains("mesh")
        }
        settings = snapshot.settings
    }

    func resolvedHosts(_ service: Configured<VirtualService>) -> [String] {
        (service.spec.hosts ?? []).map { HostName.resolve($0, in: service.metadata.namespace, domainSuffix: settings.domainSuffix) }
    }

    func virtualService(for hostname: String, proxyNamespace: String, serviceNamespace: String) -> Configured<VirtualService>? {
        var best: (service: Configured<VirtualService>, rank: [Int], name: String)? = nil
        for candidate in services where ExportScope(exportTo: candidate.spec.exportTo, namespace: candidate.metadata.namespace).isVisible(from: proxyNamespace) {
            for host in resolvedHosts(candidate) where HostName.matches(hostname, pattern: host) {
                let exact = HostName.isWildcard(host) ? 1 : 0
                let namespaceRank = candidate.metadata.namespace == proxyNamespace ? 0 : (candidate.metadata.namespace == serviceNamespace ? 1 : 2)
                let rank = [exact, -host.count, namespaceRank]
                let name = "\(candidate.metadata.namespace)/\(candidate.metadata.name)"
                if best == nil || (rank, name) < (best!.rank, best!.name) {
                    best = (candidate, rank, name)
                }
            }
        }
        return best?.service
    }
}

private func < (lhs: ([Int], String), rhs: ([Int], String)) -> Bool {
    if lhs.0 != rhs.0 { return lhs.0.lexicographicallyPrecedes(rhs.0) }
    return lhs.1 < rhs.1
}
