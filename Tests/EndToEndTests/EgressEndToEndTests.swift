import ControlPlane
import Foundation
import MeshConfig
import MeshModel
import Testing
import XDSTesting

extension EndToEnd {
    /// Istio's egress tasks through real Envoys: ALLOW_ANY, REGISTRY_ONLY, TLS origination and
    /// the egress gateway. Local servers stand in for the external services.
    @Suite("Egress: outbound traffic policy, TLS origination, egress gateway")
    struct Egress {
        static let namespace = "egress"
        static let clientEgress = "127.45.1.2"

        static func sidecar(mode: String?) -> String {
            workloadYAML("client", namespace: namespace, block: 45, host: 2, labels: ["app": "client"], serviceAccount: "client", egressHosts: ["*/*"])
                + (mode.map { "  outboundTrafficPolicy: {mode: \($0)}\n" } ?? "")
        }

        static func files(certificates dir: String) -> [String: String] {
            [
                "client.yaml": sidecar(mode: nil),
                "external.yaml": """
                    apiVersion: networking.istio.io/v1
                    kind: ServiceEntry
                    metadata: {name: registered, namespace: istio-system}
                    spec:
                      hosts: [registered.example.com]
                      location: MESH_EXTERNAL
                      resolution: STATIC
                      ports: [{number: 8080, name: http, protocol: HTTP}]
                      endpoints: [{address: 127.45.3.2}]
                    ---
                    # TLS origination: the app speaks HTTP, the sidecar TLS (Istio's task, with a CA file).
                    apiVersion: networking.istio.io/v1
                    kind: ServiceEntry
                    metadata: {name: secure-backend, namespace: istio-system}
                    spec:
                      hosts: [secure-backend.example.com]
                      location: MESH_EXTERNAL
                      resolution: STATIC
                      ports: [{number: 8080, name: http, protocol: HTTP, targetPort: 9443}]
                      endpoints: [{address: 127.45.3.4}]
                    ---
                    apiVersion: networking.istio.io/v1
                    kind: DestinationRule
                    metadata: {name: secure-backend, namespace: istio-system}
                    spec:
                      host: secure-backend.example.com
                      trafficPolicy: {tls: {mode: SIMPLE, sni: secure-backend.example.com, caCertificates: \(dir)/ca.pem}}
                    """,
                "egress-gateway.yaml": """
                    apiVersion: networking.istio.io/v1
                    kind: WorkloadEntry
                    metadata: {name: egressgateway, namespace: istio-system}
                    spec: {address: 127.45.0.20, serviceAccount: istio-egressgateway, labels: {istio: egressgateway}}
                    ---
                    apiVersion: networking.istio.io/v1
                    kind: ServiceEntry
                    metadata: {name: istio-egressgateway, namespace: istio-system}
                    spec:
                      hosts: [istio-egressgateway.istio-system.svc.cluster.local]
                      location: MESH_INTERNAL
                      resolution: STATIC
                      ports: [{number: 8443, name: https, protocol: HTTPS}]
                      workloadSelector: {labels: {istio: egressgateway}}
                    ---
                    apiVersion: networking.istio.io/v1
                    kind: ServiceEntry
                    metadata: {name: via-gateway, namespace: istio-system}
                    spec:
                      hosts: [via-gateway.example.com]
                      location: MESH_EXTERNAL
                      resolution: STATIC
                      ports: [{number: 8080, name: http, protocol: HTTP}]
                      endpoints: [{address: 127.45.3.6}]
                    ---
                    apiVersion: networking.istio.io/v1
                    kind: Gateway
                    metadata: {name: istio-egressgateway, namespace: istio-system}
                    spec:
                      selector: {istio: egressgateway}
                      servers: [{port: {number: 8443, name: https, protocol: HTTPS}, hosts: [via-gateway.example.com], tls: {mode: ISTIO_MUTUAL}}]
                    ---
                    apiVersion: networking.istio.io/v1
                    kind: DestinationRule
                    metadata: {name: egressgateway, namespace: istio-system}
                    spec:
                      host: istio-egressgateway.istio-system.svc.cluster.local
                      subsets: [{name: via-gateway, trafficPolicy: {tls: {mode: ISTIO_MUTUAL, sni: via-gateway.example.com}}}]
                    ---
                    # The sidecars send via-gateway.example.com to the egress gateway, over mTLS ...
                    apiVersion: networking.istio.io/v1
                    kind: VirtualService
                    metadata: {name: via-gateway-from-mesh, namespace: istio-system}
                    spec:
                      hosts: [via-gateway.example.com]
                      gateways: [mesh]
                      http: [{route: [{destination: {host: istio-egressgateway.istio-system.svc.cluster.local, subset: via-gateway, port: {number: 8443}}}]}]
                    ---
                    # ... and the egress gateway sends it on to the external service.
                    apiVersion: networking.istio.io/v1
                    kind: VirtualService
                    metadata: {name: via-gateway-from-gateway, namespace: istio-system}
                    spec:
                      hosts: [via-gateway.example.com]
                      gateways: [istio-egressgateway]
                      http: [{route: [{destination: {host: via-gateway.example.com, port: {number: 8080}}}]}]
                    """,
            ]
        }

