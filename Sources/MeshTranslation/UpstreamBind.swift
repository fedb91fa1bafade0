internal import EnvoyAPI
internal import MeshModel

/// Which address a sidecar's upstream connections come from, and so what each of its clusters
/// says about it.
///
/// A sidecar connects to mesh services from its workload's address, so that servers see who calls
/// (`source.ip`, `ipBlocks`) even when every workload shares one machine. Where that is said
/// decides what proxies can share:
/// - A bootstrap from `meshctl bootstrap` binds the address for all its clusters
///   (`cluster_manager.upstream_bind_config`) and names it in the node metadata
///   (`MESHD_UPSTREAM_BIND`). The proxy's mesh clusters then carry no bind of their
///   own — the same bytes for every proxy that sees the service — and the clusters that must not
///   bind it (services outside the mesh, the local app, trace collectors) carry an empty bind,
///   which overrides the bootstrap's.
/// - A proxy whose bootstrap says nothing gets the bind in each of its mesh clusters, as before.
public struct UpstreamBind: Hashable, Sendable {
    /// The address the proxy's bootstrap binds every cluster to (`nil`: its bootstrap binds none).
    public var bootstrapAddress: String?

    /// A proxy whose bootstrap binds `bootstrapAddress` (`nil`: binds nothing).
    public init(bootstrapAddress: String? = nil) {
        self.bootstrapAddress = bootstrapAddress
    }

    /// What one cluster says about its upstream bind.
    enum ClusterBind: Hashable, Sendable {
        /// Nothing: the bootstrap's bind, if any, applies.
        case inherited
        /// Connect from this address.
        case source(String)
        /// An empty bind: connect from whatever address the kernel picks, whatever the bootstrap says.
        case unbound

        /// Sets the cluster's `upstream_bind_config` accordingly.
        func apply(to cluster: inout Envoy_Config_Cluster_V3_Cluster) {
            switch self {
            case .inherited: break
            case .source(let address):
                var bind = Envoy_Config_Core_V3_BindConfig()
                bind.sourceAddress = Envoy.address(address, port: 0).socketAddress
                cluster.upstreamBindConfig = bind
            case .unbound:
                cluster.upstreamBindConfig = Envoy_Config_Core_V3_BindConfig()
            }
        }
    }

    /// The bind of a cluster to a service inside the mesh, for the sidecar of `workload`.
    func meshCluster(workload: WorkloadInstance) -> ClusterBind {
        guard IPAddress(workload.address) != nil else { return otherCluster }
        return bootstrapAddress == workload.address ? .inherited : .source(workload.address)
    }

    /// The bind of any other cluster: none.
    var otherCluster: ClusterBind {
        bootstrapAddress == nil ? .inherited : .unbound
    }
}
