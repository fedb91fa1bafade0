internal import EnvoyAPI
internal import MeshModel
internal import SwiftProtobuf
internal import XDSCache

/// Builds a sidecar's inbound side: a listener on the workload's mesh address per ingress port,
/// delivering to the app through a static `inbound|<port>||` cluster.
struct InboundBuilder {
    let scope: SidecarScope
    let peerAuthentication: PeerAuthenticationPolicy
    let authorization: AuthorizationBuilder
    let trustDomain: String
    /// FIPS mode: TLS parameters pinned (``FIPSPolicy``).
    let fips: Bool
    let telemetry: TelemetryPolicy
    let numTrustedProxies: UInt32
    /// mesh.yaml's `protocolDetectionTimeout`, for ports whose protocol is detected.
    let detectionTimeout: IstioDuration

    /// Envoy-internal request headers the app must never get from a caller. Envoy itself removes
    /// its retry, timeout and force-trace headers from requests it treats as external (all of
    /// them: no address is internal in Envoy 1.33+ without `internal_address_config`); these it
    /// would pass through.
    static let internalOnlyHeaders = [
        "x-envoy-original-path", "x-envoy-decorator-operation", "x-envoy-downstream-service-cluster",
        "x-envoy-downstream-service-node", "x-envoy-external-address", "x-envoy-peer-metadata", "x-envoy-peer-metadata-id",
    ]

    init(scope: SidecarScope, snapshot: MeshSnapshot, telemetry: TelemetryPolicy) {
        self.scope = scope
        numTrustedProxies = snapshot.mesh.numTrustedProxies
        detectionTimeout = snapshot.mesh.protocolDetectionTimeout
        self.telemetry = telemetry
        peerAuthentication = PeerAuthenticationPolicy(workload: scope.workload, snapshot: snapshot)
        authorization = AuthorizationBuilder(workload: scope.workload, snapshot: snapshot)
        trustDomain = snapshot.settings.trustDomain
        fips = snapshot.settings.fips
    }

    /// The `address:port` pairs the inbound side binds.
    var bindings: Set<String> {
        Set(scope.ingress.map { "\($0.bind):\($0.port)" })
    }

    func listeners() -> [Listener] {
        scope.ingress.map(listener(for:))
    }

    /// The listeners, encoded; from `memo` when a workload with the same ``InboundInputs`` was
    /// translated before (`snapshot`: the view this builder was made from).
    func listenerResources(memo: TranslationMemo?, snapshot: MeshSnapshot) -> [XDSResource] {
        let build = { listeners().map { XDSResource(name: $0.name, message: $0) } }
        guard let memo else { return build() }
        let inputs = InboundInputs(
            workload: scope.workload, ingress: scope.ingress, modes: scope.ingress.map { peerAuthentication.servedMode(port: $0.port) },
            trustDomain: trustDomain, fips: fips, mesh: memo.meshTelemetry.id(of: "mesh", in: snapshot) { snapshot.mesh },
            server: telemetry.server, policies: authorization.policies,
            authentication: authorization.authentication.rules.map { entry in
                InboundInputs.Authentication(rule: entry.rule, keys: memo.keySets.id(of: entry.rule.jwksUri ?? entry.keys, in: snapshot) { entry.keys })
            })
        return memo.inboundListeners.value(for: inputs, generation: snapshot.revision, compute: build)
    }

