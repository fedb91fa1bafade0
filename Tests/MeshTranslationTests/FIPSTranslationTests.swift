import EnvoyAPI
import Foundation
import MeshModel
import MeshTranslation
import Testing
import XDSTesting

@Suite("FIPS mode in the generated config: every TLS context pinned")
struct FIPSTranslationTests {
    static let mesh = """
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata: {name: web, namespace: shop}
        spec:
          hosts: [web.shop.svc.cluster.local]
          location: MESH_INTERNAL
          resolution: STATIC
          ports: [{number: 8080, name: http, protocol: HTTP}, {number: 9000, name: tcp, protocol: TCP}]
          workloadSelector: {labels: {app: web}}
        ---
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata: {name: payments, namespace: shop}
        spec:
          hosts: [api.payments.example.com]
          location: MESH_EXTERNAL
          resolution: DNS
          ports: [{number: 443, name: tls, protocol: TLS}]
        ---
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: payments, namespace: shop}
        spec:
          host: api.payments.example.com
          trafficPolicy: {tls: {mode: SIMPLE, caCertificates: /etc/ca.pem}}
        ---
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: web, namespace: shop}
        spec:
          host: web.shop.svc.cluster.local
          subsets: [{name: v1, labels: {version: v1}, trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}}]
        ---
        apiVersion: networking.istio.io/v1
        kind: WorkloadEntry
        metadata: {name: web-1, namespace: shop}
        spec: {address: 127.0.0.20, labels: {app: web, version: v1}, serviceAccount: web}
        ---
        apiVersion: networking.istio.io/v1
        kind: WorkloadEntry
        metadata: {name: client, namespace: shop}
        spec: {address: 127.0.0.30, labels: {app: client}, serviceAccount: client}
        ---
        apiVersion: networking.istio.io/v1
        kind: WorkloadEntry
        metadata: {name: ingress, namespace: istio-system}
        spec: {address: 127.0.0.10, labels: {istio: ingressgateway}, serviceAccount: ingress}
        ---
        apiVersion: networking.istio.io/v1
        kind: Gateway
        metadata: {name: gw, namespace: shop}
        spec:
          selector: {istio: ingressgateway}
          servers:
          - {port: {number: 443, name: https, protocol: HTTPS}, hosts: ["shop.example.com"], tls: {mode: SIMPLE, serverCertificate: /c/s.pem, privateKey: /c/s.key, cipherSuites: [ECDHE-RSA-CHACHA20-POLY1305, ECDHE-RSA-AES256-GCM-SHA384]}}
          - {port: {number: 8443, name: mesh, protocol: HTTPS}, hosts: ["*"], tls: {mode: ISTIO_MUTUAL}}
        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: web, namespace: shop}
        spec:
          hosts: ["shop.example.com"]
          gateways: [gw]
          http: [{route: [{destination: {host: web, port: {number: 8080}}}]}]
        """

    /// Every `common_tls_context` in the resources, found in their Envoy JSON (transport sockets
    /// of listeners and clusters, transport socket matches), with the resource it is in.
    static func tlsContexts(_ resources: XDSResourceSet) throws -> [(resource: String, context: [String: Any])] {
        var found: [(String, [String: Any])] = []
        func walk(_ value: Any, _ resource: String) {
            if let object = value as? [String: Any] {
                if let context = object["common_tls_context"] as? [String: Any] { found.append((resource, context)) }
                for child in object.values { walk(child, resource) }
            } else if let array = value as? [Any] {
                for child in array { walk(child, resource) }
            }
        }
        for type in [XDSTypeURL.listener, XDSTypeURL.cluster] {
            for resource in resources.sortedResources(ofType: type) {
                walk(try JSONSerialization.jsonObject(with: Data(try EnvoyJSON.string(resource.body).utf8)), resource.name)
            }
        }
        return found
    }

