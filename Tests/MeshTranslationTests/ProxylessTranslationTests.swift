import EnvoyAPI
import Foundation
import MeshModel
import MeshTranslation
import SwiftProtobuf
import Testing
import XDSTesting

@Suite("Proxyless gRPC clients: Istio's names, and only what gRPC's xDS client takes")
struct ProxylessTranslationTests {
    static let mesh = """
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata: {name: coordinator, namespace: tai}
        spec:
          hosts: [coordinator.tai.svc.cluster.local]
          location: MESH_INTERNAL
          resolution: STATIC
          ports: [{number: 8080, name: grpc, protocol: GRPC}, {number: 9000, name: tcp-raw, protocol: TCP}]
          workloadSelector: {labels: {app: coordinator}}
        ---
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata: {name: search, namespace: tai}
        spec:
          hosts: [search.example.com]
          location: MESH_EXTERNAL
          resolution: DNS
          ports: [{number: 443, name: http, protocol: HTTP}]
        ---
        apiVersion: networking.istio.io/v1
        kind: WorkloadEntry
        metadata: {name: coordinator-1, namespace: tai}
        spec: {address: 127.0.0.11, labels: {app: coordinator, version: v1}, serviceAccount: coordinator}
        ---
        apiVersion: networking.istio.io/v1
        kind: WorkloadEntry
        metadata: {name: coordinator-2, namespace: tai}
        spec: {address: 127.0.0.12, labels: {app: coordinator, version: v2}, serviceAccount: coordinator, locality: r1/z1}
        ---
        apiVersion: networking.istio.io/v1
        kind: WorkloadEntry
        metadata: {name: governor, namespace: tai}
        spec: {address: 127.0.0.20, labels: {app: governor}, serviceAccount: governor}
        ---
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: coordinator, namespace: tai}
        spec:
          host: coordinator.tai.svc.cluster.local
          subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: coordinator, namespace: tai}
        spec:
          hosts: [coordinator.tai.svc.cluster.local]
          http:
          - corsPolicy: {allowOrigins: [{exact: "https://ui.example.com"}]}
            fault: {abort: {grpcStatus: UNAVAILABLE, percentage: {value: 1}}}
            retries: {attempts: 2, retryOn: unavailable}
            timeout: 4s
            route:
            - {destination: {host: coordinator.tai.svc.cluster.local, subset: v1}, weight: 90}
            - {destination: {host: coordinator.tai.svc.cluster.local, subset: v2}, weight: 10}
        """

    func translate(_ yaml: String = mesh) throws -> ProxyConfiguration {
        let snapshot = try snapshot(yaml)
        let configuration = ProxylessTranslator.translate(snapshot, workload: try #require(snapshot.registry.workload(.init(namespace: "tai", name: "governor"))))
        expectPrintable(configuration.resources)
        return configuration
    }

    @Test("an API listener and a route configuration named <host>:<port> per HTTP or gRPC port; TCP ports and DNS services left out")
    func names() throws {
        let configuration = try translate()
        let resources = configuration.resources
        #expect(resources.resources(ofType: XDSTypeURL.listener).keys.sorted() == ["coordinator.tai.svc.cluster.local:8080"])
        #expect(resources.resources(ofType: XDSTypeURL.route).keys.sorted() == ["coordinator.tai.svc.cluster.local:8080"])
        #expect(resources.resources(ofType: XDSTypeURL.cluster).keys.sorted() == [
            "outbound|8080|v1|coordinator.tai.svc.cluster.local", "outbound|8080|v2|coordinator.tai.svc.cluster.local", "outbound|8080||coordinator.tai.svc.cluster.local",
        ].sorted())
        #expect(configuration.warnings.contains { $0.contains("search.example.com is resolved by DNS") })

        let listener = try #require(resources.resources(ofType: XDSTypeURL.listener)["coordinator.tai.svc.cluster.local:8080"]?.unpack(Envoy_Config_Listener_V3_Listener.self))
        #expect(listener.filterChains.isEmpty && !listener.hasAddress)
        let hcm = try Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager(unpackingAny: listener.apiListener.apiListener)
        #expect(hcm.rds.routeConfigName == "coordinator.tai.svc.cluster.local:8080")
        if case .ads? = hcm.rds.configSource.configSourceSpecifier {} else { Issue.record("routes come over ADS") }
        #expect(hcm.httpFilters.map(\.name) == ["envoy.filters.http.fault", "envoy.filters.http.router"])

