import EnvoyAPI
import MeshConfig
import MeshModel
import MeshTranslation
import SwiftProtobuf
import Testing

@Suite("Istio's standard metric labels from access log entries, and the loggers that send them")
struct MetricsAttributionTests {
    /// web (HTTP 8080, TCP 9000) with two versions, a client, a workload outside the mesh's
    /// sidecars, and a DestinationRule that turns TLS off for the `legacy` subset.
    static let mesh = MutualTLSTranslationTests.base + """

        ---
        apiVersion: networking.istio.io/v1
        kind: WorkloadEntry
        metadata: {name: web-2, namespace: shop}
        spec: {address: 127.0.0.32, labels: {app: web, version: v2, service.istio.io/canonical-name: storefront}, serviceAccount: web}
        ---
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: web, namespace: shop}
        spec:
          host: web.shop.svc.cluster.local
          subsets:
          - {name: v2, labels: {version: v2}}
          - name: plain
            labels: {version: v2}
            trafficPolicy: {tls: {mode: DISABLE}}
        """

    static let client = ServiceRegistry.WorkloadID(namespace: "shop", name: "client")
    static let web2 = ServiceRegistry.WorkloadID(namespace: "shop", name: "web-2")

    static func address(_ ip: String, _ port: UInt32) -> Envoy_Config_Core_V3_Address {
        var socket = Envoy_Config_Core_V3_SocketAddress()
        socket.address = ip
        socket.portValue = port
        var address = Envoy_Config_Core_V3_Address()
        address.socketAddress = socket
        return address
    }

    static func san(_ uri: String) -> Envoy_Data_Accesslog_V3_TLSProperties.CertificateProperties {
        var name = Envoy_Data_Accesslog_V3_TLSProperties.CertificateProperties.SubjectAltName()
        name.uri = uri
        var properties = Envoy_Data_Accesslog_V3_TLSProperties.CertificateProperties()
        properties.subjectAltName = [name]
        return properties
    }

    /// An HTTP entry: `cluster` and `upstream` for the client side, `downstream` and the peer's
    /// certificate for the server side.
    static func entry(
        cluster: String = "", upstream: String = "", downstream: String = "", localPort: UInt32 = 8080, peer: String? = nil,
        authority: String = "web", status: UInt32 = 200, headers: [String: String] = [:], trailers: [String: String] = [:],
        configure: (inout Envoy_Data_Accesslog_V3_AccessLogCommon) -> Void = { _ in }
    ) -> Envoy_Data_Accesslog_V3_HTTPAccessLogEntry {
        var common = Envoy_Data_Accesslog_V3_AccessLogCommon()
        common.upstreamCluster = cluster
        if !upstream.isEmpty { common.upstreamRemoteAddress = address(upstream, 8080) }
        if !downstream.isEmpty { common.downstreamRemoteAddress = address(downstream, 40000) }
        common.downstreamLocalAddress = address("127.0.0.32", localPort)
        if let peer {
            var tls = Envoy_Data_Accesslog_V3_TLSProperties()
            tls.peerCertificateProperties = san(peer)
            tls.localCertificateProperties = san("spiffe://cluster.local/ns/shop/sa/web")
            common.tlsProperties = tls
        }
        configure(&common)
        var entry = Envoy_Data_Accesslog_V3_HTTPAccessLogEntry()
        entry.commonProperties = common
        entry.request.authority = authority
        entry.request.requestHeaders = headers
        entry.response.responseCode = Google_Protobuf_UInt32Value(status)
        entry.response.responseTrailers = trailers
        return entry
    }

    func labels(
        _ entry: Envoy_Data_Accesslog_V3_HTTPAccessLogEntry, _ reporter: MetricsReporting.Reporter, proxy: ServiceRegistry.WorkloadID, yaml: String = mesh
    ) throws -> MetricsAttribution.Labels {
        let attribution = MetricsAttribution(snapshot: try snapshot(yaml))
        let workload = try #require(attribution.snapshot.registry.workload(proxy))
        let key = MetricsAttribution.connectionKey(entry, reporter: reporter, proxy: proxy)
        return MetricsAttribution.labels(entry, connection: attribution.connectionLabels(key, proxy: workload))
    }

