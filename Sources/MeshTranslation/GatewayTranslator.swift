internal import EnvoyAPI
public import MeshModel
internal import SwiftProtobuf
internal import XDSCache
internal import Foundation

/// What a connecting Envoy is: a sidecar next to one workload, or a gateway (Istio's "router")
/// that serves the `Gateway` resources selecting its workload.
public enum ProxyKind: String, Hashable, Sendable {
    case sidecar
    case router
    /// A gRPC application reading xDS itself (node metadata `GENERATOR: grpc`, as Istio's
    /// proxyless bootstraps say): served by ``ProxylessTranslator``.
    case proxyless

    /// The kind of a workload's proxy as meshd's bootstraps declare it: a router when a Gateway
    /// selects the workload, else a sidecar.
    public static func of(_ workload: WorkloadInstance, in snapshot: MeshSnapshot) -> ProxyKind {
        snapshot.gateways.contains { GatewayTranslator.selects($0.spec, workload) } ? .router : .sidecar
    }
}

/// How VirtualServices and their matches name gateways: `mesh` (the sidecars), `namespace/name`,
/// or a bare name in the VirtualService's namespace.
enum GatewayNames {
    /// Whether `names`, written in `namespace`, include `gateway` (`namespace/name`; nil is `mesh`).
    static func binds(_ names: [String], namespace: String, to gateway: String?) -> Bool {
        guard let gateway else { return names.contains("mesh") }
        return names.contains { $0 != "mesh" && HostName.gateway($0, in: namespace) == gateway }
    }

    /// Whether the conditions a VirtualService match (HTTP, TCP or TLS) puts on where traffic comes
    /// from hold for `proxy`, serving `gateway` (nil: a sidecar) on `port`: the match's port, source
    /// labels and namespace, and gateways (written in the VirtualService's `namespace`).
    static func matchApplies(
        port wanted: UInt32?, sourceLabels: [String: String]?, sourceNamespace: String?, gateways: [String]?,
        namespace: String, proxy: WorkloadInstance, gateway: String?, port: UInt32
    ) -> Bool {
        if let wanted, wanted != 0, wanted != port { return false }
        if let sourceLabels, !proxy.matches(sourceLabels) { return false }
        if let sourceNamespace, !sourceNamespace.isEmpty, sourceNamespace != proxy.namespace { return false }
        if let gateways, !gateways.isEmpty, !binds(gateways, namespace: namespace, to: gateway) { return false }
        return true
    }
}

/// Translates the `Gateway` resources that select a workload into its Envoy configuration, as
/// istiod does for a gateway: one listener per bound port; HTTP servers route through RDS
/// `http.<port>` by the hosts of the VirtualServices bound to the gateway; HTTPS servers terminate
/// TLS (files, or the workload's own mesh certificate for ISTIO_MUTUAL) in a filter chain per
/// server, with RDS `https.<port>.<port name>.<gateway>.<namespace>`; PASSTHROUGH servers proxy
/// TLS by SNI to the destinations of bound `tls` routes; TCP servers proxy to the first matching
/// `tcp` route. Clusters are those a sidecar of the gateway's namespace would have.
public enum GatewayTranslator {
    /// Whether `gateway` applies to `workload`: its `selector` matches the workload's labels (a
    /// Gateway without a selector is refused; one seen anyway selects nothing).
    static func selects(_ gateway: Gateway, _ workload: WorkloadInstance) -> Bool {
        let selector = gateway.selector ?? [:]
        return !selector.isEmpty && workload.matches(selector)
    }

    /// One server of one Gateway.
    struct BoundServer {
        var gateway: Configured<Gateway>
        var index: Int
        var server: Server
        var key: String { "\(gateway.metadata.namespace)/\(gateway.metadata.name)" }
        var isHTTPS: Bool { server.port.protocol.uppercased() == "HTTPS" }
        /// TLS the gateway passes through by SNI (`PASSTHROUGH`), not terminates.
        var isPassthrough: Bool { server.tls?.mode == .PASSTHROUGH }
        var routeName: String {
            // Istio's names; a server with its own `bind` adds it, so that one port on two
            // addresses has two route configurations.
            let bind = server.bind.flatMap { $0.isEmpty ? nil : ".\($0)" } ?? ""
            return isHTTPS
                ? "https.\(server.port.number).\(server.port.name).\(gateway.metadata.name).\(gateway.metadata.namespace)\(bind)"
                : "http.\(server.port.number)\(bind)"
        }
    }

