internal import EnvoyAPI
internal import MeshModel
internal import SwiftProtobuf
internal import XDSCache

/// Builds a sidecar's outbound side: a listener per bound port, a route configuration per HTTP
/// port, and a cluster plus load assignment per port of every reachable service.
struct OutboundBuilder {
    let scope: SidecarScope
    let snapshot: MeshSnapshot
    /// Addresses the inbound side binds (`address:port`); outbound listeners never take them.
    let inboundBindings: Set<String>
    let destinationRules: DestinationRuleIndex
    let virtualServices: VirtualServiceIndex
    let telemetry: TelemetryPolicy
    let upstreamBind: UpstreamBind
    /// The sidecar's mode is ALLOW_ANY (each loopback listener forwards hosts outside the
    /// registry; others refuse them, ``EgressPolicy``).
    private let allowAny: Bool
    var warnings: [String] = []

    init(scope: SidecarScope, snapshot: MeshSnapshot, inboundBindings: Set<String>, telemetry: TelemetryPolicy, upstreamBind: UpstreamBind) {
        self.scope = scope
        self.upstreamBind = upstreamBind
        self.snapshot = snapshot
        self.inboundBindings = inboundBindings
        self.telemetry = telemetry
        destinationRules = DestinationRuleIndex(snapshot: snapshot)
        virtualServices = VirtualServiceIndex(snapshot: snapshot)
        allowAny = EgressPolicy.allowAny(scope, snapshot)
    }

    /// The VirtualService that routes a service for this sidecar, if any.
    func virtualService(for service: MeshService) -> Configured<VirtualService>? {
        virtualServices.virtualService(for: service.hostname, proxyNamespace: scope.workload.namespace, serviceNamespace: service.namespace)
    }

    /// One bound port of an egress listener and the services it serves.
    struct PortListener {
        var bind: String
        var port: UInt32
        var services: [MeshService]
        var routeName: String
        /// The protocol the Sidecar's egress gives this port, if any.
        var declaredProtocol: ServiceProtocol? = nil
        /// The services the port's HTTP listener routes to: all of them when the Sidecar declares
        /// the port HTTP, none when it declares it TCP, else those whose port speaks HTTP or
        /// declares nothing (``ServiceProtocol/auto``).
        var httpServices: [MeshService] = []
        /// Whether the port's protocol is found per connection: some service on it declares none
        /// (and the Sidecar declares none for the port). HTTP goes to ``httpServices``, anything
        /// else to ``tcpService`` (``ProtocolDetection``).
        var detects: Bool {
            declaredProtocol == nil && services.contains { $0.port(port)!.serviceProtocol.isDetected }
        }
        /// Whether the Sidecar declares the port gRPC, or, when it declares nothing, a service on it does.
        var carriesGRPC: Bool {
            declaredProtocol.map(\.isGRPC) ?? services.contains { $0.port(port)!.serviceProtocol.isGRPC }
        }
        /// Where a detecting port sends what is not HTTP: its first service declaring TCP (or
        /// another non-HTTP protocol), else its first service declaring nothing.
        var tcpService: MeshService? {
            guard detects else { return nil }
            let nonHTTP = services.filter { !$0.port(port)!.serviceProtocol.isHTTP }
            return nonHTTP.first { !$0.port(port)!.serviceProtocol.isDetected } ?? nonHTTP.first
        }
        /// Whether its last virtual host forwards hosts outside the registry (``EgressPolicy``).
        var forwardsUnknownHosts = false
    }

