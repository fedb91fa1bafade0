public import EnvoyAPI
internal import SwiftProtobuf
internal import Foundation

/// Follows a request through a proxy's generated configuration the way Envoy would — listener,
/// filter chain, route configuration, virtual host, route, cluster, endpoints — without running
/// Envoy (the approach of Istio's `pilot/pkg/simulation`).
public struct TrafficSimulator {
    /// An HTTP request as the app sends it to its sidecar.
    public struct HTTPRequest: Sendable {
        /// The address the app connects to.
        public var address: String
        /// The port the app connects to.
        public var port: UInt32
        /// The Host header.
        public var authority: String
        /// The path (with query).
        public var path: String
        /// The method.
        public var method: String
        /// Headers, lower-case names.
        public var headers: [String: String]

        /// A request.
        public init(address: String, port: UInt32, authority: String, path: String = "/", method: String = "GET", headers: [String: String] = [:]) {
            self.address = address
            self.port = port
            self.authority = authority
            self.path = path
            self.method = method
            self.headers = headers
        }
    }

    /// Where a request ends up.
    public struct Outcome: Sendable, Equatable {
        /// The listener that accepted the connection.
        public var listener: String
        /// The route configuration (RDS name, or the inline one's name).
        public var routeConfiguration: String
        /// The virtual host that matched.
        public var virtualHost: String
        /// The route that matched.
        public var route: String
        /// The clusters with their weights (one cluster: weight 1).
        public var clusters: [WeightedCluster]
        /// The status of a direct response, if the route answers itself.
        public var directResponse: UInt32?
        /// The endpoints (`ip:port`) of the single cluster, if exactly one.
        public var endpoints: [String]
    }

    /// A cluster a route sends to, and its weight.
    public struct WeightedCluster: Sendable, Equatable {
        /// Cluster name.
        public var name: String
        /// Weight.
        public var weight: UInt32

        /// A weighted cluster.
        public init(name: String, weight: UInt32) {
            self.name = name
            self.weight = weight
        }
    }

    /// Why a request has nowhere to go.
    public struct Failure: Error, Equatable, CustomStringConvertible, Sendable {
        /// What is missing.
        public var description: String
    }

    let listeners: [Envoy_Config_Listener_V3_Listener]
    let routes: [String: Envoy_Config_Route_V3_RouteConfiguration]
    let clusters: [String: Envoy_Config_Cluster_V3_Cluster]
    let assignments: [String: Envoy_Config_Endpoint_V3_ClusterLoadAssignment]

    /// A simulator over one proxy's resources.
    public init(_ resources: XDSResourceSet) {
        listeners = resources.sortedResources(ofType: XDSTypeURL.listener).compactMap { $0.unpack(Envoy_Config_Listener_V3_Listener.self) }
        routes = resources.resources(ofType: XDSTypeURL.route).compactMapValues { $0.unpack(Envoy_Config_Route_V3_RouteConfiguration.self) }
        clusters = resources.resources(ofType: XDSTypeURL.cluster).compactMapValues { $0.unpack(Envoy_Config_Cluster_V3_Cluster.self) }
        assignments = resources.resources(ofType: XDSTypeURL.endpoint).compactMapValues { $0.unpack(Envoy_Config_Endpoint_V3_ClusterLoadAssignment.self) }
    }

    /// The listener bound to `address:port` (or to `0.0.0.0:port`).
    public func listener(address: String, port: UInt32) throws(Failure) -> Envoy_Config_Listener_V3_Listener {
        let match = listeners.first { $0.address.socketAddress.address == address && $0.address.socketAddress.portValue == port }
            ?? listeners.first { $0.address.socketAddress.address == "0.0.0.0" && $0.address.socketAddress.portValue == port }
        guard let match else { throw Failure(description: "no listener on \(address):\(port)") }
        return match
    }