    /// The configuration of the gateway proxy of `workload`. With `reporting`, it streams the
    /// entries of Istio's standard metrics to meshd, as the `source` of the requests it forwards.
    public static func translate(
        _ snapshot: MeshSnapshot, workload: WorkloadInstance, upstreamBind: UpstreamBind = UpstreamBind(), memo: TranslationMemo? = nil,
        reporting: MetricsReporting? = nil
    ) -> ProxyConfiguration {
        var warnings: [String] = []
        let gateways = snapshot.gateways.filter { selects($0.spec, workload) }.sorted { $0.key < $1.key }
        if gateways.isEmpty { warnings.append("no Gateway selects this gateway workload; it serves no listeners") }
        func bind(_ server: Server) -> String { server.bind?.isEmpty == false ? server.bind! : workload.address }
        var ports: [String: [BoundServer]] = [:]
        for gateway in gateways {
            for (index, server) in (gateway.spec.servers ?? []).enumerated() {
                ports[ResourceNames.listener(address: bind(server), port: server.port.number), default: []].append(BoundServer(gateway: gateway, index: index, server: server))
            }
        }
        let telemetry = TelemetryPolicy(workload: workload, snapshot: snapshot, reporting: reporting)
        var builder = GatewayBuilder(snapshot: snapshot, workload: workload, telemetry: telemetry)
        var resources = XDSResourceSet()
        for name in ports.keys.sorted() {
            var servers = ports[name]!
            // One protocol per port: the first server's (by gateway name) wins.
            let first = servers[0]
            let conflicting = servers.filter { $0.server.portKind != first.server.portKind }
            for server in conflicting {
                warnings.append("Gateway \(server.key) servers[\(server.index)]: port \(server.server.port.number) is already \(first.server.port.protocol) for Gateway \(first.key); this server is not served")
            }
            servers.removeAll { server in conflicting.contains { $0.key == server.key && $0.index == server.index } }
            for resource in builder.resources(listener: name, servers: servers) { resources.insert(resource) }
        }
        let scope = SidecarScope(workload: workload, snapshot: snapshot)
        let outbound = OutboundBuilder(scope: scope, snapshot: snapshot, inboundBindings: [], telemetry: telemetry, upstreamBind: upstreamBind)
        let clusters = outbound.clusterResources(memo: memo)
        for cluster in clusters.clusters { resources.insert(cluster) }
        for assignment in clusters.loadAssignments { resources.insert(assignment) }
        for cluster in telemetry.collectorClusters(snapshot: snapshot, bind: upstreamBind.otherCluster) {
            resources.insert(XDSResource(name: cluster.name, message: cluster))
        }
        // TCP servers nothing routes proxy to the black hole.
        let blackHole = EgressPolicy.cluster(allowAny: false, bind: upstreamBind.otherCluster)
        resources.insert(XDSResource(name: blackHole.name, message: blackHole))
        return ProxyConfiguration(resources: resources, warnings: warnings + builder.warnings)
    }
}

/// Builds one gateway's listeners and route configurations.
struct GatewayBuilder {
    let snapshot: MeshSnapshot
    let workload: WorkloadInstance
    let telemetry: TelemetryPolicy
    let destinationRules: DestinationRuleIndex
    let authorization: AuthorizationBuilder
    var warnings: [String] = []

    init(snapshot: MeshSnapshot, workload: WorkloadInstance, telemetry: TelemetryPolicy) {
        self.snapshot = snapshot
        self.workload = workload
        self.telemetry = telemetry
        destinationRules = DestinationRuleIndex(snapshot: snapshot)
        authorization = AuthorizationBuilder(workload: workload, snapshot: snapshot)
    }

    typealias BoundServer = GatewayTranslator.BoundServer