    /// The listener of one ingress port. Its filter chains follow the port's PeerAuthentication
    /// mode as Istio builds them: STRICT has only a TLS chain (selected by `tls_inspector`), so
    /// plaintext is refused; PERMISSIVE adds a plaintext (`raw_buffer`) chain; DISABLE is plaintext
    /// only. Over mTLS the app gets the caller's identity in `x-forwarded-client-cert`. A port
    /// whose protocol is detected has each of them twice, HTTP and TCP (``ProtocolDetection``).
    func listener(for ingress: SidecarScope.Ingress) -> Listener {
        var listener = Listener()
        listener.name = ResourceNames.listener(address: ingress.bind, port: ingress.port)
        listener.address = Envoy.address(ingress.bind, port: ingress.port)
        listener.trafficDirection = .inbound
        let mode = peerAuthentication.servedMode(port: ingress.port)
        let detects = ingress.serviceProtocol.isDetected
        var chains: [FilterChain] = []
        if mode != .disable {
            for http in detects ? [true, false] : [ingress.serviceProtocol.isHTTP] {
                var tls = filterChain(for: ingress, mutualTLS: true, http: http)
                tls.filterChainMatch = ProtocolDetection.match(detects && http ? ProtocolDetection.alpnHTTP : [], transport: "tls")
                tls.transportSocket = TLSContexts.downstream(trustDomain: trustDomain, http: http, fips: fips)
                chains.append(tls)
            }
            listener.listenerFilters = [TLSContexts.tlsInspector]
        }
        if mode != .strict {
            for http in detects ? [true, false] : [ingress.serviceProtocol.isHTTP] {
                var plain = filterChain(for: ingress, mutualTLS: false, http: http)
                if mode == .permissive || (detects && http) {
                    plain.filterChainMatch = ProtocolDetection.match(detects && http ? ProtocolDetection.plaintextHTTP : [], transport: mode == .permissive ? "raw_buffer" : nil)
                }
                chains.append(plain)
            }
        }
        if detects { ProtocolDetection.inspect(&listener, tls: mode != .disable, timeout: detectionTimeout) }
        listener.filterChains = chains
        return listener
    }

    /// One filter chain: the HTTP connection manager when `http`, else a TCP proxy. On a detected
    /// port the TCP chains' names end in `-tcp`.
    private func filterChain(for ingress: SidecarScope.Ingress, mutualTLS: Bool, http: Bool) -> FilterChain {
        let cluster = ResourceNames.inboundCluster(port: ingress.port)
        var chain = FilterChain()
        chain.name = (mutualTLS ? "\(cluster)-mtls" : cluster) + (ingress.serviceProtocol.isDetected && !http ? "-tcp" : "")
        if http {
            var hcm = HCM.common(statPrefix: telemetry.server.metrics ? "inbound_0.0.0.0_\(ingress.port)" : TelemetryPolicy.disabledStatName)
            if let tracing = telemetry.server.tracing { hcm.tracing = telemetry.hcmTracing(tracing) }
            hcm.routeConfig = routeConfiguration(for: ingress)
            // As Istio's sidecars: the connection is not an edge, so X-Forwarded-Proto and the
            // request id pass through. X-Forwarded-For is only believed when mesh.yaml trusts
            // proxies in front (gatewayTopology.numTrustedProxies = N: the N-th entry from the
            // right is the client); otherwise authorization judges the connection's peer
            // (AuthorizationBuilder.remoteAddress), so a forged header changes no decision.
            hcm.useRemoteAddress = Google_Protobuf_BoolValue(false)
            hcm.xffNumTrustedHops = numTrustedProxies > 0 ? numTrustedProxies - 1 : 0
            // Normalise before authorization sees the path: decode %2F, resolve dot segments,
            // merge slashes — so `/a/../b`, `//a` and `%2F` cannot slip past a path rule.
            hcm.pathWithEscapedSlashesAction = .unescapeAndForward
            let grpcStats = ingress.serviceProtocol.isGRPC && telemetry.server.metrics ? [ProtocolDetection.grpcStatsFilter] : []
            hcm.httpFilters = authorization.httpFilters() + grpcStats + [Envoy.routerFilter]
            hcm.accessLog = (authorization.hasDryRun ? [AuthorizationBuilder.dryRunAccessLog] : []) + telemetry.httpLogs(.destination)
            if mutualTLS {
                hcm.forwardClientCertDetails = .sanitizeSet
                var details = HCM.SetCurrentClientCertDetails()
                details.subject = Google_Protobuf_BoolValue(true)
                details.uri = true
                details.dns = true
                hcm.setCurrentClientCertDetails = details
            } else {
                hcm.forwardClientCertDetails = .sanitize
            }
            chain.filters = [Envoy.networkFilter("envoy.filters.network.http_connection_manager", hcm)]
        } else {
            var proxy = TCPProxy()
            proxy.statPrefix = telemetry.server.metrics ? cluster : TelemetryPolicy.disabledStatName
            proxy.cluster = cluster
            telemetry.applyLogs(to: &proxy, .destination)
            if mutualTLS {
                // The app is connected once the caller's certificate is verified (so a failed
                // handshake never reaches it, and the connection's first access log entry names
                // the caller), as Istio does where it needs the peer's identity.
                proxy.upstreamConnectMode = .onDownstreamTlsHandshake
                proxy.maxEarlyDataBytes = Google_Protobuf_UInt32Value(0)
            }
            chain.filters = authorization.networkFilters(statPrefix: "inbound_\(ingress.port)_") + [Envoy.networkFilter("envoy.filters.network.tcp_proxy", proxy)]
        }
        return chain
    }

