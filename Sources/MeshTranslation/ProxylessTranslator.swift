internal import EnvoyAPI
internal import Foundation
public import MeshModel
internal import SwiftProtobuf
public import XDSCache

/// Translates the mesh for a proxyless gRPC client: an application whose gRPC library reads xDS
/// itself (`xds:///` targets in grpc-go, grpcio, grpc-java), with Istio's names for it.
///
/// For each HTTP or gRPC port of each service the workload may reach (its Sidecar scope):
/// - a listener named `<host>:<port>` (what `xds:///<host>:<port>` asks for) holding only an
///   `api_listener`: an HTTP connection manager with the fault and router filters, routed by RDS;
/// - a route configuration of the same name with the service's one virtual host, built as for a
///   sidecar (splits, retries, deadlines, faults, hashing), the deadline bound in
///   `max_stream_duration` where gRPC reads it; per-route configs of filters gRPC does not run
///   (CORS) are left out;
/// - the service's clusters and load assignments as a sidecar gets them, adapted to what gRPC's
///   xDS client takes: round robin where a sidecar would use least request or random (ring hash
///   stays), mTLS through the bootstrap's `default` certificate provider instead of SDS (the
///   files `meshctl cert renew` keeps fresh), cluster-wide rather than per endpoint, and every
///   locality present and weighted by its endpoints' weights (gRPC refuses a group without a
///   locality and ignores a locality without a weight).
///
/// Services resolved by DNS, and DestinationRule TLS from files, have no proxyless form; their
/// ports are left out with a warning.
///
/// For a proxyless server (`xds.NewGRPCServer`, `grpc.server(xds=True)`), one listener per port
/// the workload serves, named as gRPC asks with Istio's template
/// (`xds.istio.io/grpc/lds/inbound/<ip>:<port>`, for the workload's address, `0.0.0.0` and
/// `[::]`): mTLS from the `default` certificate provider, the client's certificate required, unless
/// PeerAuthentication DISABLEs it (gRPC cannot tell TLS from plaintext on one port, so PERMISSIVE
/// is served as mTLS, which is what sidecar clients send); the workload's ALLOW and DENY
/// AuthorizationPolicies as Envoy's RBAC filter, which gRPC enforces; every request
/// then goes to the application (`non_forwarding_action`). A workload whose policies need more than
/// RBAC (CUSTOM, RequestAuthentication, dry run) gets no listener, so its server does not serve:
/// closed, not open.
public enum ProxylessTranslator {
    /// The bootstrap's certificate provider instance that holds the workload's certificate.
    public static let certificateProvider = "default"
    /// gRPC's `server_listener_resource_name_template`, as Istio's bootstraps set it.
    public static let serverListenerTemplate = "xds.istio.io/grpc/lds/inbound/%s"

    public static func translate(_ snapshot: MeshSnapshot, workload: WorkloadInstance, memo: TranslationMemo? = nil) -> ProxyConfiguration {
        let scope = SidecarScope(workload: workload, snapshot: snapshot)
        let telemetry = TelemetryPolicy(workload: workload, snapshot: snapshot)
        var outbound = OutboundBuilder(scope: scope, snapshot: snapshot, inboundBindings: [], telemetry: telemetry, upstreamBind: UpstreamBind())
        var resources = XDSResourceSet()
        var warnings: [String] = []
        var servedClusters: Set<String> = []
        for service in scope.reachableServices {
            let httpPorts = service.ports.filter { $0.serviceProtocol.isHTTP || $0.serviceProtocol.isDetected }
            guard !httpPorts.isEmpty else { continue }
            if service.resolution == .DNS || service.resolution == .DNS_ROUND_ROBIN {
                warnings.append("\(service.hostname) is resolved by DNS, which proxyless gRPC clients do not take from meshd; it is left out")
                continue
            }
            for port in httpPorts {
                let name = "\(service.hostname):\(port.number)"
                let portListener = OutboundBuilder.PortListener(bind: "", port: port.number, services: [service], routeName: name, httpServices: [service])
                guard var routes = outbound.routeConfiguration(for: portListener, memo: nil).unpack(RouteConfiguration.self) else { continue }
                routes.virtualHosts = Array(routes.virtualHosts.prefix(1)).map(Self.grpcVirtualHost)
                resources.insert(XDSResource(name: name, message: routes))
                resources.insert(XDSResource(name: name, message: listener(name)))
                servedClusters.insert(ResourceNames.outboundCluster(port: port.number, host: service.hostname))
                for subset in outbound.destinationRules.rule(for: service, proxy: workload)?.spec.subsets ?? [] {
                    servedClusters.insert(ResourceNames.outboundCluster(port: port.number, subset: subset.name, host: service.hostname))
                }
            }
        }
        let inbound = serverListeners(scope: scope, snapshot: snapshot)
        for listener in inbound.listeners { resources.insert(XDSResource(name: listener.name, message: listener)) }
        warnings += inbound.warnings
        let built = outbound.clusterResources(memo: memo)
        for resource in built.clusters where servedClusters.contains(resource.name) {
            guard var cluster = resource.unpack(Cluster.self) else { continue }
            if let problem = adapt(&cluster) {
                warnings.append("\(cluster.name): \(problem)")
                continue
            }
            resources.insert(XDSResource(name: cluster.name, message: cluster))
        }
        for resource in built.loadAssignments where servedClusters.contains(resource.name) {
            guard var assignment = resource.unpack(ClusterLoadAssignment.self) else { continue }
            // gRPC refuses a group without its locality message and ignores a locality without a weight.
            for index in assignment.endpoints.indices {
                if !assignment.endpoints[index].hasLocality { assignment.endpoints[index].locality = Envoy_Config_Core_V3_Locality() }
                guard !assignment.endpoints[index].hasLoadBalancingWeight else { continue }
                let weight = assignment.endpoints[index].lbEndpoints.reduce(UInt32(0)) { $0 + ($1.hasLoadBalancingWeight ? $1.loadBalancingWeight.value : 1) }
                assignment.endpoints[index].loadBalancingWeight = Envoy.uint32(max(weight, 1))
            }
            resources.insert(XDSResource(name: resource.name, message: assignment))
        }
        return ProxyConfiguration(resources: resources, warnings: scope.warnings + outbound.warnings + warnings)
    }

