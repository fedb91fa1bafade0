import ControlPlane
import Foundation
import MeshConfig
import MeshModel
import Testing
import XDSTesting

extension EndToEnd {
    /// The foundation scenario with real Envoy 1.40: a client and two versions of a server, each
    /// with its sidecar on its own loopback addresses (block 127.20.x.y).
    @Suite("Real Envoys get their whole config from meshd over ADS")
    struct Foundation {
        static let namespace = "e2e"

        static var files: [String: String] {
            [
                "services.yaml": serviceYAML("server", namespace: namespace),
                "client.yaml": workloadYAML("client", namespace: namespace, block: 20, host: 2, labels: ["app": "client"], serviceAccount: "client"),
                "server-v1.yaml": workloadYAML("server-v1", namespace: namespace, block: 20, host: 3, labels: ["app": "server", "version": "v1"], serviceAccount: "server"),
                "server-v2.yaml": workloadYAML("server-v2", namespace: namespace, block: 20, host: 4, labels: ["app": "server", "version": "v2"], serviceAccount: "server"),
            ]
        }

        static let clientEgress = HostPort(host: "127.20.1.2", port: 8080)

        @Test("requests flow client -> sidecar -> server sidecar -> server app; a new service appears within 2 s; a bad file changes nothing")
        func foundationScenario() async throws {
            try await MeshHarness("foundation", files: Self.files).run(scenario)
        }

        func scenario(_ mesh: MeshHarness) async throws {
            let v1 = try await mesh.startApp("server-v1", host: "127.20.2.3", port: 8080)
            let v2 = try await mesh.startApp("server-v2", host: "127.20.2.4", port: 8080)
            try await mesh.startSidecar(Self.namespace, "client")
            let serverV1 = try await mesh.startSidecar(Self.namespace, "server-v1")
            try await mesh.startSidecar(Self.namespace, "server-v2")

            // 1. Traffic through both sidecars reaches both versions of the server.
            var answers: [String: Int] = [:]
            for _ in 0..<20 {
                let response = try await HTTPProbe.request(Self.clientEgress, authority: "server")
                #expect(response.status == 200)
                answers[response.body, default: 0] += 1
            }
            #expect(Set(answers.keys) == ["server-v1\n", "server-v2\n"], "answers: \(answers)")
            #expect(v1.requests.count + v2.requests.count == 20)
            #expect(v1.requests.first?.headers["x-forwarded-proto"] == "http")
            // Auto mTLS: both ends have sidecars, so the call was mutual TLS and the app sees the caller.
            #expect(v1.requests.first?.headers["x-forwarded-client-cert"]?.contains("URI=spiffe://cluster.local/ns/e2e/sa/client") == true,
                    "\(v1.requests.first?.headers ?? [:])")
            let inbound = try await serverV1.stats(filter: "inbound\\|8080\\|\\|.upstream_rq_completed")
            #expect(inbound.values.reduce(0, +) == v1.requests.count, "server-v1's requests went through its sidecar: \(inbound)")

            // 2. A new ServiceEntry file: reachable within 2 s, no Envoy restarted.
            let extra = try await mesh.startApp("extra", host: "127.20.2.9", port: 9090)
            let pids = mesh.envoys.map(\.envoyPIDs)
            let started = ContinuousClock.now
            try mesh.writeConfig("extra.yaml", """
                apiVersion: networking.istio.io/v1
                kind: ServiceEntry
                metadata: {name: extra, namespace: \(Self.namespace)}
                spec:
                  hosts: [extra.\(Self.namespace).svc.cluster.local]
                  location: MESH_INTERNAL
                  resolution: STATIC
                  ports: [{number: 9090, name: http, protocol: HTTP}]
                  endpoints: [{address: 127.20.2.9}]
                """)
            try await Eventually.wait(timeout: .seconds(2), interval: .milliseconds(25), what: "the new service to answer through the client's sidecar") {
                let response = try? await HTTPProbe.request(HostPort(host: "127.20.1.2", port: 9090), authority: "extra", timeout: .milliseconds(500))
                return response?.status == 200 && response?.body == "extra\n"
            }
            let elapsed = ContinuousClock.now - started
            #expect(extra.requests.count >= 1)
            #expect(mesh.envoys.map(\.envoyPIDs) == pids && pids.allSatisfy { $0.count == 1 } && mesh.envoys.allSatisfy(\.handle.isRunning), "no Envoy was restarted")
            print("new service reachable after \(elapsed)")

            // 3. An invalid file is refused while traffic keeps flowing; the served config is unchanged.
            let revision = mesh.controlPlane.store.revision
            let load = Task {
                var failures: [String] = []
                for _ in 0..<60 {
                    do {
                        let response = try await HTTPProbe.request(Self.clientEgress, authority: "server")
                        if response.status != 200 { failures.append("status \(response.status)") }
                    } catch {
                        failures.append("\(error)")
                    }
                    try? await Task.sleep(for: .milliseconds(10))
                }
                return failures
            }
            try mesh.writeConfig("broken.yaml", """
                apiVersion: networking.istio.io/v1
                kind: VirtualService
                metadata: {name: broken, namespace: \(Self.namespace)}
                spec:
                  hosts: [server]
                  http:
                  - route:
                    - destination: {host: server, subset: v1}
                      wieght: 100
                """)
            try await Eventually.wait(timeout: .seconds(3), what: "meshd to refuse broken.yaml") {
                mesh.controlPlane.store.rejectionCount >= 1
            }
            #expect(await load.value == [], "traffic kept flowing while the bad file was refused")
            #expect(mesh.controlPlane.store.revision == revision)
            let status = try await mesh.admin("/debug/config")
            #expect(status.body.contains("broken.yaml, document 1 (VirtualService e2e/broken): spec.http[0].route[0].wieght: unknown field"))
            let metrics = try await mesh.admin("/metrics")
            #expect(metrics.body.contains("meshd_config_rejected_total 1"))

            // 4. Envoy's own view: nothing warming, no error_state, no rejected update, all SYNCED.
            #expect(try await mesh.envoyHealthProblems() == [])
            let proxies = try await mesh.admin("/debug/proxies").body
            #expect(proxies.components(separatedBy: "\"SYNCED\"").count - 1 == 15, "3 proxies x 5 types (with SDS) SYNCED: \(proxies)")
            #expect(metrics.body.contains("pilot_xds 3"))
        }
    }
}
