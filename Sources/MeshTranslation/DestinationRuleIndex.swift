public import MeshModel

/// Finds the DestinationRule that applies to a host for a proxy, as Istio does: a rule in the
/// proxy's namespace, else in the service's namespace, else in the root namespace; within a
/// namespace an exact host beats the longest matching wildcard; rules must be exported to the
/// proxy's namespace and, when they have a `workloadSelector`, select the proxy's workload.
public struct DestinationRuleIndex: Sendable {
    let rules: [String: [Configured<DestinationRule>]]
    let settings: MeshSettings

    /// An index over the snapshot's DestinationRules.
    public init(snapshot: MeshSnapshot) {
        rules = snapshot.destinationRulesByNamespace
        settings = snapshot.settings
    }

    /// The rule for `service` as seen from `proxy`, if any.
    public func rule(for service: MeshService, proxy: WorkloadInstance) -> Configured<DestinationRule>? {
        for namespace in [proxy.namespace, service.namespace, settings.rootNamespace] {
            let candidates = (rules[namespace] ?? []).filter { rule in
                ExportScope(exportTo: rule.spec.exportTo, namespace: namespace).isVisible(from: proxy.namespace)
                    && (rule.spec.workloadSelector?.matchLabels).map { proxy.matches($0) } ?? true
                    && HostName.matches(service.hostname, pattern: HostName.resolve(rule.spec.host, in: namespace, domainSuffix: settings.domainSuffix))
            }
            let ranked = candidates.sorted { lhs, rhs in
                let left = HostName.resolve(lhs.spec.host, in: namespace, domainSuffix: settings.domainSuffix)
                let right = HostName.resolve(rhs.spec.host, in: namespace, domainSuffix: settings.domainSuffix)
                let leftExact = !HostName.isWildcard(left), rightExact = !HostName.isWildcard(right)
                if leftExact != rightExact { return leftExact }
                if left.count != right.count { return left.count > right.count }
                return (lhs.spec.workloadSelector != nil ? 0 : 1, lhs.metadata.name) < (rhs.spec.workloadSelector != nil ? 0 : 1, rhs.metadata.name)
            }
            if let best = ranked.first { return best }
        }
        return nil
    }
}

extension DestinationRule {
    /// The client TLS settings for `port`: port-level settings override the top level.
    public func tlsSettings(port: UInt32) -> ClientTLSSettings? {
        let portLevel = trafficPolicy?.portLevelSettings?.first { $0.port?.number == port }
        return portLevel?.tls ?? trafficPolicy?.tls
    }
}