    /// The listener named `name` for `servers` (all on its address and port), and the route
    /// configurations its HTTP servers use.
    mutating func resources(listener name: String, servers: [BoundServer]) -> [XDSResource] {
        let first = servers[0]
        var listener = Listener()
        listener.name = name
        listener.address = Envoy.address(first.server.bind?.isEmpty == false ? first.server.bind! : workload.address, port: first.server.port.number)
        listener.trafficDirection = .outbound
        var out: [XDSResource] = []
        let statPrefix = telemetry.client.metrics ? "outbound_\(name)" : TelemetryPolicy.disabledStatName
        switch first.server.portKind {
        case .tls:
            listener.listenerFilters = [TLSContexts.tlsInspector]
            var chains: [FilterChain] = []
            var claimed: Set<String> = []
            for server in servers {
                if server.isPassthrough {
                    chains += passthroughChains(server, claimed: &claimed)
                    continue
                }
                guard let names = Self.claim(server.server.hostNames, &claimed) else {
                    warnings.append("Gateway \(server.key) servers[\(server.index)]: another server on port \(server.server.port.number) already serves \(server.server.hosts.joined(separator: ", ")); this one is not served")
                    continue
                }
                var chain = FilterChain()
                chain.name = server.routeName
                if let tls = server.server.tls {
                    guard let secrets = credentialSecrets(tls, server: server) else { continue }
                    out += secrets
                }
                if !names.isEmpty {
                    var match = Envoy_Config_Listener_V3_FilterChainMatch()
                    match.serverNames = names
                    chain.filterChainMatch = match
                }
                if let tls = server.server.tls { chain.transportSocket = Self.serverTLS(tls, trustDomain: snapshot.settings.trustDomain, fips: snapshot.settings.fips) }
                chain.filters = [Envoy.networkFilter("envoy.filters.network.http_connection_manager", hcm(statPrefix: statPrefix, routeName: server.routeName))]
                chains.append(chain)
                out.append(XDSResource(name: server.routeName, message: routeConfiguration(name: server.routeName, servers: [server])))
            }
            guard !chains.isEmpty else {
                // Envoy refuses a listener without filter chains: a passthrough port nothing routes
                // is not opened.
                warnings.append("port \(first.server.port.number): no VirtualService tls rule routes \(servers.map(\.key).joined(separator: ", ")) here; the port is not opened")
                return out
            }
            listener.filterChains = chains
        case .http:
            var chain = FilterChain()
            chain.filters = [Envoy.networkFilter("envoy.filters.network.http_connection_manager", hcm(statPrefix: statPrefix, routeName: first.routeName))]
            listener.filterChains = [chain]
            out.append(XDSResource(name: first.routeName, message: routeConfiguration(name: first.routeName, servers: servers)))
        case .tcp:
            var chain = FilterChain()
            var proxy = tcpProxy(servers: servers)
            proxy.statPrefix = telemetry.client.metrics ? (proxy.cluster.isEmpty ? name : proxy.cluster) : TelemetryPolicy.disabledStatName
            telemetry.applyLogs(to: &proxy, .source)
            chain.filters = authorization.networkFilters(statPrefix: "\(name)_") + [Envoy.networkFilter("envoy.filters.network.tcp_proxy", proxy)]
            listener.filterChains = [chain]
        }
        out.insert(XDSResource(name: listener.name, message: listener), at: 0)
        return out
    }

    /// The server names a filter chain on a port can still take: `names` (hosts without their
    /// namespace) less those earlier chains took, `*` standing for the chain without server
    /// names; empty for that chain, nil when nothing is left (Envoy refuses two chains that match
    /// the same name).
    static func claim(_ names: [String], _ claimed: inout Set<String>) -> [String]? {
        let wanted = names.contains("*") ? ["*"] : Array(Set(names)).sorted()
        let free = wanted.filter { !claimed.contains($0) }
        guard !free.isEmpty else { return nil }
        claimed.formUnion(free)
        return free == ["*"] ? [] : free
    }