    /// Follows an HTTP request.
    public func http(_ request: HTTPRequest) throws(Failure) -> Outcome {
        let listener = try listener(address: request.address, port: request.port)
        guard let chain = listener.filterChains.first(where: { $0.filters.contains { $0.name == "envoy.filters.network.http_connection_manager" } }),
              let filter = chain.filters.first(where: { $0.name == "envoy.filters.network.http_connection_manager" }),
              let hcm = try? Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager(unpackingAny: filter.typedConfig)
        else {
            throw Failure(description: "listener \(listener.name) does not speak HTTP")
        }
        let config: Envoy_Config_Route_V3_RouteConfiguration
        switch hcm.routeSpecifier {
        case .rds(let rds):
            guard let found = routes[rds.routeConfigName] else {
                throw Failure(description: "route configuration \(rds.routeConfigName) of listener \(listener.name) was not generated")
            }
            config = found
        case .routeConfig(let inline):
            config = inline
        default:
            throw Failure(description: "listener \(listener.name) has no routes")
        }
        guard let host = Self.virtualHost(for: request.authority, in: config) else {
            throw Failure(description: "no virtual host of \(config.name) matches \(request.authority)")
        }
        guard let route = host.routes.first(where: { Self.matches($0.match, request) }) else {
            throw Failure(description: "no route of virtual host \(host.name) matches \(request.method) \(request.path)")
        }
        var outcome = Outcome(listener: listener.name, routeConfiguration: config.name, virtualHost: host.name, route: route.name, clusters: [], directResponse: nil, endpoints: [])
        switch route.action {
        case .route(let action):
            switch action.clusterSpecifier {
            case .cluster(let name): outcome.clusters = [WeightedCluster(name: name, weight: 1)]
            case .weightedClusters(let weighted): outcome.clusters = weighted.clusters.map { WeightedCluster(name: $0.name, weight: $0.weight.value) }
            default: throw Failure(description: "route \(route.name) names no cluster")
            }
        case .directResponse(let direct):
            outcome.directResponse = direct.status
            return outcome
        case .redirect:
            outcome.directResponse = 301
            return outcome
        default:
            throw Failure(description: "route \(route.name) has no action")
        }
        for cluster in outcome.clusters where clusters[cluster.name] == nil {
            throw Failure(description: "route \(route.name) sends to cluster \(cluster.name), which was not generated")
        }
        if outcome.clusters.count == 1 { outcome.endpoints = try endpoints(of: outcome.clusters[0].name) }
        return outcome
    }

    /// Follows a TCP connection: the listener, its cluster and the cluster's endpoints.
    public func tcp(address: String, port: UInt32) throws(Failure) -> (listener: String, cluster: String, endpoints: [String]) {
        let listener = try listener(address: address, port: port)
        guard let filter = listener.filterChains.lazy.compactMap({ $0.filters.first { $0.name == "envoy.filters.network.tcp_proxy" } }).first,
              let proxy = try? Envoy_Extensions_Filters_Network_TcpProxy_V3_TcpProxy(unpackingAny: filter.typedConfig)
        else {
            throw Failure(description: "listener \(listener.name) is not a TCP proxy")
        }
        return (listener.name, proxy.cluster, try endpoints(of: proxy.cluster))
    }

    /// The endpoints (`ip:port`) of a cluster.
    public func endpoints(of clusterName: String) throws(Failure) -> [String] {
        guard let cluster = clusters[clusterName] else { throw Failure(description: "no cluster \(clusterName)") }
        if case .clusterType? = cluster.clusterDiscoveryType { return [] }
        if !cluster.hasLoadAssignment && cluster.type == .eds {
            let name = cluster.edsClusterConfig.serviceName.isEmpty ? cluster.name : cluster.edsClusterConfig.serviceName
            guard assignments[name] != nil else { throw Failure(description: "no endpoints generated for \(name)") }
        }
        return lbEndpoints(of: cluster, allPriorities: true).map { endpoint in
            if case .pipe(let pipe) = endpoint.endpoint.address.address { return "unix://" + pipe.path }
            let socket = endpoint.endpoint.address.socketAddress
            return "\(socket.address):\(socket.portValue)"
        }
    }

    /// A cluster's endpoints: its own load assignment or the one generated for it (EDS); with
    /// `allPriorities` false, only those of its first priority, which get the traffic while they
    /// are healthy. A cluster of its own type (the dynamic forward proxy) finds its endpoints
    /// itself; a STATIC cluster without a load assignment has none.
    func lbEndpoints(of cluster: Envoy_Config_Cluster_V3_Cluster, allPriorities: Bool = false) -> [Envoy_Config_Endpoint_V3_LbEndpoint] {
        if case .clusterType? = cluster.clusterDiscoveryType { return [] }
        let assignment: Envoy_Config_Endpoint_V3_ClusterLoadAssignment
        if cluster.hasLoadAssignment {
            assignment = cluster.loadAssignment
        } else if cluster.type == .eds {
            let name = cluster.edsClusterConfig.serviceName.isEmpty ? cluster.name : cluster.edsClusterConfig.serviceName
            guard let found = assignments[name] else { return [] }
            assignment = found
        } else {
            return []
        }
        let first = assignment.endpoints.map(\.priority).min() ?? 0
        return assignment.endpoints.filter { allPriorities || $0.priority == first }.flatMap(\.lbEndpoints)
    }