    @Test("client side: the subset's workload by its address, the service from the cluster, both identities over auto mTLS, security unknown")
    func source() throws {
        let found = try labels(Self.entry(cluster: "outbound|8080|v2|web.shop.svc.cluster.local", upstream: "127.0.0.32"), .source, proxy: Self.client)
        let expected = [
            "reporter": "source", "source_workload": "client", "source_workload_namespace": "shop", "source_app": "client", "source_version": "unknown",
            "source_principal": "spiffe://cluster.local/ns/shop/sa/client", "source_canonical_service": "client", "source_canonical_revision": "latest",
            "destination_workload": "web-2", "destination_workload_namespace": "shop", "destination_app": "web", "destination_version": "v2",
            "destination_principal": "spiffe://cluster.local/ns/shop/sa/web", "destination_canonical_service": "storefront", "destination_canonical_revision": "v2",
            "destination_service": "web.shop.svc.cluster.local", "destination_service_name": "web", "destination_service_namespace": "shop",
            "request_protocol": "http", "response_flags": "-", "connection_security_policy": "unknown", "response_code": "200", "grpc_response_status": "",
        ]
        #expect(MetricsAttribution.requestLabelNames.count == expected.count)
        for name in MetricsAttribution.requestLabelNames {
            #expect(found[name] == expected[name], "\(name)")
        }
    }

    @Test("client side: a DestinationRule that turns TLS off leaves both principals unknown")
    func sourcePlaintext() throws {
        let found = try labels(Self.entry(cluster: "outbound|8080|plain|web.shop.svc.cluster.local", upstream: "127.0.0.32"), .source, proxy: Self.client)
        #expect(found["source_principal"] == "unknown")
        #expect(found["destination_principal"] == "unknown")
        #expect(found["destination_workload"] == "web-2")
    }

    @Test("client side: an abort before any cluster names the requested service by its short host; passthrough names its cluster")
    func sourceWithoutCluster() throws {
        var faulted = Self.entry(authority: "web.shop:8080", status: 503)
        faulted.commonProperties.responseFlags.faultInjected = true
        let aborted = try labels(faulted, .source, proxy: Self.client)
        #expect(aborted["destination_service"] == "web.shop.svc.cluster.local")
        #expect(aborted["destination_service_name"] == "web")
        #expect(aborted["destination_workload"] == "unknown")
        #expect(aborted["response_flags"] == "FI")
        #expect(aborted["response_code"] == "503")
        let passthrough = try labels(Self.entry(cluster: "PassthroughCluster", upstream: "10.9.9.9", authority: "example.com"), .source, proxy: Self.client)
        #expect(passthrough["destination_service"] == "example.com")
        #expect(passthrough["destination_service_name"] == "PassthroughCluster")
        #expect(passthrough["destination_workload"] == "unknown")
    }

    @Test("server side: the caller by address and certificate, mutual_tls; a certificate that disagrees with the address leaves the caller unknown")
    func destination() throws {
        let found = try labels(Self.entry(downstream: "127.0.0.31", peer: "spiffe://cluster.local/ns/shop/sa/client"), .destination, proxy: Self.web2)
        #expect(found["reporter"] == "destination")
        #expect(found["source_workload"] == "client")
        #expect(found["source_principal"] == "spiffe://cluster.local/ns/shop/sa/client")
        #expect(found["destination_principal"] == "spiffe://cluster.local/ns/shop/sa/web")
        #expect(found["destination_workload"] == "web-2")
        #expect(found["destination_service"] == "web.shop.svc.cluster.local")
        #expect(found["connection_security_policy"] == "mutual_tls")

        let spoofed = try labels(Self.entry(downstream: "127.0.0.31", peer: "spiffe://cluster.local/ns/shop/sa/web"), .destination, proxy: Self.web2)
        #expect(spoofed["source_workload"] == "unknown")
        #expect(spoofed["source_principal"] == "spiffe://cluster.local/ns/shop/sa/web")

        let plaintext = try labels(Self.entry(downstream: "127.0.0.31"), .destination, proxy: Self.web2)
        #expect(plaintext["connection_security_policy"] == "none")
        #expect(plaintext["source_workload"] == "client")
        #expect(plaintext["source_principal"] == "unknown")
    }