    /// The filter chains of a PASSTHROUGH server: one per `tls` rule of a bound VirtualService,
    /// chosen by the SNI hosts it matches (those the server's hosts admit), proxying the still
    /// encrypted connection to the rule's destinations. SNI sets already `claimed` on the port are
    /// skipped with a warning.
    mutating func passthroughChains(_ server: BoundServer, claimed: inout Set<String>) -> [FilterChain] {
        var chains: [FilterChain] = []
        let port = server.server.port.number
        for service in virtualServices(boundTo: server.key) {
            let serviceNamespace = service.metadata.namespace
            let serverHosts = Self.admittedHosts(server, for: service)
            for (index, rule) in (service.spec.tls ?? []).enumerated() {
                let matches = rule.match.filter { match in
                    GatewayNames.matchApplies(
                        port: match.port, sourceLabels: match.sourceLabels, sourceNamespace: match.sourceNamespace, gateways: match.gateways,
                        namespace: serviceNamespace, proxy: workload, gateway: server.key, port: port)
                }
                let wanted = matches.flatMap { match in
                    match.sniHosts.map { $0.lowercased() }.flatMap { sni in serverHosts.compactMap { Self.commonHost(sni, $0) } }
                }
                guard !wanted.isEmpty, let destinations = rule.route, !destinations.isEmpty else { continue }
                guard let names = Self.claim(wanted, &claimed) else {
                    warnings.append("\(service.key) tls[\(index)]: SNI \(Set(wanted).sorted().joined(separator: ", ")) on port \(port) is already routed; this rule is not served")
                    continue
                }
                var builder = HTTPRouteBuilder(snapshot: snapshot, proxy: workload, destinationRules: destinationRules, gateway: server.key)
                var proxy = TCPProxy.to(destinations, namespace: serviceNamespace, port: port, builder: &builder)
                warnings += builder.unresolved.map { "\(service.key): \($0)" }
                proxy.statPrefix = telemetry.client.metrics ? (proxy.cluster.isEmpty ? "\(serviceNamespace)_\(service.metadata.name)_tls_\(index)" : proxy.cluster) : TelemetryPolicy.disabledStatName
                telemetry.applyLogs(to: &proxy, .source)
                var chain = FilterChain()
                chain.name = "\(service.metadata.namespace)/\(service.metadata.name)/tls[\(index)]"
                var match = Envoy_Config_Listener_V3_FilterChainMatch()
                match.serverNames = names
                chain.filterChainMatch = match
                chain.filters = authorization.networkFilters(statPrefix: "\(workload.address)_\(port)_") + [Envoy.networkFilter("envoy.filters.network.tcp_proxy", proxy)]
                chains.append(chain)
            }
        }
        return chains
    }

    /// An edge connection manager: the gateway is where requests enter the mesh, so it sets the
    /// client address (trusting `numTrustedProxies` hops of X-Forwarded-For, as Istio does).
    func hcm(statPrefix: String, routeName: String) -> HCM {
        var hcm = HCM.outbound(statPrefix: statPrefix)
        hcm.useRemoteAddress = Google_Protobuf_BoolValue(true)
        hcm.xffNumTrustedHops = snapshot.mesh.numTrustedProxies
        hcm.pathWithEscapedSlashesAction = .unescapeAndForward
        hcm.forwardClientCertDetails = .sanitize
        if let tracing = telemetry.client.tracing { hcm.tracing = telemetry.hcmTracing(tracing) }
        hcm.accessLog = (authorization.hasDryRun ? [AuthorizationBuilder.dryRunAccessLog] : []) + telemetry.httpLogs(.source)
        hcm.httpFilters = authorization.httpFilters(gateway: true) + hcm.httpFilters
        var rds = Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_Rds()
        rds.configSource = Envoy.adsConfigSource
        rds.routeConfigName = routeName
        hcm.rds = rds
        return hcm
    }