    /// Works out which ports each egress listener binds.
    mutating func portListeners() -> [PortListener] {
        var byBinding: [String: PortListener] = [:]
        var order: [String] = []
        for egress in scope.egress {
            var ports: [UInt32: [MeshService]] = [:]
            for service in egress.services {
                for port in service.ports where egress.port == nil || egress.port == port.number {
                    ports[port.number, default: []].append(service)
                }
            }
            for (port, services) in ports {
                let key = "\(egress.bind):\(port)"
                if inboundBindings.contains(key) {
                    warnings.append("outbound port \(port) on \(egress.bind) is also an inbound listener; give the Sidecar egress a bind address of its own")
                    continue
                }
                if var existing = byBinding[key] {
                    let known = Set(existing.services.map(\.hostname))
                    existing.services += services.filter { !known.contains($0.hostname) }
                    byBinding[key] = existing
                } else {
                    byBinding[key] = PortListener(bind: egress.bind, port: port, services: services, routeName: "", declaredProtocol: egress.declaredProtocol)
                    order.append(key)
                }
            }
        }
        // Route configurations are named by port, as Istio does; when several binds share a port
        // (several egress listeners), the name carries the bind address too.
        var portCount: [UInt32: Int] = [:]
        for key in order { portCount[byBinding[key]!.port, default: 0] += 1 }
        return order.sorted().map { key in
            var listener = byBinding[key]!
            listener.services.sort { $0.hostname < $1.hostname }
            listener.routeName = portCount[listener.port]! > 1 ? ResourceNames.listener(address: listener.bind, port: listener.port) : String(listener.port)
            if let declared = listener.declaredProtocol {
                listener.httpServices = declared.isHTTP ? listener.services : []
            } else {
                let port = listener.port
                listener.httpServices = listener.services.filter { $0.port(port)!.serviceProtocol.isHTTP || $0.port(port)!.serviceProtocol.isDetected }
            }
            listener.forwardsUnknownHosts = allowAny && IPAddress(listener.bind)?.isLoopback == true
            return listener
        }
    }

    /// The listener of one bound port: HTTP when any of its services speaks HTTP, else a TCP proxy
    /// to its (first) service; on a port whose protocol is detected, both, chosen per connection
    /// by its first bytes (``ProtocolDetection``).
    mutating func listener(for port: PortListener) -> Listener {
        var listener = Listener()
        listener.name = ResourceNames.listener(address: port.bind, port: port.port)
        listener.address = Envoy.address(port.bind, port: port.port)
        listener.trafficDirection = .outbound
        if let tcpService = port.tcpService {
            // Envoy matches the transport first and does not come back: plaintext has an HTTP
            // and a TCP chain, TLS the app originates (whose ALPN may say http/1.1 too) a TCP one.
            var http = httpChain(for: port)
            http.name = "\(listener.name)-http"
            http.filterChainMatch = ProtocolDetection.match(ProtocolDetection.plaintextHTTP, transport: "raw_buffer")
            var tcp = tcpChain(for: port, service: tcpService)
            tcp.name = "\(listener.name)-tcp"
            tcp.filterChainMatch = ProtocolDetection.match([], transport: "raw_buffer")
            var tls = tcp
            tls.name = "\(listener.name)-tls"
            tls.filterChainMatch = ProtocolDetection.match([], transport: "tls")
            let others = port.services.filter { !$0.port(port.port)!.serviceProtocol.isHTTP && $0.hostname != tcpService.hostname }
            if !others.isEmpty {
                warnings.append("port \(port.port) on \(port.bind) takes connections that are not HTTP to \(tcpService.hostname); \(others.map(\.hostname).joined(separator: ", ")) is reachable on it by HTTP only")
            }
            ProtocolDetection.inspect(&listener, tls: true, timeout: snapshot.mesh.protocolDetectionTimeout)
            listener.filterChains = [http, tcp, tls]
            return listener
        }
        let httpServices = port.httpServices
        if !httpServices.isEmpty {
            if httpServices.count < port.services.count {
                let tcp = port.services.filter { !$0.port(port.port)!.serviceProtocol.isHTTP }.map(\.hostname)
                warnings.append("port \(port.port) on \(port.bind) mixes HTTP and TCP services; HTTP wins and \(tcp.joined(separator: ", ")) is not reachable on it")
            }
            listener.filterChains = [httpChain(for: port)]
        } else {
            let service = port.services[0]
            if port.services.count > 1 {
                warnings.append("TCP port \(port.port) on \(port.bind) is claimed by \(port.services.map(\.hostname).joined(separator: ", ")); only \(service.hostname) is reachable on it")
            }
            listener.filterChains = [tcpChain(for: port, service: service)]
        }
        return listener
    }