    @Test("gRPC: the content type makes the protocol grpc; the status comes from the trailers, or the headers of a trailers-only answer")
    func grpc() throws {
        let grpc = ["content-type": "application/grpc+proto"]
        let trailers = try labels(Self.entry(downstream: "127.0.0.31", headers: grpc, trailers: ["grpc-status": "5"]), .destination, proxy: Self.web2)
        #expect(trailers["request_protocol"] == "grpc")
        #expect(trailers["grpc_response_status"] == "5")
        var headersOnly = Self.entry(downstream: "127.0.0.31", headers: grpc)
        headersOnly.response.responseHeaders = ["grpc-status": "14"]
        #expect(try labels(headersOnly, .destination, proxy: Self.web2)["grpc_response_status"] == "14")
    }

    @Test("response flags are Envoy's short names in Envoy's order")
    func flags() throws {
        var entry = Self.entry(cluster: "outbound|8080||web.shop.svc.cluster.local", upstream: "127.0.0.32", status: 503)
        entry.commonProperties.responseFlags.upstreamConnectionFailure = true
        entry.commonProperties.responseFlags.noHealthyUpstream = true
        entry.commonProperties.responseFlags.upstreamRetryLimitExceeded = true
        #expect(try labels(entry, .source, proxy: Self.client)["response_flags"] == "UH,UF,URX")
    }

    @Test("TCP: the request labels without the response's, request_protocol tcp")
    func tcp() throws {
        let attribution = MetricsAttribution(snapshot: try snapshot(Self.mesh))
        var entry = Envoy_Data_Accesslog_V3_TCPAccessLogEntry()
        entry.commonProperties.upstreamCluster = "outbound|9000||web.shop.svc.cluster.local"
        entry.commonProperties.upstreamRemoteAddress = Self.address("127.0.0.30", 9000)
        let key = MetricsAttribution.connectionKey(entry, reporter: .source, proxy: Self.client)
        let client = try #require(attribution.snapshot.registry.workload(Self.client))
        let found = MetricsAttribution.labels(entry, connection: attribution.connectionLabels(key, proxy: client))
        #expect(found.values.count == MetricsAttribution.tcpLabelNames.count)
        #expect(found["request_protocol"] == "tcp")
        #expect(found["destination_workload"] == "web-1")
        #expect(found["response_code"] == nil)
    }

    // MARK: The loggers

    func listeners(_ workload: String, reporting: MetricsReporting?, yaml: String = mesh) throws -> [String: Envoy_Config_Listener_V3_Listener] {
        let resources = try SidecarTranslator.translate(try snapshot(yaml), workload: .init(namespace: "shop", name: workload), reporting: reporting).resources
        return resources.resources(ofType: XDSTypeURL.listener).compactMapValues { $0.unpack(Envoy_Config_Listener_V3_Listener.self) }
    }

    func loggers(_ listener: Envoy_Config_Listener_V3_Listener) throws -> [(name: String, config: Envoy_Extensions_AccessLoggers_Grpc_V3_CommonGrpcAccessLogConfig)] {
        try listener.filterChains.flatMap(\.filters).flatMap { filter -> [Envoy_Config_Accesslog_V3_AccessLog] in
            if filter.name == "envoy.filters.network.http_connection_manager" {
                return try Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager(unpackingAny: filter.typedConfig).accessLog
            }
            if filter.name == "envoy.filters.network.tcp_proxy" {
                return try Envoy_Extensions_Filters_Network_TcpProxy_V3_TcpProxy(unpackingAny: filter.typedConfig).accessLog
            }
            return []
        }.compactMap { log in
            switch log.name {
            case "envoy.access_loggers.http_grpc":
                (log.name, try Envoy_Extensions_AccessLoggers_Grpc_V3_HttpGrpcAccessLogConfig(unpackingAny: log.typedConfig).commonConfig)
            case "envoy.access_loggers.tcp_grpc":
                (log.name, try Envoy_Extensions_AccessLoggers_Grpc_V3_TcpGrpcAccessLogConfig(unpackingAny: log.typedConfig).commonConfig)
            default: nil
            }
        }
    }

