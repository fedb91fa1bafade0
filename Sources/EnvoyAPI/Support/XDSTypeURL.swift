/// The type URLs of the xDS resources meshd serves.
public enum XDSTypeURL {
    /// Listeners (LDS).
    public static let listener = "type.googleapis.com/envoy.config.listener.v3.Listener"
    /// Route configurations (RDS).
    public static let route = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
    /// Clusters (CDS).
    public static let cluster = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
    /// Cluster load assignments (EDS).
    public static let endpoint = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
    /// TLS secrets (SDS).
    public static let secret = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"

    /// Every type meshd serves, in the order a change is pushed: clusters before their endpoints,
    /// both before the listeners and routes that use them, secrets last.
    public static let pushOrder = [cluster, endpoint, listener, route, secret]
    /// Not a resource: the type Istio's agent sends its workload's probe result under (a request
    /// with `error_detail` set reports the probe failing, without it passing).
    public static let healthInformation = "type.googleapis.com/istio.v1.HealthInformation"

    /// Types whose subscription is a wildcard by default (the whole set is always sent).
    public static let wildcardTypes: Set<String> = [listener, cluster]

    /// A short name for logs and metrics labels (`lds`, `cds`, ...); the URL itself when unknown.
    public static func shortName(_ typeURL: String) -> String {
        switch typeURL {
        case listener: "lds"
        case route: "rds"
        case cluster: "cds"
        case endpoint: "eds"
        case secret: "sds"
        default: typeURL
        }
    }
}