    /// The HTTP connection manager of a port, routing by its route configuration (RDS).
    private func httpChain(for port: PortListener) -> FilterChain {
        var hcm = HCM.outbound(statPrefix: telemetry.client.metrics ? "outbound_\(port.bind)_\(port.port)" : TelemetryPolicy.disabledStatName)
        if let tracing = telemetry.client.tracing { hcm.tracing = telemetry.hcmTracing(tracing) }
        hcm.accessLog = telemetry.httpLogs(.source)
        EgressPolicy.apply(to: &hcm, allowAny: port.forwardsUnknownHosts)
        if port.carriesGRPC && telemetry.client.metrics { hcm.httpFilters.insert(ProtocolDetection.grpcStatsFilter, at: hcm.httpFilters.count - 1) }
        var rds = Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_Rds()
        rds.configSource = Envoy.adsConfigSource
        rds.routeConfigName = port.routeName
        hcm.rds = rds
        var chain = FilterChain()
        chain.filters = [Envoy.networkFilter("envoy.filters.network.http_connection_manager", hcm)]
        return chain
    }

    /// A TCP proxy to `service` on a port.
    private mutating func tcpChain(for port: PortListener, service: MeshService) -> FilterChain {
        var proxy = tcpProxy(for: service, port: port.port)
        telemetry.applyLogs(to: &proxy, .source)
        if !telemetry.client.metrics { proxy.statPrefix = TelemetryPolicy.disabledStatName }
        var chain = FilterChain()
        chain.filters = [Envoy.networkFilter("envoy.filters.network.tcp_proxy", proxy)]
        return chain
    }

    /// A TCP proxy to a service: the first `tcp` route of its VirtualService that applies to this
    /// port and sidecar, with weighted destinations; else straight to the service's cluster.
    mutating func tcpProxy(for service: MeshService, port: UInt32) -> TCPProxy {
        var proxy = TCPProxy()
        proxy.statPrefix = ResourceNames.outboundCluster(port: port, host: service.hostname)
        proxy.cluster = ResourceNames.outboundCluster(port: port, host: service.hostname)
        proxy.apply(EffectivePolicy(rule: destinationRules.rule(for: service, proxy: scope.workload)?.spec, port: port).connectionPool?.tcp)
        guard let virtualService = virtualService(for: service) else { return proxy }
        let rule = (virtualService.spec.tcp ?? []).first { rule in
            let matches = rule.match ?? []
            return matches.isEmpty || matches.contains { match in
                GatewayNames.matchApplies(
                    port: match.port, sourceLabels: match.sourceLabels, sourceNamespace: match.sourceNamespace, gateways: match.gateways,
                    namespace: virtualService.metadata.namespace, proxy: scope.workload, gateway: nil, port: port)
            }
        }
        guard let rule, let destinations = rule.route, !destinations.isEmpty else { return proxy }
        var builder = HTTPRouteBuilder(snapshot: snapshot, proxy: scope.workload, destinationRules: destinationRules)
        var routed = TCPProxy.to(destinations, namespace: virtualService.metadata.namespace, port: port, builder: &builder)
        warnings += builder.unresolved.map { "\(virtualService.key): \($0)" }
        routed.statPrefix = proxy.statPrefix
        return routed
    }

    /// The route configuration of an HTTP port: a virtual host per service (its VirtualService's
    /// routes, else Istio's default route), and a last virtual host for every other host:
    /// forwarded (`allow_any`) or refused with 502 (`block_all`), as ``EgressPolicy`` says. When
    /// no service on the port has a VirtualService, it is built from ``RouteInputs`` alone and
    /// comes from `memo`.
    mutating func routeConfiguration(for port: PortListener, memo: TranslationMemo?) -> XDSResource {
        var claimed: Set<String> = []
        var hosts: [(host: RouteInputs.Host, virtualService: Configured<VirtualService>?)] = []
        for service in port.httpServices {
            let policy = EffectivePolicy(rule: destinationRules.rule(for: service, proxy: scope.workload)?.spec, port: port.port)
            let host = RouteInputs.Host(
                service: service.hostname, port: port.port,
                domains: domains(of: service, port: port.port).filter { claimed.insert($0).inserted },
                consistentHash: policy.loadBalancer?.consistentHash)
            hosts.append((host, virtualService(for: service)))
        }
        let inputs = RouteInputs(name: port.routeName, hosts: hosts.map(\.host), allowAny: port.forwardsUnknownHosts)
        guard hosts.contains(where: { $0.virtualService != nil }) else {
            let build = { XDSResource(name: inputs.name, message: Self.routeConfiguration(inputs, routes: [:])) }
            return memo?.routeConfigurations.value(for: inputs, generation: snapshot.revision, compute: build) ?? build()
        }
        var routes: [Int: [Route]] = [:]
        for (index, host) in hosts.enumerated() {
            guard let virtualService = host.virtualService else { continue }
            var builder = HTTPRouteBuilder(snapshot: snapshot, proxy: scope.workload, destinationRules: destinationRules)
            let built = builder.routes(virtualService, port: port.port)
            warnings += builder.unresolved.map { "\(virtualService.key): \($0)" }
            if !built.isEmpty { routes[index] = built }
        }
        return XDSResource(name: inputs.name, message: Self.routeConfiguration(inputs, routes: routes))
    }

