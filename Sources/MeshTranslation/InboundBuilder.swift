internal import EnvoyAPI
internal import MeshModel
internal import SwiftProtobuf

/// Builds a sidecar's inbound side: a listener on the workload's mesh address per ingress port,
/// delivering to the app through a static `inbound|<port>||` cluster.
struct InboundBuilder {
    let scope: SidecarScope

    /// The `address:port` pairs the inbound side binds.
    var bindings: Set<String> {
        Set(scope.ingress.map { "\($0.bind):\($0.port)" })
    }

    func listeners() -> [Listener] {
        scope.ingress.map(listener(for:))
    }

    func listener(for ingress: SidecarScope.Ingress) -> Listener {
        var listener = Listener()
        listener.name = ResourceNames.listener(address: ingress.bind, port: ingress.port)
        listener.address = Envoy.address(ingress.bind, port: ingress.port)
        listener.trafficDirection = .inbound
        let cluster = ResourceNames.inboundCluster(port: ingress.port)
        var chain = FilterChain()
        chain.name = cluster
        if ingress.serviceProtocol.isHTTP {
            var hcm = HCM.common(statPrefix: "inbound_0.0.0.0_\(ingress.port)")
            hcm.routeConfig = routeConfiguration(for: ingress)
            chain.filters = [Envoy.networkFilter("envoy.filters.network.http_connection_manager", hcm)]
        } else {
            var proxy = TCPProxy()
            proxy.statPrefix = cluster
            proxy.cluster = cluster
            chain.filters = [Envoy.networkFilter("envoy.filters.network.tcp_proxy", proxy)]
        }
        listener.filterChains = [chain]
        return listener
    }

    /// The inline routes of an inbound HTTP port: everything to the app, no timeout.
    func routeConfiguration(for ingress: SidecarScope.Ingress) -> RouteConfiguration {
        let cluster = ResourceNames.inboundCluster(port: ingress.port)
        var config = RouteConfiguration()
        config.name = cluster
        config.validateClusters = Google_Protobuf_BoolValue(false)
        var host = VirtualHost()
        host.name = "inbound|http|\(ingress.port)"
        host.domains = ["*"]
        var route = Route()
        route.name = "default"
        var match = Envoy_Config_Route_V3_RouteMatch()
        match.prefix = "/"
        route.match = match
        var action = RouteAction()
        action.cluster = cluster
        action.timeout = Envoy.duration(seconds: 0)
        route.route = action
        host.routes = [route]
        config.virtualHosts = [host]
        return config
    }

    /// A static cluster per ingress port whose one endpoint is the app.
    func clusters() -> [Cluster] {
        var seen: Set<UInt32> = []
        return scope.ingress.compactMap { ingress in
            guard seen.insert(ingress.port).inserted else { return nil }
            let name = ResourceNames.inboundCluster(port: ingress.port)
            var cluster = Cluster()
            cluster.name = name
            cluster.type = .static
            cluster.connectTimeout = Envoy.duration(seconds: 10)
            cluster.circuitBreakers = Envoy.defaultCircuitBreakers
            if ingress.serviceProtocol.usesHTTP2 {
                cluster.typedExtensionProtocolOptions = Envoy.http2ProtocolOptions
            }
            var endpoint = Envoy_Config_Endpoint_V3_Endpoint()
            endpoint.address = Envoy.address(ingress.endpointHost, port: ingress.endpointPort)
            var lbEndpoint = LbEndpoint()
            lbEndpoint.endpoint = endpoint
            var group = Envoy_Config_Endpoint_V3_LocalityLbEndpoints()
            group.lbEndpoints = [lbEndpoint]
            var assignment = ClusterLoadAssignment()
            assignment.clusterName = name
            assignment.endpoints = [group]
            cluster.loadAssignment = assignment
            return cluster
        }
    }
}
