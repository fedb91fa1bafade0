internal import EnvoyAPI
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
///   sidecar (splits, retries, deadlines, faults, hashing); per-route configs of filters gRPC does
///   not run (CORS) are left out;
/// - the service's clusters and load assignments as a sidecar gets them, adapted to what gRPC's
///   xDS client takes: round robin where a sidecar would use least request or random (ring hash
///   stays), mTLS through the bootstrap's `default` certificate provider instead of SDS (the
///   files `meshctl cert renew` keeps fresh), cluster-wide rather than per endpoint, and every
///   locality present and weighted by its endpoints' weights (gRPC refuses a group without a
///   locality and ignores a locality without a weight).
///
/// Services resolved by DNS, and DestinationRule TLS from files, have no proxyless form; their
/// ports are left out with a warning. Proxyless servers (inbound) are not served.
public enum ProxylessTranslator {
    /// The bootstrap's certificate provider instance that holds the workload's certificate.
    public static let certificateProvider = "default"

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
            for index in assignment.endpoints.indices where !assignment.endpoints[index].hasLoadBalancingWeight {
                // gRPC takes a locality only with a weight, and needs the locality message itself.
                if !assignment.endpoints[index].hasLocality { assignment.endpoints[index].locality = Envoy_Config_Core_V3_Locality() }
                let weight = assignment.endpoints[index].lbEndpoints.reduce(UInt32(0)) { $0 + ($1.hasLoadBalancingWeight ? $1.loadBalancingWeight.value : 1) }
                assignment.endpoints[index].loadBalancingWeight = Envoy.uint32(max(weight, 1))
            }
            resources.insert(XDSResource(name: resource.name, message: assignment))
        }
        return ProxyConfiguration(resources: resources, warnings: scope.warnings + outbound.warnings + warnings)
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
            var plugin = Envoy_Extensions_TransportSockets_Tls_V3_CertificateProviderPluginInstance()
            plugin.instanceName = certificateProvider
            plugin.certificateName = "default"
            var roots = plugin
            roots.certificateName = "ROOTCA"
            var validation = Envoy_Extensions_TransportSockets_Tls_V3_CertificateValidationContext()
            validation.caCertificateProviderInstance = roots
            validation.matchSubjectAltNames = context.commonTlsContext.combinedValidationContext.defaultValidationContext.matchTypedSubjectAltNames.map(\.matcher)
            var common = Envoy_Extensions_TransportSockets_Tls_V3_CommonTlsContext()
            common.tlsCertificateProviderInstance = plugin
            common.validationContext = validation
            var upstream = Envoy_Extensions_TransportSockets_Tls_V3_UpstreamTlsContext()
            upstream.commonTlsContext = common
            cluster.transportSocket = TLSContexts.transportSocket(upstream)
        }
        return nil
    }
}