        static func call(_ host: String, in dir: String) async throws -> (code: String, output: String) {
            let result = try await Gateways.run("/usr/bin/curl", ["-sS", "--max-time", "5", "-H", "Host: \(host)", "-w", "\ncode=%{http_code}\n", "http://\(clientEgress):8080/"], in: dir, expectSuccess: false)
            let code = result.output.components(separatedBy: "code=").last.map { String($0.prefix(3)) } ?? "000"
            return (code, result.output)
        }

        @Test("ALLOW_ANY forwards a host outside the registry; REGISTRY_ONLY answers it 502 and counts it in BlackHoleCluster while registered hosts work; TLS origination; the egress gateway route")
        func egress() async throws {
            let directory = try TestTools.temporaryDirectory("egress-certs")
            defer { try? FileManager.default.removeItem(atPath: directory) }
            try await Gateways.makeCertificates(in: directory, names: ["secure-backend.example.com"])
            try await MeshHarness("egress", files: Self.files(certificates: directory)).run { mesh in
                let dir = mesh.directory
                try await mesh.startApp("registered", host: "127.45.3.2", port: 8080)
                try await mesh.startApp("unregistered", host: "127.45.3.3", port: 8080)
                try await mesh.startApp("via-gateway", host: "127.45.3.6", port: 8080)
                let client = try await mesh.startSidecar(Self.namespace, "client")
                let gateway = try await mesh.startSidecar("istio-system", "egressgateway", as: "egressgateway")
                let backend = try ProcessHandle(
                    executable: "/usr/bin/openssl",
                    arguments: ["s_server", "-accept", "127.45.3.4:9443", "-cert", directory + "/server.pem", "-key", directory + "/server.key", "-www", "-naccept", "20"],
                    logPath: dir + "/s_server.log")
                do {
                    // ALLOW_ANY, Istio's default: the host the request names, registered or not.
                    try await Eventually.wait(timeout: .seconds(10), what: "the client sidecar to serve port 8080") {
                        (try? await Self.call("registered.example.com", in: dir).code) == "200"
                    }
                    let passed = try await Self.call("127.45.3.3:8080", in: dir)
                    #expect(passed.code == "200" && passed.output.contains("unregistered"), "ALLOW_ANY: \(passed.output)")
                    #expect((try await client.stats(filter: "PassthroughCluster.upstream_rq_total"))["cluster.PassthroughCluster.upstream_rq_total"] ?? 0 >= 1)

                    // TLS origination to a server with its own certificate.
                    var originated: (code: String, output: String) = ("000", "")
                    for _ in 0..<20 {
                        originated = try await Self.call("secure-backend.example.com", in: dir)
                        if originated.code == "200" { break }
                        try await Task.sleep(for: .milliseconds(200))
                    }
                    #expect(originated.code == "200", "TLS origination: \(originated.output) \(backend.log)")

                    // The egress gateway: sidecar -> mTLS -> gateway -> external service.
                    let routed = try await Self.call("via-gateway.example.com", in: dir)
                    #expect(routed.code == "200" && routed.output.contains("via-gateway"), "egress gateway: \(routed.output)")
                    let through = try await gateway.stats(filter: "downstream_rq_2xx")
                    #expect((through["http.outbound_127.45.0.20_8443.downstream_rq_2xx"] ?? 0) >= 1, "the request went through the gateway: \(through)")

                    // REGISTRY_ONLY from the Sidecar: refused with 502 and counted; registered hosts still work.
                    try mesh.writeConfig("client.yaml", Self.sidecar(mode: "REGISTRY_ONLY"))
                    try await Eventually.wait(timeout: .seconds(10), what: "REGISTRY_ONLY to reach the sidecar") {
                        (try? await Self.call("127.45.3.3:8080", in: dir).code) == "502"
                    }
                    let blocked = try await Self.call("127.45.3.3:8080", in: dir)
                    #expect(blocked.code == "502" && blocked.output.contains("no service in the mesh matches this host"), "\(blocked.output)")
                    let counted = try await client.stats(filter: "BlackHoleCluster")
                    #expect((counted["cluster.BlackHoleCluster.upstream_cx_none_healthy"] ?? 0) >= 2, "blocked requests are counted in the client's sidecar: \(counted)")
                    #expect(try await Self.call("registered.example.com", in: dir).code == "200")
                    #expect(try await Self.call("via-gateway.example.com", in: dir).code == "200")
                    #expect(try await mesh.envoyHealthProblems().isEmpty)
                } catch {
                    _ = await backend.stop()
                    throw error
                }
                _ = await backend.stop()
            }
        }
    }
}