    /// The SDS secrets of the credentials `tls` names, from the Secrets of the gateway
    /// workload's namespace (never another's); nil, with a warning, when one is missing (the
    /// server is then not served: Envoy would wait for the secret forever).
    mutating func credentialSecrets(_ tls: ServerTLSSettings, server: BoundServer) -> [XDSResource]? {
        let namespace = workload.namespace
        let snapshot = snapshot
        let lookup = { (name: String) in snapshot.credential(name, in: namespace) }
        var out: [XDSResource] = []
        for name in GatewayCredentials.names(tls) {
            guard let secret = lookup(name), let chain = secret.certificateChain, let key = secret.privateKey else {
                warnings.append("Gateway \(server.key) servers[\(server.index)]: no Secret \(namespace)/\(name) with a certificate and key in the gateway's namespace; this server is not served")
                return nil
            }
            var pair = Envoy_Extensions_TransportSockets_Tls_V3_TlsCertificate()
            pair.certificateChain = Self.inline(chain)
            pair.privateKey = Self.inline(key)
            var message = Envoy_Extensions_TransportSockets_Tls_V3_Secret()
            message.name = GatewayCredentials.certificateResource(name)
            message.tlsCertificate = pair
            out.append(XDSResource(name: message.name, message: message))
        }
        if let name = GatewayCredentials.caName(tls) {
            guard let ca = GatewayCredentials.caCertificates(name, lookup: lookup) else {
                warnings.append("Gateway \(server.key) servers[\(server.index)]: no CA certificates for credential \(namespace)/\(name) (its ca.crt, or Secret \(name)-cacert); this server is not served")
                return nil
            }
            var validation = Envoy_Extensions_TransportSockets_Tls_V3_CertificateValidationContext()
            validation.trustedCa = Self.inline(ca)
            var message = Envoy_Extensions_TransportSockets_Tls_V3_Secret()
            message.name = GatewayCredentials.caResource(name)
            message.validationContext = validation
            out.append(XDSResource(name: message.name, message: message))
        }
        return out
    }

    static func inline(_ bytes: [UInt8]) -> Envoy_Config_Core_V3_DataSource {
        var source = Envoy_Config_Core_V3_DataSource()
        source.inlineBytes = Data(bytes)
        return source
    }

    /// TLS termination of an HTTPS server: the credentials it names, over SDS (SIMPLE; MUTUAL
    /// and OPTIONAL_MUTUAL also check client certificates against the credential's CA), or the
    /// files it names (the same, with `caCertificates`), or the gateway workload's own mesh
    /// certificate and the mesh's roots (ISTIO_MUTUAL).
    /// In FIPS mode the parameters are ``FIPSPolicy``'s, narrowed by what the server asks for
    /// (the config store refuses anything else it asks for; what is not approved is dropped here).
    static func serverTLS(_ tls: ServerTLSSettings, trustDomain: String, fips: Bool) -> TransportSocket {
        var context = Envoy_Extensions_TransportSockets_Tls_V3_DownstreamTlsContext()
        var common: CommonTLS
        if tls.mode == .ISTIO_MUTUAL {
            // Any workload of the trust domain, unless the server names the clients it admits.
            let sans = tls.subjectAltNames ?? []
            common = TLSContexts.istioCommon(
                sans: sans.isEmpty ? [TLSContexts.uriMatcher(prefix: "spiffe://\(trustDomain)/")] : TLSContexts.sanMatchers(sans), alpn: ["h2", "http/1.1"], fips: fips)
            common.combinedValidationContext.defaultValidationContext.verifyCertificateSpki = tls.verifyCertificateSpki ?? []
            common.combinedValidationContext.defaultValidationContext.verifyCertificateHash = tls.verifyCertificateHash ?? []
            context.requireClientCertificate = Google_Protobuf_BoolValue(true)
        } else {
            common = CommonTLS()
            common.alpnProtocols = ["h2", "http/1.1"]
            let credentials = GatewayCredentials.names(tls)
            if credentials.isEmpty {
                var pair = Envoy_Extensions_TransportSockets_Tls_V3_TlsCertificate()
                var chain = Envoy_Config_Core_V3_DataSource()
                chain.filename = tls.serverCertificate ?? ""
                var key = Envoy_Config_Core_V3_DataSource()
                key.filename = tls.privateKey ?? ""
                pair.certificateChain = chain
                pair.privateKey = key
                common.tlsCertificates = [pair]
            } else {
                common.tlsCertificateSdsSecretConfigs = credentials.map { TLSContexts.sdsSecret(GatewayCredentials.certificateResource($0)) }
            }
            if tls.mode == .MUTUAL || tls.mode == .OPTIONAL_MUTUAL {
                var validation = Envoy_Extensions_TransportSockets_Tls_V3_CertificateValidationContext()
                validation.matchTypedSubjectAltNames = TLSContexts.sanMatchers(tls.subjectAltNames ?? [])
                validation.verifyCertificateSpki = tls.verifyCertificateSpki ?? []
                validation.verifyCertificateHash = tls.verifyCertificateHash ?? []
                if let ca = GatewayCredentials.caName(tls) {
                    // The checks here; the CA over SDS, so a rotated CA reaches open listeners.
                    var combined = Envoy_Extensions_TransportSockets_Tls_V3_CommonTlsContext.CombinedCertificateValidationContext()
                    combined.defaultValidationContext = validation
                    combined.validationContextSdsSecretConfig = TLSContexts.sdsSecret(GatewayCredentials.caResource(ca))
                    common.combinedValidationContext = combined
                } else {
                    var trusted = Envoy_Config_Core_V3_DataSource()
                    trusted.filename = tls.caCertificates ?? ""
                    validation.trustedCa = trusted
                    common.validationContext = validation
                }
                context.requireClientCertificate = Google_Protobuf_BoolValue(tls.mode == .MUTUAL)
            }
        }
        var params = common.hasTlsParams ? common.tlsParams : Envoy_Extensions_TransportSockets_Tls_V3_TlsParameters()
        if let minimum = tls.minProtocolVersion { params.tlsMinimumProtocolVersion = protocolVersion(minimum) } else if tls.mode != .ISTIO_MUTUAL { params.tlsMinimumProtocolVersion = .tlsv12 }
        if let maximum = tls.maxProtocolVersion { params.tlsMaximumProtocolVersion = protocolVersion(maximum) }
        params.cipherSuites = tls.cipherSuites ?? []
        if fips {
            let pinned = TLSContexts.parameters(fips: true)
            if ![.tlsv12, .tlsv13].contains(params.tlsMinimumProtocolVersion) { params.tlsMinimumProtocolVersion = pinned.tlsMinimumProtocolVersion }
            if ![.tlsv12, .tlsv13].contains(params.tlsMaximumProtocolVersion) { params.tlsMaximumProtocolVersion = pinned.tlsMaximumProtocolVersion }
            let approved = params.cipherSuites.filter(FIPSPolicy.tls12CipherSuites.contains)
            params.cipherSuites = approved.isEmpty ? pinned.cipherSuites : approved
            params.ecdhCurves = pinned.ecdhCurves
            params.compliancePolicies = pinned.compliancePolicies
        }
        common.tlsParams = params
        context.commonTlsContext = common
        return TLSContexts.transportSocket(context)
    }