    @Test("with reporting, every HTTP and TCP listener streams to xds-grpc with the workload's key: source outbound, destination inbound")
    func loggersPresent() throws {
        let reporting = MetricsReporting(key: "k-web-1", flushIntervalMilliseconds: 250)
        let found = try listeners("web-1", reporting: reporting)
        let inboundHTTP = try loggers(try #require(found["127.0.0.30_8080"]))
        #expect(!inboundHTTP.isEmpty && inboundHTTP.allSatisfy { $0.name == "envoy.access_loggers.http_grpc" && $0.config.logName == "meshd-metrics/destination" })
        let config = try #require(inboundHTTP.first?.config)
        #expect(config.grpcService.envoyGrpc.clusterName == "xds-grpc")
        #expect(config.grpcService.initialMetadata.map { "\($0.key)=\($0.value)" } == ["x-meshd-report-key=k-web-1"])
        #expect(config.bufferFlushInterval == Google_Protobuf_Duration(seconds: 0, nanos: 250_000_000))
        let inboundTCP = try #require(found["127.0.0.30_9000"])
        #expect(try loggers(inboundTCP).allSatisfy { $0.name == "envoy.access_loggers.tcp_grpc" && $0.config.logName == "meshd-metrics/destination" })
        let proxies = try inboundTCP.filterChains.flatMap(\.filters).filter { $0.name == "envoy.filters.network.tcp_proxy" }
            .map { try Envoy_Extensions_Filters_Network_TcpProxy_V3_TcpProxy(unpackingAny: $0.typedConfig) }
        #expect(!proxies.isEmpty && proxies.allSatisfy { $0.accessLogOptions.flushAccessLogOnConnected })
        // The app is connected once the caller's certificate is verified (mTLS chains).
        let mtls = inboundTCP.filterChains.filter { $0.filterChainMatch.transportProtocol == "tls" }
        #expect(!mtls.isEmpty)
        for chain in mtls {
            let proxy = try Envoy_Extensions_Filters_Network_TcpProxy_V3_TcpProxy(unpackingAny: try #require(chain.filters.last).typedConfig)
            #expect(proxy.upstreamConnectMode == .onDownstreamTlsHandshake && proxy.hasMaxEarlyDataBytes)
        }
        let outbound = try #require(found.values.first { $0.trafficDirection == .outbound && $0.name.hasSuffix("_8080") })
        #expect(try loggers(outbound).map(\.config.logName) == ["meshd-metrics/source"])
    }

    @Test("without reporting, or with a side's metrics disabled by a Telemetry, that side sends nothing")
    func loggersAbsent() throws {
        #expect(try listeners("web-1", reporting: nil).values.allSatisfy { try loggers($0).isEmpty })
        let disabled = Self.mesh + TelemetryTranslationTests.telemetry("no-server-metrics", """
              metrics:
              - providers: [{name: prometheus}]
                overrides: [{match: {mode: SERVER}, disabled: true}]
            """)
        let found = try listeners("web-1", reporting: MetricsReporting(key: "k"), yaml: disabled)
        #expect(try loggers(try #require(found["127.0.0.30_8080"])).isEmpty)
        let outbound = try #require(found.values.first { $0.trafficDirection == .outbound && $0.name.hasSuffix("_8080") })
        #expect(try loggers(outbound).map(\.config.logName) == ["meshd-metrics/source"])
    }

    @Test("a TCP proxy's file access logs stay at the connection's end once it also logs on connect")
    func fileLogsStayAtTheEnd() throws {
        let mesh = try TelemetryTranslationTests.mesh()
        let snapshot = MeshSnapshot(revision: 1, mesh: mesh, resources: try ResourceDocuments.decode(Self.mesh, source: "test.yaml").map(\.resource))
        let resources = SidecarTranslator.translate(snapshot, workload: try #require(snapshot.registry.workload(.init(namespace: "shop", name: "web-1"))), reporting: MetricsReporting(key: "k"))
            .resources
        let inbound = try #require(resources.resources(ofType: XDSTypeURL.listener)["127.0.0.30_9000"]?.unpack(Envoy_Config_Listener_V3_Listener.self))
        let proxy = try Envoy_Extensions_Filters_Network_TcpProxy_V3_TcpProxy(unpackingAny: try #require(inbound.filterChains.first?.filters.last).typedConfig)
        let file = try #require(proxy.accessLog.first { $0.name == "envoy.access_loggers.file" })
        #expect(file.filter.logTypeFilter.exclude && file.filter.logTypeFilter.types == [.tcpUpstreamConnected])
    }
}