    /// The listeners a proxyless server of the workload asks for, one per served port and address.
    static func serverListeners(scope: SidecarScope, snapshot: MeshSnapshot) -> (listeners: [Listener], warnings: [String]) {
        guard !scope.ingress.isEmpty else { return ([], []) }
        let authorization = AuthorizationBuilder(workload: scope.workload, snapshot: snapshot)
        // gRPC wants distinct filter names (Envoy does not): the DENY and the ALLOW engine.
        let filters = authorization.httpFilters().enumerated().map { index, filter in
            var named = filter
            if index > 0 { named.name += "-\(index)" }
            return named
        }
        let unsupported = filters.filter { !$0.name.hasPrefix("envoy.filters.http.rbac") }.map(\.name)
        guard unsupported.isEmpty, !authorization.hasDryRun else {
            return ([], ["\(scope.workload.namespace)/\(scope.workload.name): its policies need \(unsupported.isEmpty ? "a dry run" : unsupported.joined(separator: ", ")), which proxyless gRPC servers do not run; they get no listener and do not serve"])
        }
        let peerAuthentication = PeerAuthenticationPolicy(workload: scope.workload, snapshot: snapshot)
        var listeners: [Listener] = []
        var seen: Set<UInt32> = []
        for ingress in scope.ingress where seen.insert(ingress.port).inserted {
            let port = ingress.port
            var route = Route()
            route.match.prefix = "/"
            route.nonForwardingAction = Envoy_Config_Route_V3_NonForwardingAction()
            var host = VirtualHost()
            host.name = "inbound|http|\(port)"
            host.domains = ["*"]
            host.routes = [route]
            var routes = RouteConfiguration()
            routes.name = ResourceNames.inboundCluster(port: port)
            routes.virtualHosts = [host]
            var hcm = HCM()
            hcm.statPrefix = "inbound_\(port)"
            hcm.routeConfig = routes
            hcm.httpFilters = filters + [Envoy.routerFilter]
            var chain = FilterChain()
            chain.name = ResourceNames.inboundCluster(port: port)
            chain.filters = [Envoy.networkFilter("envoy.filters.network.http_connection_manager", hcm)]
            if peerAuthentication.servedMode(port: port) != .disable {
                var context = Envoy_Extensions_TransportSockets_Tls_V3_DownstreamTlsContext()
                context.commonTlsContext = providerContext(sans: [])
                context.requireClientCertificate = Google_Protobuf_BoolValue(true)
                chain.transportSocket = TLSContexts.transportSocket(context)
            }
            let address = scope.workload.address
            let hosts = [IPAddress(address)?.bitWidth == 128 ? "[\(address)]" : address, "0.0.0.0", "[::]"]
            for host in hosts.reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } } {
                var listener = Listener()
                listener.name = serverListenerTemplate.replacingOccurrences(of: "%s", with: "\(host):\(port)")
                listener.address = Envoy.address(host.trimmingCharacters(in: CharacterSet(charactersIn: "[]")), port: port)
                listener.trafficDirection = .inbound
                listener.filterChains = [chain]
                listeners.append(listener)
            }
        }
        return (listeners, [])
    }

    /// TLS certificates and roots from the bootstrap's certificate provider, checking the peer's
    /// SPIFFE IDs against `sans` when given.
    static func providerContext(sans: [StringMatcher]) -> Envoy_Extensions_TransportSockets_Tls_V3_CommonTlsContext {
        var plugin = Envoy_Extensions_TransportSockets_Tls_V3_CertificateProviderPluginInstance()
        plugin.instanceName = certificateProvider
        plugin.certificateName = "default"
        var roots = plugin
        roots.certificateName = "ROOTCA"
        var validation = Envoy_Extensions_TransportSockets_Tls_V3_CertificateValidationContext()
        validation.caCertificateProviderInstance = roots
        validation.matchSubjectAltNames = sans
        var common = Envoy_Extensions_TransportSockets_Tls_V3_CommonTlsContext()
        common.tlsCertificateProviderInstance = plugin
        common.validationContext = validation
        return common
    }

    /// The listener `xds:///<name>` resolves: an API listener only.
    static func listener(_ name: String) -> Listener {
        var hcm = HCM()
        hcm.statPrefix = name
        var rds = Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_Rds()
        rds.configSource = Envoy.adsConfigSource
        rds.routeConfigName = name
        hcm.rds = rds
        hcm.httpFilters = [Envoy.httpFilter("envoy.filters.http.fault", Envoy_Extensions_Filters_Http_Fault_V3_HTTPFault()), Envoy.routerFilter]
        var api = Envoy_Config_Listener_V3_ApiListener()
        api.apiListener = Google_Protobuf_Any(deterministic: hcm)
        var listener = Listener()
        listener.name = name
        listener.apiListener = api
        return listener
    }

    /// A virtual host without the per-route configs of filters a gRPC client does not run.
    static func grpcVirtualHost(_ host: VirtualHost) -> VirtualHost {
        var host = host
        host.typedPerFilterConfig = host.typedPerFilterConfig.filter { $0.key == "envoy.filters.http.fault" }
        host.cors = Envoy_Config_Route_V3_CorsPolicy()
        host.routes = host.routes.map { route in
            var route = route
            route.typedPerFilterConfig = route.typedPerFilterConfig.filter { $0.key == "envoy.filters.http.fault" }
            // gRPC reads the route's bound from max_stream_duration, not Envoy's max_grpc_timeout.
            if route.route.hasMaxGrpcTimeout {
                var bound = RouteAction.MaxStreamDuration()
                bound.maxStreamDuration = route.route.maxGrpcTimeout
                route.route.maxStreamDuration = bound
                route.route.clearMaxGrpcTimeout()
            }
            return route
        }
        return host
    }

    /// Adapts a sidecar's cluster for gRPC's xDS client; says why when it has no proxyless form.
    static func adapt(_ cluster: inout Cluster) -> String? {
        switch cluster.lbPolicy {
        case .roundRobin, .ringHash: break
        default: cluster.lbPolicy = .roundRobin
        }
        var context: Envoy_Extensions_TransportSockets_Tls_V3_UpstreamTlsContext?
        if let mesh = cluster.transportSocketMatches.first(where: { $0.name == "tlsMode-istio" }) {
            context = try? Envoy_Extensions_TransportSockets_Tls_V3_UpstreamTlsContext(unpackingAny: mesh.transportSocket.typedConfig)
        } else if cluster.hasTransportSocket {
            let given = try? Envoy_Extensions_TransportSockets_Tls_V3_UpstreamTlsContext(unpackingAny: cluster.transportSocket.typedConfig)
            guard let given, given.commonTlsContext.tlsCertificateSdsSecretConfigs.first?.name == TLSContexts.certificateSecret else {
                return "TLS from files (DestinationRule SIMPLE or MUTUAL) has no proxyless form; the cluster is left out"
            }
            context = given
        }
        cluster.transportSocketMatches = []
        cluster.clearTransportSocket()
        cluster.clearUpstreamBindConfig()
        cluster.typedExtensionProtocolOptions = [:]
        if let context {
            var upstream = Envoy_Extensions_TransportSockets_Tls_V3_UpstreamTlsContext()
            upstream.commonTlsContext = providerContext(sans: context.commonTlsContext.combinedValidationContext.defaultValidationContext.matchTypedSubjectAltNames.map(\.matcher))
            cluster.transportSocket = TLSContexts.transportSocket(upstream)
        }
        return nil
    }
}