    static func translations(fips: Bool) throws -> [XDSResourceSet] {
        var snapshot = try snapshot(mesh)
        snapshot = MeshSnapshot(revision: 1, settings: MeshSettings(fips: fips), resources: snapshot.allResources)
        let gateway = try #require(snapshot.registry.workload(.init(namespace: "istio-system", name: "ingress")))
        return [
            try SidecarTranslator.translate(snapshot, workload: .init(namespace: "shop", name: "client")).resources,
            try SidecarTranslator.translate(snapshot, workload: .init(namespace: "shop", name: "web-1")).resources,
            GatewayTranslator.translate(snapshot, workload: gateway).resources,
        ]
    }

    @Test("with --fips: inbound mTLS, outbound mTLS (auto and ISTIO_MUTUAL), TLS origination and both gateway servers pin TLS 1.2–1.3, the approved suites, P-256/P-384 and the FIPS 202205 policy")
    func pinned() throws {
        let contexts = try Self.translations(fips: true).flatMap(Self.tlsContexts)
        // Inbound (web-1's listener), outbound auto mTLS and the v1 subset, origination to payments,
        // the gateway's two servers and its mTLS to web.
        for resource in ["127.0.0.20_8080", "outbound|8080||web.shop.svc.cluster.local", "outbound|8080|v1|web.shop.svc.cluster.local", "outbound|443||api.payments.example.com", "127.0.0.10_443", "127.0.0.10_8443"] {
            #expect(contexts.contains { $0.resource == resource }, "a TLS context in \(resource): \(Set(contexts.map(\.resource)).sorted())")
        }
        for (resource, context) in contexts {
            let params = try #require(context["tls_params"] as? [String: Any], "\(resource) has tls_params")
            #expect(params["tls_minimum_protocol_version"] as? String == "TLSv1_2" && params["tls_maximum_protocol_version"] as? String == "TLSv1_3", "\(resource): \(params)")
            #expect(params["ecdh_curves"] as? [String] == FIPSPolicy.ecdhCurves && params["compliance_policies"] as? [String] == ["FIPS_202205"], "\(resource): \(params)")
            let suites = try #require(params["cipher_suites"] as? [String], "\(resource): \(params)")
            #expect(!suites.isEmpty && Set(suites).isSubset(of: FIPSPolicy.tls12CipherSuites), "\(resource): \(suites)")
            if resource == "127.0.0.10_443" { #expect(suites == ["ECDHE-RSA-AES256-GCM-SHA384"], "the server's approved suite kept, ChaCha20 dropped") }
        }
    }

    @Test("without --fips nothing changes: no pinned suites, curves or compliance policy anywhere")
    func unpinned() throws {
        let contexts = try Self.translations(fips: false).flatMap(Self.tlsContexts)
        #expect(contexts.count >= 6)
        for (resource, context) in contexts {
            let params = context["tls_params"] as? [String: Any] ?? [:]
            #expect(params["compliance_policies"] == nil && params["ecdh_curves"] == nil, "\(resource): \(params)")
            if resource != "127.0.0.10_443" { #expect(params["cipher_suites"] == nil, "\(resource): \(params)") }
        }
    }

    @Test("a Gateway asking for TLS 1.0 or a suite that is not approved is refused in FIPS mode, with its path")
    func gatewayProblems() throws {
        let document = try #require(try snapshot(Self.mesh).allResources.first { $0.kind == .gateway })
        guard case .gateway(var gateway) = document.spec else { Issue.record("not a gateway"); return }
        gateway.servers![0].tls!.minProtocolVersion = .TLSV1_0
        let problems = FIPSPolicy.problems(of: gateway, at: FieldPath().appending("spec")).map(\.description)
        #expect(problems == [
            "spec.servers[0].tls.minProtocolVersion: TLSV1_0 is not allowed in FIPS mode (meshd --fips): TLS 1.2 or 1.3 only (TLSV1_2, TLSV1_3)",
            "spec.servers[0].tls.cipherSuites[0]: ECDHE-RSA-CHACHA20-POLY1305 is not an approved cipher suite in FIPS mode (meshd --fips); use ECDHE-ECDSA-AES128-GCM-SHA256, ECDHE-RSA-AES128-GCM-SHA256, ECDHE-ECDSA-AES256-GCM-SHA384, ECDHE-RSA-AES256-GCM-SHA384",
        ], "\(problems)")
    }
}
