import EnvoyAPI
import Foundation
import MeshConfig
import MeshModel
import MeshTranslation
import SwiftProtobuf
import Testing
import XDSTesting

@Suite("Protocol detection on undeclared ports, and gRPC ports")
struct ProtocolDetectionTests {
    /// `web` declares nothing on 8080 (`name: web`), `db` is MySQL (server-first), `rpc` gRPC.
    static let mesh = """
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata: {name: web, namespace: shop}
        spec:
          hosts: [web.shop.svc.cluster.local]
          location: MESH_INTERNAL
          resolution: STATIC
          ports: [{number: 8080, name: web}]
          workloadSelector: {labels: {app: web}}
        ---
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata: {name: db, namespace: shop}
        spec:
          hosts: [db.shop.svc.cluster.local]
          location: MESH_INTERNAL
          resolution: STATIC
          ports: [{number: 3306, name: mysql}]
          workloadSelector: {labels: {app: db}}
        ---
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata: {name: rpc, namespace: shop}
        spec:
          hosts: [rpc.shop.svc.cluster.local]
          location: MESH_INTERNAL
          resolution: STATIC
          ports: [{number: 9090, name: grpc-api}]
          workloadSelector: {labels: {app: rpc}}
        ---
        apiVersion: networking.istio.io/v1
        kind: WorkloadEntry
        metadata: {name: web-1, namespace: shop}
        spec: {address: 127.0.0.30, labels: {app: web}, serviceAccount: web}
        ---
        apiVersion: networking.istio.io/v1
        kind: WorkloadEntry
        metadata: {name: db-1, namespace: shop}
        spec: {address: 127.0.0.32, labels: {app: db}, serviceAccount: db}
        ---
        apiVersion: networking.istio.io/v1
        kind: WorkloadEntry
        metadata: {name: rpc-1, namespace: shop}
        spec: {address: 127.0.0.33, labels: {app: rpc}, serviceAccount: rpc}
        ---
        apiVersion: networking.istio.io/v1
        kind: WorkloadEntry
        metadata: {name: client, namespace: shop}
        spec: {address: 127.0.0.31, labels: {app: client}, serviceAccount: client}
        """

    /// Where each workload's listeners are: the client's outbound ones on the default egress bind.
    static let addresses = ["web-1": "127.0.0.30", "client": "127.0.0.1", "db-1": "127.0.0.32", "rpc-1": "127.0.0.33"]