    static func protocolVersion(_ version: ServerTLSSettings.TLSProtocol) -> Envoy_Extensions_TransportSockets_Tls_V3_TlsParameters.TlsProtocol {
        switch version {
        case .TLS_AUTO: .tlsAuto
        case .TLSV1_0: .tlsv10
        case .TLSV1_1: .tlsv11
        case .TLSV1_2: .tlsv12
        case .TLSV1_3: .tlsv13
        }
    }

    /// The VirtualServices bound to `gateway` and exported to the gateway proxy's namespace, as
    /// Istio decides visibility, by key.
    func virtualServices(boundTo gateway: String) -> [Configured<VirtualService>] {
        snapshot.virtualServices.filter { service in
            GatewayNames.binds(service.spec.gateways ?? [], namespace: service.metadata.namespace, to: gateway)
                && ExportScope(exportTo: service.spec.exportTo, namespace: service.metadata.namespace).isVisible(from: workload.namespace)
        }.sorted { $0.key < $1.key }
    }

    /// The host a VirtualService host and a server host have in common, if any: the narrower one.
    static func commonHost(_ route: String, _ server: String) -> String? {
        if HostName.matches(route, pattern: server) { return route }
        if HostName.matches(server, pattern: route) { return server }
        return nil
    }

    /// The hosts of `server` (without their namespace part) that admit `service`: a server host
    /// `namespace/host` admits VirtualServices of that namespace, `./host` those of the Gateway's,
    /// `*/host` and a bare host any.
    static func admittedHosts(_ server: BoundServer, for service: Configured<VirtualService>) -> [String] {
        zip(server.server.hosts, server.server.hostNames).compactMap { written, host in
            let parts = written.split(separator: "/", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { return host }
            switch parts[0] {
            case "*": return host
            case ".": return service.metadata.namespace == server.gateway.metadata.namespace ? host : nil
            default: return parts[0] == service.metadata.namespace ? host : nil
            }
        }
    }

    /// The hosts `service` and `server` have in common (each the narrower of a pair).
    func sharedHosts(_ server: BoundServer, _ service: Configured<VirtualService>) -> [String] {
        let serverHosts = Self.admittedHosts(server, for: service)
        let routeHosts = (service.spec.hosts ?? []).map { HostName.resolve($0, in: service.metadata.namespace, domainSuffix: snapshot.settings.domainSuffix) }
        return routeHosts.flatMap { host in serverHosts.compactMap { Self.commonHost(host, $0) } }
    }

    /// The route configuration of HTTP `servers` (one port, or one HTTPS server): a virtual host per
    /// host the bound VirtualServices and the servers share, with the VirtualServices' routes;
    /// hosts of servers with `httpsRedirect` require TLS (a redirect to https).
    mutating func routeConfiguration(name: String, servers: [BoundServer]) -> RouteConfiguration {
        var config = RouteConfiguration()
        config.name = name
        config.validateClusters = Google_Protobuf_BoolValue(false)
        var hosts: [String: (routes: [Route], redirect: Bool)] = [:]
        var order: [String] = []
        for server in servers {
            let redirect = server.server.tls?.httpsRedirect == true && !server.isHTTPS
            if redirect {
                // Istio redirects every host of the server, routed or not.
                for host in server.server.hostNames where hosts[host] == nil {
                    order.append(host)
                    hosts[host] = ([], true)
                }
            }
            for service in virtualServices(boundTo: server.key) {
                let shared = sharedHosts(server, service)
                guard !shared.isEmpty else { continue }
                var builder = HTTPRouteBuilder(snapshot: snapshot, proxy: workload, destinationRules: destinationRules, gateway: server.key)
                let routes = builder.routes(service, port: server.server.port.number)
                warnings += builder.unresolved.map { "\(service.key): \($0)" }
                for host in shared {
                    if hosts[host] == nil {
                        order.append(host)
                        hosts[host] = ([], redirect)
                    }
                    hosts[host]!.routes += routes
                    hosts[host]!.redirect = hosts[host]!.redirect || redirect
                }
            }
        }
        let port = servers[0].server.port.number
        config.virtualHosts = order.sorted().map { host in
            var virtualHost = VirtualHost()
            virtualHost.name = "\(host):\(port)"
            virtualHost.domains = host == "*" ? ["*"] : [host, "\(host):*"]
            virtualHost.routes = hosts[host]!.routes
            if hosts[host]!.redirect { virtualHost.requireTls = .all }
            return virtualHost
        }
        return config
    }

    /// A TCP server's proxy: the first `tcp` rule of a bound VirtualService whose match applies to
    /// this port; with no such rule, a cluster that does not exist (connections are refused).
    mutating func tcpProxy(servers: [BoundServer]) -> TCPProxy {
        let port = servers[0].server.port.number
        for server in servers {
            // Only VirtualServices whose hosts the server admits, as for HTTP.
            for service in virtualServices(boundTo: server.key) where !sharedHosts(server, service).isEmpty {
                let rule = (service.spec.tcp ?? []).first { rule in
                    let matches = rule.match ?? []
                    return matches.isEmpty || matches.contains { match in
                        GatewayNames.matchApplies(
                            port: match.port, sourceLabels: match.sourceLabels, sourceNamespace: match.sourceNamespace, gateways: match.gateways,
                            namespace: service.metadata.namespace, proxy: workload, gateway: server.key, port: port)
                    }
                }
                guard let rule, let destinations = rule.route, !destinations.isEmpty else { continue }
                var builder = HTTPRouteBuilder(snapshot: snapshot, proxy: workload, destinationRules: destinationRules, gateway: server.key)
                let proxy = TCPProxy.to(destinations, namespace: service.metadata.namespace, port: port, builder: &builder)
                warnings += builder.unresolved.map { "\(service.key): \($0)" }
                return proxy
            }
        }
        warnings.append("TCP port \(port): no VirtualService bound to \(servers.map(\.key).joined(separator: ", ")) routes it; connections are refused")
        return TCPProxy.to(clusters: [ResourceNames.blackHoleCluster], weights: [nil])
    }
}