    /// The route configuration `inputs` describe; the virtual host at index i gets `routes[i]`
    /// when given (its VirtualService's), else Istio's default route.
    static func routeConfiguration(_ inputs: RouteInputs, routes: [Int: [Route]]) -> RouteConfiguration {
        var config = RouteConfiguration()
        config.name = inputs.name
        config.validateClusters = Google_Protobuf_BoolValue(false)
        // Collected, then set once: appending to a message field copies the whole array.
        var virtualHosts: [VirtualHost] = []
        for (index, input) in inputs.hosts.enumerated() {
            var host = VirtualHost()
            host.name = "\(input.service):\(input.port)"
            host.domains = input.domains
            if let given = routes[index] {
                host.routes = given
            } else {
                var route = defaultRoute(cluster: ResourceNames.outboundCluster(port: input.port, host: input.service))
                if let hash = input.consistentHash, case .route(var action) = route.action {
                    action.hashPolicy = HTTPRouteBuilder.hashPolicies(hash)
                    route.route = action
                }
                host.routes = [route]
            }
            virtualHosts.append(host)
        }
        virtualHosts.append(EgressPolicy.catchAllHost(allowAny: inputs.allowAny))
        config.virtualHosts = virtualHosts
        return config
    }

    /// The host names a virtual host answers to, as Istio generates them: the full name, and for
    /// services of the proxy's own namespace the short forms, each with and without the port;
    /// plus the service's addresses.
    func domains(of service: MeshService, port: UInt32) -> [String] {
        var names = [service.hostname]
        let suffix = "." + snapshot.settings.domainSuffix
        if service.hostname.hasSuffix(suffix) {
            let stem = String(service.hostname.dropLast(suffix.count))  // name.namespace
            let parts = stem.split(separator: ".")
            if parts.count == 2 {
                if service.namespace == scope.workload.namespace { names.append(String(parts[0])) }
                names.append(stem)
                names.append(stem + ".svc")
            }
        }
        names += service.addresses.filter { !$0.contains("/") }
        return names.flatMap { [$0, "\($0):\(port)"] }
    }

    /// Istio's route for a service with no VirtualService: everything to its cluster, no route
    /// timeout, Istio's default retry policy.
    static func defaultRoute(cluster: String) -> Route {
        var route = Route()
        route.name = "default"
        var match = Envoy_Config_Route_V3_RouteMatch()
        match.prefix = "/"
        route.match = match
        var action = RouteAction()
        action.cluster = cluster
        Envoy.setTimeout(&action, Envoy.duration(seconds: 0))
        action.retryPolicy = RetryPolicies.istioDefault
        route.route = action
        return route
    }