    func resources(_ workload: String, yaml: String = mesh, meshYAML: String? = nil) throws -> XDSResourceSet {
        var snapshot = try snapshot(yaml)
        if let meshYAML {
            let settings = try MeshTelemetry(document: try #require(try YAMLDocuments.parse(meshYAML, source: "mesh.yaml").first).value)
            snapshot = MeshSnapshot(revision: 1, mesh: settings, resources: Array(snapshot.resources.values))
        }
        let resources = SidecarTranslator.translate(snapshot, workload: try #require(snapshot.registry.workload(.init(namespace: "shop", name: workload))))
            .resources
        expectPrintable(resources)
        return resources
    }

    func listener(_ resources: XDSResourceSet, _ workload: String, port: UInt32) throws -> Envoy_Config_Listener_V3_Listener {
        try #require(resources.resources(ofType: XDSTypeURL.listener)["\(Self.addresses[workload]!)_\(port)"]?.unpack(Envoy_Config_Listener_V3_Listener.self))
    }

    func cluster(_ resources: XDSResourceSet, _ name: String) throws -> Envoy_Config_Cluster_V3_Cluster {
        try #require(resources.resources(ofType: XDSTypeURL.cluster)[name]?.unpack(Envoy_Config_Cluster_V3_Cluster.self))
    }

    static func usesDownstreamProtocol(_ options: Envoy_Extensions_Upstreams_Http_V3_HttpProtocolOptions) -> Bool {
        if case .useDownstreamProtocolConfig? = options.upstreamProtocolOptions { true } else { false }
    }

    func networkFilters(_ chain: Envoy_Config_Listener_V3_FilterChain) -> [String] { chain.filters.map(\.name) }

    func hcm(_ chain: Envoy_Config_Listener_V3_FilterChain) throws -> Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager {
        try Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager(
            unpackingAny: try #require(chain.filters.first { $0.name == "envoy.filters.network.http_connection_manager" }).typedConfig)
    }

    func upstreamTLS(_ cluster: Envoy_Config_Cluster_V3_Cluster) throws -> Envoy_Extensions_TransportSockets_Tls_V3_UpstreamTlsContext {
        let match = try #require(cluster.transportSocketMatches.first { $0.name == "tlsMode-istio" })
        return try Envoy_Extensions_TransportSockets_Tls_V3_UpstreamTlsContext(unpackingAny: match.transportSocket.typedConfig)
    }

    func protocolOptions(_ cluster: Envoy_Config_Cluster_V3_Cluster) throws -> Envoy_Extensions_Upstreams_Http_V3_HttpProtocolOptions {
        try Envoy_Extensions_Upstreams_Http_V3_HttpProtocolOptions(unpackingAny: try #require(cluster.typedExtensionProtocolOptions["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]))
    }

    @Test("an undeclared port sniffs: http_inspector picks HTTP (http/1.1, h2c) or TCP per connection, with the 5 s default timeout; a declared server-first port is never inspected")
    func outbound() throws {
        let client = try resources("client")
        let web = try listener(client, "client", port: 8080)
        #expect(web.listenerFilters.map(\.name) == ["envoy.filters.listener.tls_inspector", "envoy.filters.listener.http_inspector"])
        #expect(web.listenerFiltersTimeout.seconds == 5 && web.continueOnListenerFiltersTimeout)
        #expect(web.filterChains.map { $0.filterChainMatch.transportProtocol } == ["raw_buffer", "raw_buffer", "tls"], "plaintext HTTP, plaintext TCP, the app's own TLS")
        #expect(web.filterChains[0].filterChainMatch.applicationProtocols == ["http/1.1", "h2c"])
        #expect(web.filterChains[0].filterChainMatch.transportProtocol == "raw_buffer", "TLS from the app (whose ALPN may say http/1.1) passes through as TCP")
        #expect(try hcm(web.filterChains[0]).rds.routeConfigName == "8080")
        #expect(web.filterChains[1].filterChainMatch.applicationProtocols.isEmpty, "the TCP chain takes other plaintext")
        for chain in web.filterChains.suffix(2) {
            let proxy = try Envoy_Extensions_Filters_Network_TcpProxy_V3_TcpProxy(unpackingAny: try #require(chain.filters.first).typedConfig)
            #expect(proxy.cluster == "outbound|8080||web.shop.svc.cluster.local")
        }
        #expect(client.resources(ofType: XDSTypeURL.route)["8080"] != nil, "the HTTP side routes by the port's route configuration")

        let db = try listener(client, "client", port: 3306)
        #expect(db.listenerFilters.isEmpty && !db.hasListenerFiltersTimeout, "MySQL speaks first: no inspection delays it")
        #expect(db.filterChains.map { networkFilters($0) } == [["envoy.filters.network.tcp_proxy"]])

        // The cluster: upstream HTTP as the client spoke it; mTLS without an ALPN of its own, so
        // the server sidecar sees h2/http1.1 from HTTP pools and nothing from TCP proxies.
        let webCluster = try cluster(client, "outbound|8080||web.shop.svc.cluster.local")
        #expect(try Self.usesDownstreamProtocol(protocolOptions(webCluster)))
        #expect(try upstreamTLS(webCluster).commonTlsContext.alpnProtocols.isEmpty)
        let rpcCluster = try cluster(client, "outbound|9090||rpc.shop.svc.cluster.local")
        #expect(try protocolOptions(rpcCluster).explicitHTTPConfig.protocolConfig.map { if case .http2ProtocolOptions = $0 { true } else { false } } == true, "gRPC goes upstream over HTTP/2")
        #expect(try upstreamTLS(rpcCluster).commonTlsContext.alpnProtocols == ["istio", "h2"], "as Istio: in-mesh, HTTP/2 (a proxyless gRPC server requires h2)")
    }

    @Test("the traffic simulator follows HTTP and TCP on an undeclared port through their own chains")
    func simulated() throws {
        let traffic = try simulator(try snapshot(Self.mesh), "shop", "client")
        #expect(try traffic.tcp(address: "127.0.0.1", port: 8080).cluster == "outbound|8080||web.shop.svc.cluster.local")
        let outcome = try traffic.http(.init(address: "127.0.0.1", port: 8080, authority: "web.shop.svc.cluster.local"))
        #expect(outcome.listener == "127.0.0.1_8080" && outcome.routeConfiguration == "8080" && outcome.clusters.map(\.name) == ["outbound|8080||web.shop.svc.cluster.local"], "\(outcome)")
    }

    @Test("inbound on an undeclared port: a TLS and a plaintext chain each for HTTP and for TCP (PERMISSIVE), TLS only under STRICT; the app gets the caller's protocol")
    func inbound() throws {
        let server = try resources("web-1")
        let permissive = try listener(server, "web-1", port: 8080)
        #expect(permissive.listenerFilters.map(\.name) == ["envoy.filters.listener.tls_inspector", "envoy.filters.listener.http_inspector"])
        let matches: [(String, String, [String])] = permissive.filterChains.map { ($0.name, $0.filterChainMatch.transportProtocol, $0.filterChainMatch.applicationProtocols) }
        #expect(matches.map { $0.0 } == ["inbound|8080||-mtls", "inbound|8080||-mtls-tcp", "inbound|8080||", "inbound|8080||-tcp"])
        #expect(matches.map { $0.1 } == ["tls", "tls", "raw_buffer", "raw_buffer"])
        #expect(matches.map { $0.2 } == [["h2", "http/1.1"], [], ["http/1.1", "h2c"], []])
        #expect(permissive.filterChains.map { networkFilters($0) } == [
            ["envoy.filters.network.http_connection_manager"], ["envoy.filters.network.tcp_proxy"],
            ["envoy.filters.network.http_connection_manager"], ["envoy.filters.network.tcp_proxy"],
        ])
        let tcpTLS = try Envoy_Extensions_TransportSockets_Tls_V3_DownstreamTlsContext(unpackingAny: permissive.filterChains[1].transportSocket.typedConfig)
        #expect(tcpTLS.commonTlsContext.alpnProtocols.isEmpty && tcpTLS.requireClientCertificate.value)
        #expect(try Self.usesDownstreamProtocol(protocolOptions(try cluster(server, "inbound|8080||"))))

        let strictMesh = Self.mesh + """

            ---
            apiVersion: security.istio.io/v1
            kind: PeerAuthentication
            metadata: {name: strict, namespace: shop}
            spec: {mtls: {mode: STRICT}}
            """
        let strict = try listener(try resources("web-1", yaml: strictMesh), "web-1", port: 8080)
        #expect(strict.filterChains.map(\.name) == ["inbound|8080||-mtls", "inbound|8080||-mtls-tcp"])
        let disabledMesh = strictMesh.replacingOccurrences(of: "mode: STRICT", with: "mode: DISABLE")
        let disabled = try listener(try resources("web-1", yaml: disabledMesh), "web-1", port: 8080)
        #expect(disabled.listenerFilters.map(\.name) == ["envoy.filters.listener.http_inspector"])
        #expect(disabled.filterChains.map { $0.filterChainMatch.applicationProtocols } == [["http/1.1", "h2c"], []])

        // A declared port keeps its one chain per mode.
        let mysql = try listener(try resources("db-1"), "db-1", port: 3306)
        #expect(mysql.filterChains.map(\.name) == ["inbound|3306||-mtls", "inbound|3306||"])
        #expect(mysql.listenerFilters.map(\.name) == ["envoy.filters.listener.tls_inspector"])
    }

    @Test("mesh.yaml protocolDetectionTimeout sets the wait, and is refused below 1ms")
    func timeout() throws {
        let quick = try listener(try resources("client", meshYAML: "protocolDetectionTimeout: 0.25s"), "client", port: 8080)
        #expect(quick.listenerFiltersTimeout.nanos == 250_000_000 && quick.listenerFiltersTimeout.seconds == 0)
        let forever = try listener(try resources("client", meshYAML: "protocolDetectionTimeout: 0s"), "client", port: 8080)
        #expect(forever.hasListenerFiltersTimeout && forever.listenerFiltersTimeout == Google_Protobuf_Duration(), "0s: Envoy waits for the first bytes for ever")
        #expect(throws: SchemaError.self) {
            try MeshTelemetry(document: try YAMLDocuments.parse("protocolDetectionTimeout: 0.0005s", source: "mesh.yaml")[0].value)
        }
        do {
            _ = try MeshTelemetry(document: try YAMLDocuments.parse("protocolDetectionTimeout: soon", source: "mesh.yaml")[0].value)
            Issue.record("an invalid duration was taken")
        } catch {
            #expect("\(error)".hasPrefix("protocolDetectionTimeout:"), "\(error)")
        }
    }

    @Test("gRPC: per-status statistics on both sides, the caller's grpc-timeout honoured up to the route's timeout, the status in access logs")
    func grpc() throws {
        let routed = Self.mesh + """

            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: rpc, namespace: shop}
            spec:
              hosts: [rpc.shop.svc.cluster.local]
              http: [{route: [{destination: {host: rpc.shop.svc.cluster.local}}], timeout: 3s}]
            ---
            apiVersion: telemetry.istio.io/v1
            kind: Telemetry
            metadata: {name: logs, namespace: shop}
            spec: {accessLogging: [{providers: [{name: envoy}]}]}
            """
        let client = try resources("client", yaml: routed)
        let outbound = try hcm(try listener(client, "client", port: 9090).filterChains[0])
        #expect(outbound.httpFilters.map(\.name).suffix(2) == ["envoy.filters.http.grpc_stats", "envoy.filters.http.router"])
        let stats = try Envoy_Extensions_Filters_Http_GrpcStats_V3_FilterConfig(unpackingAny: outbound.httpFilters[outbound.httpFilters.count - 2].typedConfig)
        #expect(stats.statsForAllMethods.value == false, "method names come from callers: no per-method stat names")
        let log = try Envoy_Extensions_AccessLoggers_File_V3_FileAccessLog(unpackingAny: try #require(outbound.accessLog.first).typedConfig)
        #expect(log.logFormat.textFormatSource.inlineString.contains("grpc=%GRPC_STATUS(NUMBER)%"))
        let web = try hcm(try listener(client, "client", port: 8080).filterChains[0])
        #expect(!web.httpFilters.map(\.name).contains("envoy.filters.http.grpc_stats"))

        let routes = try #require(client.resources(ofType: XDSTypeURL.route)["9090"]?.unpack(Envoy_Config_Route_V3_RouteConfiguration.self))
        let action = try #require(routes.virtualHosts.first { $0.name.hasPrefix("rpc.") }?.routes.first?.route)
        #expect(action.timeout.seconds == 3 && action.maxGrpcTimeout.seconds == 3 && !action.hasMaxStreamDuration, "max_stream_duration would make Envoy ignore timeout")

        let inbound = try hcm(try listener(try resources("rpc-1", yaml: routed), "rpc-1", port: 9090).filterChains[0])
        #expect(inbound.httpFilters.map(\.name).suffix(2) == ["envoy.filters.http.grpc_stats", "envoy.filters.http.router"])
        let inboundRoute = try #require(inbound.routeConfig.virtualHosts.first?.routes.first?.route)
        #expect(inboundRoute.hasMaxGrpcTimeout && inboundRoute.maxGrpcTimeout == Google_Protobuf_Duration())
    }
}