    /// The inline routes of an inbound HTTP port: everything to the app, no timeout.
    func routeConfiguration(for ingress: SidecarScope.Ingress) -> RouteConfiguration {
        let cluster = ResourceNames.inboundCluster(port: ingress.port)
        var config = RouteConfiguration()
        config.name = cluster
        config.validateClusters = Google_Protobuf_BoolValue(false)
        config.internalOnlyHeaders = Self.internalOnlyHeaders
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
        Envoy.setTimeout(&action, Envoy.duration(seconds: 0))
        route.route = action
        host.routes = [route]
        config.virtualHosts = [host]
        return config
    }

    /// A static cluster per ingress port whose one endpoint is the app; `bind` says what each
    /// says about its upstream bind.
    func clusters(bind: UpstreamBind.ClusterBind) -> [Cluster] {
        var seen: Set<UInt32> = []
        return scope.ingress.compactMap { ingress in
            guard seen.insert(ingress.port).inserted else { return nil }
            let name = ResourceNames.inboundCluster(port: ingress.port)
            var cluster = Cluster()
            cluster.name = name
            cluster.type = .static
            cluster.connectTimeout = Envoy.duration(seconds: 10)
            cluster.circuitBreakers = Envoy.defaultCircuitBreakers
            bind.apply(to: &cluster)
            TelemetryPolicy.applyMetrics(to: &cluster, metrics: telemetry.server.metrics)
            if ingress.serviceProtocol.usesHTTP2 {
                cluster.typedExtensionProtocolOptions = Envoy.http2ProtocolOptions
            } else if ingress.serviceProtocol.isDetected {
                cluster.typedExtensionProtocolOptions = ProtocolDetection.downstreamProtocolOptions
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

/// Everything a workload's inbound listeners are built from (``InboundBuilder/listeners()``): the
/// workload (its labels and names reach access log paths and tracing), its ingress ports and the
/// mTLS mode served on each, the trust domain, mesh.yaml (by identity), the server side's
/// Telemetry settings, the AuthorizationPolicies that select it (with mesh.yaml, they give the
/// CUSTOM provider) and its RequestAuthentications with their keys.
struct InboundInputs: Hashable, Sendable {
    var workload: WorkloadInstance
    var ingress: [SidecarScope.Ingress]
    var modes: [MTLSMode]
    var trustDomain: String
    var fips: Bool
    var mesh: Int
    var server: TelemetryPolicy.Side
    var policies: [Configured<AuthorizationPolicy>]
    var authentication: [Authentication]

    /// A JWT rule and its key set (by identity).
    struct Authentication: Hashable, Sendable {
        var rule: JWTRule
        var keys: Int
    }
}