    /// A cluster per port of every reachable service, named `outbound|<port>||<host>`, plus one per
    /// subset of its DestinationRule, `outbound|<port>|<subset>|<host>`; and the load assignment
    /// of each EDS cluster. Each is built from its ``ClusterInputs`` or ``LoadAssignmentInputs``
    /// alone, so equal inputs share one encoded resource (through `memo`, across proxies and
    /// revisions).
    func clusterResources(memo: TranslationMemo?) -> (clusters: [XDSResource], loadAssignments: [XDSResource]) {
        var clusters: [XDSResource] = []
        var assignments: [XDSResource] = []
        let meshBind = upstreamBind.meshCluster(workload: scope.workload)
        let metrics = telemetry.client.metrics
        for service in scope.reachableServices {
            let bind = service.location == .MESH_INTERNAL ? meshBind : upstreamBind.otherCluster
            let hasAssignment = service.resolution != .DNS && service.resolution != .DNS_ROUND_ROBIN
            let rule = destinationRules.rule(for: service, proxy: scope.workload)
            let subsets: [String?] = [nil] + (rule?.spec.subsets ?? []).map(\.name)
            let serviceName = ServiceName(hostname: service.hostname, namespace: service.namespace)
            let serviceID = memo?.services.id(of: serviceName, in: snapshot) { service }
            let ruleID = rule.flatMap { rule in memo?.rules.id(of: rule.key, in: snapshot) { rule.spec } }
            for port in service.ports {
                // Computed only when something is built or first named in this view.
                var computed: ClusterInputs.Endpoints?
                func portEndpoints() -> ClusterInputs.Endpoints {
                    if let computed { return computed }
                    let made = endpoints(of: service, port: port)
                    computed = made
                    return made
                }
                let endpointsName = EndpointsName(service: serviceName, port: port.number)
                let endpointsID = memo?.endpoints.id(of: endpointsName, in: snapshot, value: portEndpoints)
                // A cluster with a load assignment of its own reads only who its endpoints are
                // (a new or moved endpoint changes the assignment, not the cluster).
                let clusterEndpointsID = hasAssignment
                    ? memo?.endpointIdentities.id(of: endpointsName, in: snapshot) { ClusterInputs.EndpointIdentities(portEndpoints(), trustDomain: snapshot.settings.trustDomain) }
                    : endpointsID
                for subset in subsets {
                    let locality = LocalityView(policy: EffectivePolicy(rule: rule?.spec, port: port.number, subset: subset), client: scope.workload)
                    func inputs() -> ClusterInputs {
                        ClusterInputs(
                            service: service, port: port, subset: subset, rule: rule?.spec, bind: bind, metrics: metrics,
                            trustDomain: snapshot.settings.trustDomain, fips: snapshot.settings.fips, endpoints: portEndpoints(), locality: locality)
                    }
                    func buildCluster() -> XDSResource {
                        let cluster = Self.cluster(inputs())
                        return XDSResource(name: cluster.name, message: cluster)
                    }
                    func buildAssignment() -> XDSResource {
                        let message = Self.loadAssignment(inputs().loadAssignment)
                        return XDSResource(name: message.clusterName, message: message)
                    }
                    guard let memo, let serviceID, let endpointsID, let clusterEndpointsID else {
                        clusters.append(buildCluster())
                        if hasAssignment { assignments.append(buildAssignment()) }
                        continue
                    }
                    let key = ClusterKey(
                        service: serviceID, port: port.number, subset: subset, rule: ruleID, bind: bind, metrics: metrics,
                        trustDomain: snapshot.settings.trustDomain, fips: snapshot.settings.fips, endpoints: clusterEndpointsID,
                        locality: hasAssignment ? nil : locality)
                    clusters.append(memo.clusters.value(for: key, generation: snapshot.revision, compute: buildCluster))
                    guard hasAssignment else { continue }
                    let assignmentKey = LoadAssignmentKey(
                        service: serviceID, port: port.number, subset: subset,
                        subsetLabels: ClusterInputs.subsetLabels(subset, rule: rule?.spec), endpoints: endpointsID, locality: locality)
                    assignments.append(memo.loadAssignments.value(for: assignmentKey, generation: snapshot.revision, compute: buildAssignment))
                }
            }
        }
        return (clusters, assignments)
    }

    /// A service's workloads as its clients see them on `port`, each with whether it takes mTLS
    /// there (it runs a sidecar whose PeerAuthentication accepts it; always false outside the mesh).
    func endpoints(of service: MeshService, port: MeshService.Port) -> ClusterInputs.Endpoints {
        let instances = snapshot.registry.instances(of: service)
        return ClusterInputs.Endpoints(
            instances: instances,
            acceptsMTLS: instances.map { instance in
                service.location == .MESH_INTERNAL && instance.hasSidecar
                    && PeerAuthenticationPolicy(workload: instance, snapshot: snapshot).clientsUseTLS(port: instance.endpointPort(for: port))
            })
    }

