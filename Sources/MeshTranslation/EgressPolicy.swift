internal import EnvoyAPI
internal import MeshModel
internal import SwiftProtobuf

/// What a sidecar does with a request for a host outside the registry: Istio's
/// `outboundTrafficPolicy` (the Sidecar's, else mesh.yaml's, else ALLOW_ANY).
///
/// Without traffic capture, the app reaches unregistered hosts through the sidecar's outbound
/// HTTP listeners, naming the host in `Host`. ALLOW_ANY forwards such a request to that host
/// (Envoy's dynamic forward proxy, as the cluster `PassthroughCluster`); REGISTRY_ONLY routes it to
/// `BlackHoleCluster`, which has no endpoints, and answers 502, as Istio's `block_all` does. Both
/// clusters' stats count the requests in each sidecar, so per source workload.
///
/// The forward proxy goes wherever `Host` says, so ALLOW_ANY applies only to listeners on
/// loopback addresses, which only the machine's own processes reach; a listener on any other
/// address refuses unknown hosts whatever the mode (a Sidecar that asks for ALLOW_ANY there is
/// refused when it is loaded).
enum EgressPolicy {
    static let passthroughCluster = "PassthroughCluster"
    /// The request header that marks a refused request, so that only those become 502.
    static let blockedHeader = "x-meshd-egress"
    static let blockedBody = "no service in the mesh matches this host\n"

    /// Whether `scope`'s sidecar forwards unknown hosts: its Sidecar's mode (an
    /// `outboundTrafficPolicy` without a mode is Istio's REGISTRY_ONLY), else mesh.yaml's.
    static func allowAny(_ scope: SidecarScope, _ snapshot: MeshSnapshot) -> Bool {
        let mode = scope.sidecar?.spec.outboundTrafficPolicy.map { $0.mode ?? .REGISTRY_ONLY } ?? snapshot.mesh.outboundTrafficMode
        return mode == .ALLOW_ANY
    }


    /// The last virtual host of an outbound route configuration: every host no service claims.
    static func catchAllHost(allowAny: Bool) -> VirtualHost {
        var host = VirtualHost()
        host.name = allowAny ? "allow_any" : "block_all"
        host.domains = ["*"]
        var route = Route()
        route.name = host.name
        var match = Envoy_Config_Route_V3_RouteMatch()
        match.prefix = "/"
        route.match = match
        var action = RouteAction()
        action.cluster = allowAny ? passthroughCluster : ResourceNames.blackHoleCluster
        Envoy.setTimeout(&action, Envoy.duration(seconds: 0))
        route.route = action
        if !allowAny {
            var header = Envoy_Config_Core_V3_HeaderValueOption()
            header.header.key = blockedHeader
            header.header.value = "blocked"
            header.appendAction = .overwriteIfExistsOrAdd
            route.requestHeadersToAdd = [header]
        }
        host.routes = [route]
        return host
    }

    /// The connection manager's part: the forward proxy filter (ALLOW_ANY), or the reply that
    /// turns a refused request's "no healthy upstream" into Istio's 502 (REGISTRY_ONLY).
    static func apply(to hcm: inout HCM, allowAny: Bool) {
        if allowAny {
            var config = Envoy_Extensions_Filters_Http_DynamicForwardProxy_V3_FilterConfig()
            config.dnsCacheConfig = dnsCache
            let router = hcm.httpFilters.count - 1
            hcm.httpFilters.insert(Envoy.httpFilter("envoy.filters.http.dynamic_forward_proxy", config), at: router)
        } else {
            var flags = Envoy_Config_Accesslog_V3_AccessLogFilter()
            var responseFlags = Envoy_Config_Accesslog_V3_ResponseFlagFilter()
            responseFlags.flags = ["UH"]
            flags.responseFlagFilter = responseFlags
            var marked = Envoy_Config_Accesslog_V3_AccessLogFilter()
            var headerFilter = Envoy_Config_Accesslog_V3_HeaderFilter()
            headerFilter.header.name = blockedHeader
            var exact = Envoy_Type_Matcher_V3_StringMatcher()
            exact.exact = "blocked"
            headerFilter.header.stringMatch = exact
            marked.headerFilter = headerFilter
            var both = Envoy_Config_Accesslog_V3_AccessLogFilter()
            var and = Envoy_Config_Accesslog_V3_AndFilter()
            and.filters = [flags, marked]
            both.andFilter = and
            var mapper = Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_ResponseMapper()
            mapper.filter = both
            mapper.statusCode = Envoy.uint32(502)
            var body = Envoy_Config_Core_V3_DataSource()
            body.inlineString = blockedBody
            mapper.body = body
            var reply = Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_LocalReplyConfig()
            reply.mappers = [mapper]
            hcm.localReplyConfig = reply
        }
    }

    /// One DNS cache for the filter and the cluster (they must name the same).
    static var dnsCache: Envoy_Extensions_Common_DynamicForwardProxy_V3_DnsCacheConfig {
        var cache = Envoy_Extensions_Common_DynamicForwardProxy_V3_DnsCacheConfig()
        cache.name = "meshd_passthrough"
        cache.dnsLookupFamily = .v4Preferred
        return cache
    }

    /// The cluster for the mode: `PassthroughCluster` forwards to the host a request names;
    /// `BlackHoleCluster` has no endpoints.
    static func cluster(allowAny: Bool, bind: UpstreamBind.ClusterBind) -> Cluster {
        var cluster = Cluster()
        cluster.connectTimeout = Envoy.duration(seconds: 10)
        if allowAny {
            cluster.name = passthroughCluster
            cluster.lbPolicy = .clusterProvided
            var config = Envoy_Extensions_Clusters_DynamicForwardProxy_V3_ClusterConfig()
            config.dnsCacheConfig = dnsCache
            var type = Envoy_Config_Cluster_V3_Cluster.CustomClusterType()
            type.name = "envoy.clusters.dynamic_forward_proxy"
            type.typedConfig = Google_Protobuf_Any(deterministic: config)
            cluster.clusterType = type
            bind.apply(to: &cluster)
        } else {
            cluster.name = ResourceNames.blackHoleCluster
            cluster.type = .static
        }
        return cluster
    }
}
