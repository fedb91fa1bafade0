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
        #expect(route.route.retryPolicy.retryOn.contains("unavailable") && route.route.maxStreamDuration.grpcTimeoutHeaderMax.seconds == 4)
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
}