    /// The cluster `inputs` describe.
    static func cluster(_ inputs: ClusterInputs) -> Cluster {
        let port = inputs.port
        var cluster = Cluster()
        let name = ResourceNames.outboundCluster(port: port.number, subset: inputs.subset ?? "", host: inputs.service.hostname)
        cluster.name = name
        cluster.connectTimeout = Envoy.duration(seconds: 10)
        cluster.lbPolicy = .leastRequest
        cluster.circuitBreakers = Envoy.defaultCircuitBreakers
        TelemetryPolicy.applyMetrics(to: &cluster, metrics: inputs.metrics)
        let policy = EffectivePolicy(rule: inputs.rule, port: port.number, subset: inputs.subset)
        ClusterPolicies.apply(policy, to: &cluster, protocol: port.serviceProtocol)
        inputs.bind.apply(to: &cluster)
        applyClientTLS(to: &cluster, inputs, settings: inputs.rule == nil ? nil : policy.tls)
        switch inputs.service.resolution {
        case .DNS, .DNS_ROUND_ROBIN:
            cluster.type = inputs.service.resolution == .DNS ? .strictDns : .logicalDns
            cluster.loadAssignment = loadAssignment(inputs.loadAssignment)
            cluster.dnsLookupFamily = .v4Preferred
        default:
            cluster.type = .eds
            var eds = Envoy_Config_Cluster_V3_Cluster.EdsClusterConfig()
            eds.edsConfig = Envoy.adsConfigSource
            eds.serviceName = name
            cluster.edsClusterConfig = eds
        }
        return cluster
    }

    /// How the cluster talks TLS: a DestinationRule's `tls` (port level over top level) decides; with
    /// none, auto mTLS sends mTLS to endpoints that have a sidecar accepting it and plaintext to
    /// the others.
    static func applyClientTLS(to cluster: inout Cluster, _ inputs: ClusterInputs, settings: ClientTLSSettings?) {
        let sni = ResourceNames.outboundSNI(port: inputs.port.number, subset: inputs.subset ?? "", host: inputs.service.hostname)
        if let settings {
            switch settings.mode ?? .DISABLE {
            case .DISABLE:
                return
            case .ISTIO_MUTUAL:
                let sans = settings.subjectAltNames.flatMap { $0.isEmpty ? nil : $0 } ?? inputs.serverIdentities
                cluster.transportSocket = TLSContexts.istioUpstream(
                    sni: settings.sni.flatMap { $0.isEmpty ? nil : $0 } ?? sni, sans: sans, fips: inputs.fips, alpn: TLSContexts.meshALPN(inputs.port.serviceProtocol))
            case .SIMPLE, .MUTUAL:
                cluster.transportSocket = TLSContexts.fileUpstream(settings, sni: settings.sni, fips: inputs.fips)
            }
            return
        }
        guard inputs.endpoints.acceptsMTLS.contains(true) else { return }
        cluster.transportSocketMatches = TLSContexts.autoMTLSMatches(sni: sni, sans: inputs.serverIdentities, fips: inputs.fips, alpn: TLSContexts.meshALPN(inputs.port.serviceProtocol))
    }