        let routes = try #require(resources.resources(ofType: XDSTypeURL.route)["coordinator.tai.svc.cluster.local:8080"]?.unpack(Envoy_Config_Route_V3_RouteConfiguration.self))
        #expect(routes.virtualHosts.count == 1, "the service's host only: no catch-all for hosts outside the registry")
        let host = routes.virtualHosts[0]
        #expect(host.domains.contains("coordinator.tai.svc.cluster.local:8080"), "what xds:///coordinator.tai.svc.cluster.local:8080 asks for")
        let route = try #require(host.routes.first)
        #expect(route.route.weightedClusters.clusters.map(\.weight.value) == [90, 10])
        #expect(route.route.retryPolicy.retryOn.contains("unavailable") && route.route.maxStreamDuration.maxStreamDuration.seconds == 4 && !route.route.hasMaxGrpcTimeout)
        #expect(Array(route.typedPerFilterConfig.keys) == ["envoy.filters.http.fault"], "gRPC runs no CORS filter: its per-route config is left out")
    }

    @Test("clusters: round robin, one mTLS transport socket from the bootstrap's certificate provider checking the servers' SPIFFE IDs; localities present and weighted")
    func clustersAndEndpoints() throws {
        let resources = try translate().resources
        let cluster = try #require(resources.resources(ofType: XDSTypeURL.cluster)["outbound|8080|v1|coordinator.tai.svc.cluster.local"]?.unpack(Envoy_Config_Cluster_V3_Cluster.self))
        #expect(cluster.lbPolicy == .roundRobin, "gRPC's xDS client takes round robin and ring hash, not least request")
        #expect(cluster.transportSocketMatches.isEmpty && !cluster.hasUpstreamBindConfig && cluster.typedExtensionProtocolOptions.isEmpty)
        let tls = try Envoy_Extensions_TransportSockets_Tls_V3_UpstreamTlsContext(unpackingAny: cluster.transportSocket.typedConfig)
        #expect(tls.commonTlsContext.tlsCertificateProviderInstance.instanceName == ProxylessTranslator.certificateProvider)
        #expect(tls.commonTlsContext.tlsCertificateSdsSecretConfigs.isEmpty)
        let validation = tls.commonTlsContext.validationContext
        #expect(validation.caCertificateProviderInstance.instanceName == ProxylessTranslator.certificateProvider)
        #expect(validation.matchSubjectAltNames.map(\.exact) == ["spiffe://cluster.local/ns/tai/sa/coordinator"])

        let assignment = try #require(resources.resources(ofType: XDSTypeURL.endpoint)["outbound|8080||coordinator.tai.svc.cluster.local"]?.unpack(Envoy_Config_Endpoint_V3_ClusterLoadAssignment.self))
        #expect(!assignment.endpoints.isEmpty && assignment.endpoints.allSatisfy { $0.hasLocality && $0.loadBalancingWeight.value == UInt32($0.lbEndpoints.count) })
        #expect(assignment.endpoints.flatMap(\.lbEndpoints).count == 2)
    }

    @Test("DestinationRule TLS from files has no proxyless form: the cluster is left out with a warning")
    func fileTLS() throws {
        let configuration = try translate(Self.mesh.replacingOccurrences(
            of: "subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]",
            with: "subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]\n  trafficPolicy: {tls: {mode: SIMPLE, caCertificates: /etc/ca.pem}}"))
        #expect(configuration.resources.resources(ofType: XDSTypeURL.cluster).isEmpty)
        #expect(configuration.warnings.contains { $0.contains("TLS from files") }, "\(configuration.warnings)")
    }

    static let server = mesh + """

        ---
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: coordinator, namespace: tai}
        spec:
          selector: {matchLabels: {app: coordinator}}
          rules: [{from: [{source: {principals: [cluster.local/ns/tai/sa/governor]}}]}]
        """

    func server(_ yaml: String = server) throws -> ProxyConfiguration {
        let snapshot = try snapshot(yaml)
        let configuration = ProxylessTranslator.translate(snapshot, workload: try #require(snapshot.registry.workload(.init(namespace: "tai", name: "coordinator-1"))))
        expectPrintable(configuration.resources)
        return configuration
    }

    @Test("a proxyless server gets Istio's inbound listeners for its address, 0.0.0.0 and [::]: mTLS from the certificate provider, RBAC with distinct names, non-forwarding routes")
    func serverListeners() throws {
        let listeners = try server().resources.resources(ofType: XDSTypeURL.listener)
        let names = listeners.keys.filter { $0.hasPrefix("xds.istio.io/grpc/lds/inbound/") }.sorted()
        #expect(names == [
            "xds.istio.io/grpc/lds/inbound/0.0.0.0:8080", "xds.istio.io/grpc/lds/inbound/0.0.0.0:9000",
            "xds.istio.io/grpc/lds/inbound/127.0.0.11:8080", "xds.istio.io/grpc/lds/inbound/127.0.0.11:9000",
            "xds.istio.io/grpc/lds/inbound/[::]:8080", "xds.istio.io/grpc/lds/inbound/[::]:9000",
        ])
        let listener = try #require(listeners["xds.istio.io/grpc/lds/inbound/127.0.0.11:8080"]?.unpack(Envoy_Config_Listener_V3_Listener.self))
        #expect(listener.address.socketAddress.address == "127.0.0.11" && listener.address.socketAddress.portValue == 8080)
        let chain = try #require(listener.filterChains.first)
        let tls = try Envoy_Extensions_TransportSockets_Tls_V3_DownstreamTlsContext(unpackingAny: chain.transportSocket.typedConfig)
        #expect(tls.requireClientCertificate.value && tls.commonTlsContext.tlsCertificateProviderInstance.instanceName == ProxylessTranslator.certificateProvider)
        let hcm = try Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager(unpackingAny: try #require(chain.filters.first).typedConfig)
        let filterNames = hcm.httpFilters.map(\.name)
        #expect(Set(filterNames).count == filterNames.count && filterNames.last == "envoy.filters.http.router" && filterNames.first == "envoy.filters.http.rbac")
        let route = try #require(hcm.routeConfig.virtualHosts.first?.routes.first)
        if case .nonForwardingAction? = route.action {} else { Issue.record("a server's route hands the request to the application: \(route)") }
        let any = try #require(listeners["xds.istio.io/grpc/lds/inbound/[::]:8080"]?.unpack(Envoy_Config_Listener_V3_Listener.self))
        #expect(any.address.socketAddress.address == "::")

        let disabled = try server(Self.server + """

            ---
            apiVersion: security.istio.io/v1
            kind: PeerAuthentication
            metadata: {name: plaintext, namespace: tai}
            spec: {mtls: {mode: DISABLE}}
            """).resources.resources(ofType: XDSTypeURL.listener)["xds.istio.io/grpc/lds/inbound/127.0.0.11:8080"]?.unpack(Envoy_Config_Listener_V3_Listener.self)
        #expect(disabled?.filterChains.first?.hasTransportSocket == false, "DISABLE: plaintext")
    }

    @Test("a server whose policies need more than RBAC gets no listener (it does not serve), and a warning")
    func serverFailsClosed() throws {
        let custom = try server(Self.server.replacingOccurrences(of: "  rules: [{from", with: "  action: DENY\n  rules: [{from") + """

            ---
            apiVersion: security.istio.io/v1
            kind: RequestAuthentication
            metadata: {name: jwt, namespace: tai}
            spec:
              selector: {matchLabels: {app: coordinator}}
              jwtRules: [{issuer: "https://issuer.example.com", jwksUri: "https://issuer.example.com/keys"}]
            """)
        #expect(!custom.resources.resources(ofType: XDSTypeURL.listener).keys.contains { $0.hasPrefix("xds.istio.io/") })
        #expect(custom.warnings.contains { $0.contains("do not serve") }, "\(custom.warnings)")
    }
}