    /// The endpoints of a cluster's first priority, each with the share of requests Envoy sends
    /// it while all are healthy: by locality weight first when the cluster weighs localities
    /// (`locality_weighted_lb_config`), then by endpoint weight (1 when unset).
    func lbShares(of cluster: Envoy_Config_Cluster_V3_Cluster) -> [(endpoint: Envoy_Config_Endpoint_V3_LbEndpoint, share: Double)] {
        let endpoints = lbEndpoints(of: cluster)
        guard !endpoints.isEmpty else { return [] }
        func weight(_ endpoint: Envoy_Config_Endpoint_V3_LbEndpoint) -> Double {
            endpoint.hasLoadBalancingWeight ? Double(endpoint.loadBalancingWeight.value) : 1
        }
        guard case .localityWeightedLbConfig? = cluster.commonLbConfig.localityConfigSpecifier else {
            let total = endpoints.reduce(0) { $0 + weight($1) }
            return endpoints.map { ($0, weight($0) / total) }
        }
        let assignment = cluster.hasLoadAssignment ? cluster.loadAssignment : assignments[cluster.edsClusterConfig.serviceName.isEmpty ? cluster.name : cluster.edsClusterConfig.serviceName]
        let first = assignment?.endpoints.map(\.priority).min() ?? 0
        let groups = (assignment?.endpoints ?? []).filter { $0.priority == first && !$0.lbEndpoints.isEmpty }
        let groupTotal = groups.reduce(0) { $0 + Double($1.loadBalancingWeight.value) }
        guard groupTotal > 0 else { return [] }
        return groups.flatMap { group in
            let total = group.lbEndpoints.reduce(0) { $0 + weight($1) }
            return group.lbEndpoints.map { ($0, Double(group.loadBalancingWeight.value) / groupTotal * weight($0) / total) }
        }
    }

    /// Envoy's virtual host selection: exact domain, then `*.suffix` (longest), then `prefix*`,
    /// then `*`.
    static func virtualHost(for authority: String, in config: Envoy_Config_Route_V3_RouteConfiguration) -> Envoy_Config_Route_V3_VirtualHost? {
        let host = authority.lowercased()
        if let exact = config.virtualHosts.first(where: { $0.domains.contains(host) }) { return exact }
        var best: (Envoy_Config_Route_V3_VirtualHost, Int)? = nil
        for virtualHost in config.virtualHosts {
            for domain in virtualHost.domains where domain.hasPrefix("*") && domain != "*" {
                let suffix = String(domain.dropFirst())
                if host.hasSuffix(suffix), suffix.count > (best?.1 ?? -1) { best = (virtualHost, suffix.count) }
            }
        }
        if let best { return best.0 }
        for virtualHost in config.virtualHosts {
            for domain in virtualHost.domains where domain.hasSuffix("*") && domain != "*" {
                if host.hasPrefix(String(domain.dropLast())) { return virtualHost }
            }
        }
        return config.virtualHosts.first { $0.domains.contains("*") }
    }

    static func matches(_ match: Envoy_Config_Route_V3_RouteMatch, _ request: HTTPRequest) -> Bool {
        let path = String(request.path.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0])
        let caseSensitive = !match.hasCaseSensitive || match.caseSensitive.value
        let compare = { (text: String) in caseSensitive ? text : text.lowercased() }
        switch match.pathSpecifier {
        case .prefix(let prefix):
            guard compare(path).hasPrefix(compare(prefix)) else { return false }
        case .path(let exact):
            guard compare(path) == compare(exact) else { return false }
        case .safeRegex(let regex):
            guard fullMatch(regex.regex, path) else { return false }
        case .pathSeparatedPrefix(let prefix):
            guard path == prefix || path.hasPrefix(prefix + "/") else { return false }
        default:
            return false
        }
        var headers = request.headers
        headers[":method"] = request.method
        headers[":authority"] = request.authority
        headers[":path"] = request.path
        for header in match.headers where !RBACEvaluation.headerMatches(header, headers) { return false }
        if !match.queryParameters.isEmpty {
            let query = request.path.split(separator: "?", maxSplits: 1).dropFirst().first.map(String.init) ?? ""
            var params: [String: String] = [:]
            for pair in query.split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1)
                params[String(kv[0])] = kv.count > 1 ? String(kv[1]) : ""
            }
            for parameter in match.queryParameters {
                let value = params[parameter.name]
                switch parameter.queryParameterMatchSpecifier {
                case .stringMatch(let matcher): guard let value, stringMatches(matcher, value) else { return false }
                case .presentMatch(let present): guard (value != nil) == present else { return false }
                default: guard value != nil else { return false }
                }
            }
        }
        return true
    }

    static func stringMatches(_ matcher: Envoy_Type_Matcher_V3_StringMatcher, _ value: String) -> Bool {
        let text = matcher.ignoreCase ? value.lowercased() : value
        let fold = { (pattern: String) in matcher.ignoreCase ? pattern.lowercased() : pattern }
        switch matcher.matchPattern {
        case .exact(let exact): return text == fold(exact)
        case .prefix(let prefix): return text.hasPrefix(fold(prefix))
        case .suffix(let suffix): return text.hasSuffix(fold(suffix))
        case .contains(let part): return text.contains(fold(part))
        case .safeRegex(let regex): return fullMatch(regex.regex, value)
        default: return false
        }
    }

    static func fullMatch(_ pattern: String, _ text: String) -> Bool {
        guard let regex = try? NSRegularExpression(pattern: "^(?:\(pattern))$") else { return false }
        return regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
    }
}
