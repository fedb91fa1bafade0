public import EnvoyAPI
public import MeshModel

/// The Envoy configuration of one sidecar, and what translation noticed on the way.
public struct ProxyConfiguration: Sendable {
    /// Listeners, route configurations, clusters and load assignments.
    public var resources: XDSResourceSet
    /// Problems that did not stop translation (conflicting ports and the like).
    public var warnings: [String]
}

/// Why a proxy's configuration could not be built.
public struct TranslationError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The reason.
    public var reason: String

    /// An error with `reason`.
    public init(reason: String) {
        self.reason = reason
    }

    public var description: String { reason }
}

/// Translates the mesh into one sidecar's Envoy configuration.
///
/// A pure function of its inputs — the snapshot and the workload — with no I/O, clock or global
/// state, so the same inputs always give byte-identical resources.
public enum SidecarTranslator {
    /// The configuration of the sidecar of `workload`.
    public static func translate(
        _ snapshot: MeshSnapshot, workload id: ServiceRegistry.WorkloadID, upstreamBind: UpstreamBind = UpstreamBind(), memo: TranslationMemo? = nil,
        reporting: MetricsReporting? = nil
    ) throws(TranslationError) -> ProxyConfiguration {
        guard let workload = snapshot.registry.workload(id) else {
            throw TranslationError(reason: "no WorkloadEntry \(id) in the mesh configuration")
        }
        return translate(snapshot, workload: workload, upstreamBind: upstreamBind, memo: memo, reporting: reporting)
    }

    /// The configuration of the sidecar of `workload`; resources whose inputs `memo` has seen
    /// come from it (byte for byte what they would be built as). With `reporting`, its listeners
    /// stream the entries of Istio's standard metrics to meshd.
    public static func translate(
        _ snapshot: MeshSnapshot, workload: WorkloadInstance, upstreamBind: UpstreamBind = UpstreamBind(), memo: TranslationMemo? = nil,
        reporting: MetricsReporting? = nil
    ) -> ProxyConfiguration {
        let scope = SidecarScope(workload: workload, snapshot: snapshot)
        let telemetry = TelemetryPolicy(workload: workload, snapshot: snapshot, reporting: reporting)
        let inbound = InboundBuilder(scope: scope, snapshot: snapshot, telemetry: telemetry)
        var outbound = OutboundBuilder(scope: scope, snapshot: snapshot, inboundBindings: inbound.bindings, telemetry: telemetry, upstreamBind: upstreamBind)
        let ports = outbound.portListeners()

        var resources = XDSResourceSet()
        for listener in inbound.listenerResources(memo: memo, snapshot: snapshot) {
            resources.insert(listener)
        }
        for port in ports {
            let listener = outbound.listener(for: port)
            resources.insert(XDSResource(name: listener.name, message: listener))
            if !port.httpServices.isEmpty {
                resources.insert(outbound.routeConfiguration(for: port, memo: memo))
            }
        }
        let outboundClusters = outbound.clusterResources(memo: memo)
        for cluster in inbound.clusters(bind: upstreamBind.otherCluster) {
            resources.insert(XDSResource(name: cluster.name, message: cluster))
        }
        for cluster in outboundClusters.clusters {
            resources.insert(cluster)
        }
        for cluster in telemetry.collectorClusters(snapshot: snapshot, bind: upstreamBind.otherCluster) {
            resources.insert(XDSResource(name: cluster.name, message: cluster))
        }
        // The clusters the last virtual host of each HTTP port names.
        for allowAny in Set(ports.filter { !$0.httpServices.isEmpty }.map(\.forwardsUnknownHosts)) {
            let egress = EgressPolicy.cluster(allowAny: allowAny, bind: upstreamBind.otherCluster)
            resources.insert(XDSResource(name: egress.name, message: egress))
        }
        for assignment in outboundClusters.loadAssignments {
            resources.insert(assignment)
        }
        return ProxyConfiguration(resources: resources, warnings: scope.warnings + outbound.warnings)
    }
}