    /// The endpoints `inputs` describe (subset clusters: the workloads with the subset's labels;
    /// a DNS service without endpoints resolves its own host name).
    static func loadAssignment(_ inputs: LoadAssignmentInputs) -> ClusterLoadAssignment {
        let service = inputs.service
        var assignment = ClusterLoadAssignment()
        assignment.clusterName = ResourceNames.outboundCluster(port: inputs.port.number, subset: inputs.subset ?? "", host: service.hostname)
        var instances = Array(zip(inputs.endpoints.instances, inputs.endpoints.acceptsMTLS))
        if let labels = inputs.subsetLabels { instances = instances.filter { $0.0.matches(labels) } }
        if instances.isEmpty, service.resolution == .DNS || service.resolution == .DNS_ROUND_ROBIN {
            instances = [(WorkloadInstance(name: service.hostname, namespace: service.namespace, address: service.hostname), false)]
        }
        var byLocality: [String: LocalityView.Group] = [:]
        for (instance, acceptsMTLS) in instances.sorted(by: { ($0.0.address, $0.0.name) < ($1.0.address, $1.0.name) }) {
            var endpoint = Envoy_Config_Endpoint_V3_Endpoint()
            endpoint.address = Envoy.address(instance.address, port: instance.endpointPort(for: inputs.port))
            var lbEndpoint = LbEndpoint()
            lbEndpoint.endpoint = endpoint
            if let weight = instance.weight, weight > 0 { lbEndpoint.loadBalancingWeight = Envoy.uint32(weight) }
            if acceptsMTLS { lbEndpoint.metadata = TLSContexts.istioEndpointMetadata }
            let locality = instance.locality ?? ""
            if byLocality[locality] == nil {
                var group = Envoy_Config_Endpoint_V3_LocalityLbEndpoints()
                if !locality.isEmpty { group.locality = Locality(locality).envoy }
                byLocality[locality] = LocalityView.Group(endpoints: group, instances: [])
            }
            byLocality[locality]!.endpoints.lbEndpoints.append(lbEndpoint)
            byLocality[locality]!.instances.append(instance)
        }
        let groups = byLocality.keys.sorted().map { byLocality[$0]! }
        assignment.endpoints = inputs.locality.map { $0.apply(to: groups) } ?? groups.map(\.endpoints)
        return assignment
    }
}

/// Everything an outbound cluster is built from (``OutboundBuilder/cluster(_:)``): equal inputs
/// give byte-identical clusters, whichever proxy asks.
struct ClusterInputs: Hashable, Sendable {
    /// A service's workloads as clients see them on one port.
    struct Endpoints: Hashable, Sendable {
        var instances: [WorkloadInstance]
        /// Per instance: whether it takes mTLS on the port.
        var acceptsMTLS: [Bool]
    }

    var service: MeshService
    var port: MeshService.Port
    var subset: String?
    /// The DestinationRule that applies for the client.
    var rule: DestinationRule?
    /// What the cluster says about the address upstream connections come from.
    var bind: UpstreamBind.ClusterBind
    /// Whether the client side keeps metrics (Telemetry).
    var metrics: Bool
    var trustDomain: String
    /// FIPS mode: TLS parameters pinned (``FIPSPolicy``).
    var fips: Bool
    var endpoints: Endpoints
    /// How the client sees the endpoints' localities (``LocalityView``); read only by clusters
    /// that carry their endpoints (DNS).
    var locality: LocalityView?

    /// What a cluster with its own load assignment reads of its endpoints: who they are and
    /// whether any takes mTLS.
    struct EndpointIdentities: Hashable, Sendable {
        var accounts: [String]
        var anyAcceptsMTLS: Bool

        init(_ endpoints: Endpoints, trustDomain: String) {
            accounts = Set(endpoints.instances.map { $0.identity(trustDomain: trustDomain).uri }).sorted()
            anyAcceptsMTLS = endpoints.acceptsMTLS.contains(true)
        }
    }

    /// The SPIFFE IDs a client accepts from the service's endpoints: their service accounts,
    /// plus the ServiceEntry's `subjectAltNames`.
    var serverIdentities: [String] {
        Array(Set(EndpointIdentities(endpoints, trustDomain: trustDomain).accounts + service.subjectAltNames)).sorted()
    }

    /// What the cluster's endpoints are built from.
    var loadAssignment: LoadAssignmentInputs {
        LoadAssignmentInputs(
            service: service, port: port, subset: subset, subsetLabels: Self.subsetLabels(subset, rule: rule), endpoints: endpoints, locality: locality)
    }

    /// The labels of `subset` in `rule` (`nil`: not a subset cluster).
    static func subsetLabels(_ subset: String?, rule: DestinationRule?) -> [String: String]? {
        subset.map { subset in rule?.subsets?.first { $0.name == subset }?.labels ?? [:] }
    }
}

/// Everything a route configuration without VirtualServices is built from
/// (``OutboundBuilder/routeConfiguration(_:routes:)``).
struct RouteInputs: Hashable, Sendable {
    /// One service's virtual host.
    struct Host: Hashable, Sendable {
        var service: String
        var port: UInt32
        /// The names it answers to (those no earlier host claimed).
        var domains: [String]
        /// The DestinationRule's consistent hash for the port, if any.
        var consistentHash: LoadBalancerSettings.ConsistentHashLB?
    }

