import EnvoyAPI
import MeshModel
import MeshTranslation
import SwiftProtobuf
import Testing
import XDSTesting

@Suite("mTLS in the generated config")
struct MutualTLSTranslationTests {
    static let base = """
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata: {name: web, namespace: shop}
        spec:
          hosts: [web.shop.svc.cluster.local]
          location: MESH_INTERNAL
          resolution: STATIC
          ports: [{number: 8080, name: http}, {number: 9000, name: tcp-admin}]
          workloadSelector: {labels: {app: web}}
        ---
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata: {name: legacy, namespace: shop}
        spec:
          hosts: [legacy.shop.svc.cluster.local]
          location: MESH_INTERNAL
          resolution: STATIC
          ports: [{number: 8080, name: http}]
          endpoints: [{address: 127.0.0.40}]
        ---
        apiVersion: networking.istio.io/v1
        kind: WorkloadEntry
        metadata: {name: web-1, namespace: shop}
        spec: {address: 127.0.0.30, labels: {app: web}, serviceAccount: web}
        ---
        apiVersion: networking.istio.io/v1
        kind: WorkloadEntry
        metadata: {name: client, namespace: shop}
        spec: {address: 127.0.0.31, labels: {app: client}, serviceAccount: client}
        """

    func listener(_ yaml: String, _ name: String, port: UInt32) throws -> Envoy_Config_Listener_V3_Listener {
        let resources = try SidecarTranslator.translate(try snapshot(yaml), workload: .init(namespace: "shop", name: name)).resources
        expectPrintable(resources)
        return try #require(resources.resources(ofType: XDSTypeURL.listener)["\(name == "web-1" ? "127.0.0.30" : "127.0.0.31")_\(port)"]?.unpack(Envoy_Config_Listener_V3_Listener.self))
    }

    func cluster(_ yaml: String, _ name: String) throws -> Envoy_Config_Cluster_V3_Cluster {
        let resources = try SidecarTranslator.translate(try snapshot(yaml), workload: .init(namespace: "shop", name: "client")).resources
        return try #require(resources.resources(ofType: XDSTypeURL.cluster)[name]?.unpack(Envoy_Config_Cluster_V3_Cluster.self))
    }

    static func peerAuthentication(namespace: String, mode: String, selector: String? = nil, ports: String = "") -> String {
        """

        ---
        apiVersion: security.istio.io/v1
        kind: PeerAuthentication
        metadata: {name: pa-\(mode.lowercased())-\(namespace)-\(selector ?? "all"), namespace: \(namespace)}
        spec:
        \(selector.map { "  selector: {matchLabels: {app: \($0)}}\n" } ?? "")  mtls: {mode: \(mode)}
        \(ports)
        """
    }

    func chains(_ listener: Envoy_Config_Listener_V3_Listener) -> [String] {
        listener.filterChains.map { $0.filterChainMatch.transportProtocol.isEmpty ? "any" : $0.filterChainMatch.transportProtocol }
    }

    @Test("no PeerAuthentication is PERMISSIVE: a TLS chain and a plaintext chain, chosen by tls_inspector")
    func permissiveDefault() throws {
        let inbound = try listener(Self.base, "web-1", port: 8080)
        #expect(chains(inbound) == ["tls", "raw_buffer"])
        #expect(inbound.listenerFilters.map(\.name) == ["envoy.filters.listener.tls_inspector"])
        let tls = try Envoy_Extensions_TransportSockets_Tls_V3_DownstreamTlsContext(unpackingAny: inbound.filterChains[0].transportSocket.typedConfig)
        #expect(tls.requireClientCertificate.value)
        #expect(tls.commonTlsContext.tlsCertificateSdsSecretConfigs.map(\.name) == ["default"])
        #expect(tls.commonTlsContext.combinedValidationContext.validationContextSdsSecretConfig.name == "ROOTCA")
    }

    @Test("precedence: mesh-wide, then namespace, then workload selector, then port level; UNSET inherits")
    func precedence() throws {
        let mesh = Self.base + Self.peerAuthentication(namespace: "istio-system", mode: "STRICT")
        #expect(chains(try listener(mesh, "web-1", port: 8080)) == ["tls"])
        let namespace = mesh + Self.peerAuthentication(namespace: "shop", mode: "DISABLE")
        #expect(chains(try listener(namespace, "web-1", port: 8080)) == ["any"])
        let workload = namespace + Self.peerAuthentication(namespace: "shop", mode: "UNSET", selector: "web", ports: "  portLevelMtls: {\"9000\": {mode: STRICT}}")
        #expect(chains(try listener(workload, "web-1", port: 8080)) == ["any"], "UNSET inherits DISABLE from the namespace")
        #expect(chains(try listener(workload, "web-1", port: 9000)) == ["tls"], "the port-level mode wins on its port")
    }

    @Test("auto mTLS: mTLS toward endpoints with a sidecar, plaintext toward the rest, SNI and SANs as Istio sets them")
    func autoMTLS() throws {
        let web = try cluster(Self.base, "outbound|8080||web.shop.svc.cluster.local")
        #expect(web.transportSocketMatches.map(\.name) == ["tlsMode-istio", "tlsMode-disabled"])
        let upstream = try Envoy_Extensions_TransportSockets_Tls_V3_UpstreamTlsContext(unpackingAny: web.transportSocketMatches[0].transportSocket.typedConfig)
        #expect(upstream.sni == "outbound_.8080_._.web.shop.svc.cluster.local")
        #expect(upstream.commonTlsContext.combinedValidationContext.defaultValidationContext.matchTypedSubjectAltNames.map(\.matcher.exact) == ["spiffe://cluster.local/ns/shop/sa/web"])
        let simulator = try simulator(try snapshot(Self.base), "shop", "client")
        #expect(try simulator.endpoints(of: "outbound|8080||web.shop.svc.cluster.local") == ["127.0.0.30:8080"])
        let legacy = try cluster(Self.base, "outbound|8080||legacy.shop.svc.cluster.local")
        #expect(legacy.transportSocketMatches.isEmpty && !legacy.hasTransportSocket, "no sidecar behind legacy: plaintext")
        // A server that disables mTLS is called in plaintext.
        let disabled = try cluster(Self.base + Self.peerAuthentication(namespace: "shop", mode: "DISABLE"), "outbound|8080||web.shop.svc.cluster.local")
        #expect(disabled.transportSocketMatches.isEmpty)
    }

    @Test("DestinationRule tls: ISTIO_MUTUAL forces mTLS, DISABLE turns it off, port level overrides the top")
    func destinationRuleTLS() throws {
        let rule = """

            ---
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: web, namespace: shop}
            spec:
              host: web
              trafficPolicy:
                tls: {mode: DISABLE}
                portLevelSettings:
                - port: {number: 9000}
                  tls: {mode: ISTIO_MUTUAL}
            ---
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: legacy, namespace: shop}
            spec:
              host: legacy.shop.svc.cluster.local
              trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}
            """
        let http = try cluster(Self.base + rule, "outbound|8080||web.shop.svc.cluster.local")
        #expect(http.transportSocketMatches.isEmpty && !http.hasTransportSocket)
        let admin = try cluster(Self.base + rule, "outbound|9000||web.shop.svc.cluster.local")
        #expect(admin.transportSocket.name == "envoy.transport_sockets.tls")
        let legacy = try cluster(Self.base + rule, "outbound|8080||legacy.shop.svc.cluster.local")
        #expect(legacy.transportSocket.name == "envoy.transport_sockets.tls", "ISTIO_MUTUAL even without a sidecar behind it")
    }
}