    var name: String
    var hosts: [Host]
    /// The last virtual host forwards unknown hosts (ALLOW_ANY) or refuses them.
    var allowAny: Bool
}

/// Everything a cluster's load assignment is built from (``OutboundBuilder/loadAssignment(_:)``):
/// of the client, only its ``LocalityView`` when locality load balancing acts, so proxies share
/// them (those in one locality, when it acts).
struct LoadAssignmentInputs: Hashable, Sendable {
    var service: MeshService
    var port: MeshService.Port
    var subset: String?
    /// The subset's labels (`nil`: not a subset cluster).
    var subsetLabels: [String: String]?
    var endpoints: ClusterInputs.Endpoints
    /// What the endpoints' priorities and weights read of the client (`nil`: nothing).
    var locality: LocalityView?
}

extension TCPProxy {
    /// A DestinationRule's TCP settings that act on the proxied connection, as in Istio (the
    /// first destination's, for weighted routes): `idleTimeout` (Envoy's default otherwise:
    /// 1 h; `0s` disables it) and `maxConnectionDuration`, which closes the client's connection
    /// when reached. (Both also set the cluster's HTTP options, for HTTP ports.)
    mutating func apply(_ tcp: ConnectionPoolSettings.TCPSettings?) {
        guard let tcp else { return }
        if let idle = tcp.idleTimeout { idleTimeout = Envoy.duration(milliseconds: idle.nanoseconds / 1_000_000) }
        if let duration = tcp.maxConnectionDuration { maxDownstreamConnectionDuration = Envoy.duration(milliseconds: duration.nanoseconds / 1_000_000) }
    }

    /// A TCP proxy to a rule's destinations, resolved by `builder`, with the first one's TCP
    /// settings.
    static func to(_ destinations: [RouteDestination], namespace: String, port: UInt32, builder: inout HTTPRouteBuilder) -> TCPProxy {
        let resolved = destinations.map { builder.destination(for: $0.destination, namespace: namespace, port: port) }
        var proxy = to(clusters: resolved.map(\.cluster), weights: destinations.map(\.weight))
        proxy.apply(resolved[0].policy.connectionPool?.tcp)
        return proxy
    }

    /// A TCP proxy to one cluster, or to several by weight (``WeightedSplit``).
    static func to(clusters: [String], weights: [Int32?]) -> TCPProxy {
        var proxy = TCPProxy()
        if clusters.count == 1 {
            proxy.cluster = clusters[0]
        } else {
            var weighted = TCPProxy.WeightedCluster()
            weighted.clusters = zip(WeightedSplit.weights(weights), clusters).compactMap { weight, name in
                guard let weight else { return nil }
                var cluster = TCPProxy.WeightedCluster.ClusterWeight()
                cluster.name = name
                cluster.weight = weight
                return cluster
            }
            proxy.weightedClusters = weighted
        }
        return proxy
    }
}

extension HCM {
    /// A connection manager with the settings every meshd sidecar uses.
    static func outbound(statPrefix: String) -> HCM {
        var hcm = HCM.common(statPrefix: statPrefix)
        hcm.useRemoteAddress = Google_Protobuf_BoolValue(false)
        // CORS and faults are configured per route; the filters do nothing without that.
        hcm.httpFilters = [
            Envoy.httpFilter("envoy.filters.http.cors", Envoy_Extensions_Filters_Http_Cors_V3_Cors()),
            Envoy.httpFilter("envoy.filters.http.fault", Envoy_Extensions_Filters_Http_Fault_V3_HTTPFault()),
            Envoy.routerFilter,
        ]
        return hcm
    }

    static func common(statPrefix: String) -> HCM {
        var hcm = HCM()
        hcm.statPrefix = statPrefix
        hcm.codecType = .auto
        hcm.normalizePath = Google_Protobuf_BoolValue(true)
        hcm.mergeSlashes = true
        hcm.httpFilters = [Envoy.routerFilter]
        return hcm
    }
}
