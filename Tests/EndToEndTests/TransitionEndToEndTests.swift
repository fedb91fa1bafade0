import ControlPlane
import EnvoyAPI
import GRPCCore
import Foundation
import MeshConfig
import MeshModel
import Testing
import XDSTesting

extension EndToEnd {
    /// Changes that need one proxy to move before another, made under load with retries off:
    /// not one request may fail (addresses 127.42.x.y).
    @Suite("Zero-failure transitions: mTLS modes, DestinationRule TLS, subsets with routes")
    struct Transitions {
        static let namespace = "trans"
        static let host = "server.trans.svc.cluster.local"
        /// Transitions of each kind (MESHD_TEST_TRANSITIONS, default 50).
        static let count = Int(ProcessInfo.processInfo.environment["MESHD_TEST_TRANSITIONS"] ?? "") ?? 50

        static var files: [String: String] {
            [
                "service.yaml": serviceYAML("server", namespace: namespace),
                "client.yaml": workloadYAML("client", namespace: namespace, block: 42, host: 2, labels: ["app": "client"], serviceAccount: "client"),
                "server.yaml": workloadYAML("server", namespace: namespace, block: 42, host: 3, labels: ["app": "server", "version": "v1"], serviceAccount: "server"),
                "peer.yaml": peerAuthentication("DISABLE"),
                "routes.yaml": virtualService(subset: nil),
            ]
        }

        static func peerAuthentication(_ mode: String) -> String {
            """
            apiVersion: security.istio.io/v1
            kind: PeerAuthentication
            metadata: {name: server, namespace: \(namespace)}
            spec:
              selector: {matchLabels: {app: server}}
              mtls: {mode: \(mode)}
            """
        }

        /// Every request to the server, no retries (a failure shows), to the subset if named.
        static func virtualService(subset: String?) -> String {
            """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: server, namespace: \(namespace)}
            spec:
              hosts: [\(host)]
              http:
              - route: [{destination: {host: \(host)\(subset.map { ", subset: \($0)" } ?? "")}}]
                retries: {attempts: 0}
            """
        }

        static func destinationRule(tls: String?, subsets: Bool) -> String {
            """
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: server, namespace: \(namespace)}
            spec:
              host: \(host)
            \(tls.map { "  trafficPolicy: {tls: {mode: \($0)}}\n" } ?? "")\(subsets ? "  subsets: [{name: v1, labels: {version: v1}}]\n" : "")
            """
        }

        /// Writes the files, then waits until meshd serves them as configured and every sidecar
        /// acknowledged them.
        static func change(_ mesh: MeshHarness, _ files: [String: String], proxies: Int = 2) async throws {
            let before = mesh.controlPlane.store.revision
            for (name, text) in files { try mesh.writeConfig(name, text) }
            try await Eventually.wait(timeout: .seconds(10), interval: .milliseconds(10), what: "the change to be accepted") {
                mesh.controlPlane.store.revision > before
            }
            try await Eventually.wait(timeout: .seconds(30), interval: .milliseconds(10), what: "the change to be served as configured") {
                mesh.controlPlane.servesNewestConfiguration
            }
            let expected = proxies
            var last = ""
            defer { if !last.isEmpty, ProcessInfo.processInfo.environment["MESHD_TEST_DEBUG"] != nil { print(last) } }
            try await Eventually.wait(timeout: .seconds(15), interval: .milliseconds(20), what: "every sidecar to acknowledge it") {
                let status = try await mesh.admin("/v1/proxies")
                last = status.body
                let proxies = try JSONSerialization.jsonObject(with: Data(status.body.utf8)) as? [[String: Any]] ?? []
                return proxies.count == expected && proxies.allSatisfy { proxy in
                    (proxy["types"] as? [String: [String: Any]] ?? [:]).values.allSatisfy { $0["state"] as? String == "SYNCED" }
                }
            }
        }

        @Test("PeerAuthentication in every direction, DestinationRule tls on/off, subsets with their routes added and removed: zero failed requests at 50 req/s")
        func underLoad() async throws {
            try await MeshHarness("transitions", files: Self.files, pollInterval: .milliseconds(20), configure: { $0.debounceAfter = .milliseconds(20) }).run { mesh in
                try await mesh.startApp("server", host: "127.42.2.3", port: 8080)
                try await mesh.startSidecar(Self.namespace, "server")
                try await mesh.startSidecar(Self.namespace, "client")
                let load = RequestLoop(to: HostPort(host: "127.42.1.2", port: 8080), authority: Self.host)
                try await Eventually.wait(timeout: .seconds(10), what: "the first requests") { load.counts.ok >= 5 }
                let started = ContinuousClock.now

                // Every direction between DISABLE, PERMISSIVE and STRICT.
                let cycle = ["PERMISSIVE", "STRICT", "DISABLE", "STRICT", "PERMISSIVE", "DISABLE"]
                for index in 0..<Self.count {
                    try await Self.change(mesh, ["peer.yaml": Self.peerAuthentication(cycle[index % cycle.count])])
                }
                let afterModes = load.counts
                #expect(afterModes.failures.isEmpty, "mTLS modes: \(afterModes.failures.prefix(5))")

                // The client's TLS toggled by a DestinationRule, the server taking both.
                try await Self.change(mesh, ["peer.yaml": Self.peerAuthentication("PERMISSIVE")])
                for index in 0..<Self.count {
                    try await Self.change(mesh, ["dr.yaml": Self.destinationRule(tls: index.isMultiple(of: 2) ? "DISABLE" : "ISTIO_MUTUAL", subsets: false)])
                }
                #expect(load.counts.failures.isEmpty, "DestinationRule tls: \(load.counts.failures.prefix(5))")

                // A subset and the route to it, appearing and disappearing together.
                for index in 0..<Self.count {
                    let subset = index.isMultiple(of: 2)
                    try await Self.change(mesh, [
                        "dr.yaml": Self.destinationRule(tls: nil, subsets: subset),
                        "routes.yaml": Self.virtualService(subset: subset ? "v1" : nil),
                    ])
                }
                let counts = await load.stop()
                print("transitions: \(3 * Self.count) in \(ContinuousClock.now - started), \(counts.ok) requests")
                #expect(counts.failures.isEmpty, "\(counts.failures.count) failed requests of \(counts.ok + counts.failures.count): \(counts.failures.prefix(5))")
                #expect(counts.ok >= 3 * Self.count, "the load kept running: \(counts.ok) requests")
                let metrics = try await mesh.admin("/metrics").body
                #expect(metrics.contains("meshd_mtls_rollout_steps_total"), "the rollout stepped")
                #expect(!metrics.contains("meshd_mtls_rollout_timeouts_total 1"), "no step timed out")
            }
        }

        @Test("a proxy that never acknowledges holds a step only until the timeout: proxy-status shows what waits, then meshd goes on, counted")
        func silentProxy() async throws {
            try await MeshHarness("transitions-silent", files: Self.files, pollInterval: .milliseconds(20), configure: {
                $0.debounceAfter = .milliseconds(20)
                $0.mtlsRolloutStepTimeout = .seconds(2)
            }).run { mesh in
                // The server's proxy: an xDS client that takes its listeners and never answers.
                let token = try mesh.token(Self.namespace, "server")
                var node = Envoy_Config_Core_V3_Node()
                node.id = NodeIdentity.nodeID(workload: .init(namespace: Self.namespace, name: "server"), address: "127.42.0.3")
                let sentNode = node
                let started = ContinuousClock.now
                let held = try await ADSTestClient.withStream(to: mesh.xdsAddress, security: mesh.security, metadata: ["authorization": "Bearer \(token)"]) { conversation -> String in
                    conversation.request(XDSTypeURL.listener, node: sentNode)
                    _ = try await conversation.receive()
                    try mesh.writeConfig("peer.yaml", Self.peerAuthentication("STRICT"))
                    var seen = ""
                    try await Eventually.wait(timeout: .seconds(5), what: "proxy-status to show the held step") {
                        seen = try await mesh.admin("/v1/proxies").body
                        return seen.contains("held") && seen.contains("waiting for sidecar~127.42.0.3~server")
                    }
                    try await Eventually.wait(timeout: .seconds(10), what: "the rollout to go on without the silent proxy") {
                        mesh.controlPlane.servesNewestConfiguration
                    }
                    return seen
                }
                #expect(held.contains("accepts PERMISSIVE, clients send plaintext"), "\(held)")
                #expect(ContinuousClock.now - started >= .seconds(2), "the step waited for the timeout")
                #expect(try await mesh.admin("/metrics").body.contains("meshd_mtls_rollout_timeouts_total 1"))
            }
        }

        /// A second server, `server-b`, whose Sidecar selects it by a label that never changes.
        static func serverB(_ app: String?) -> String {
            let entry = app.map { app in
                """
                apiVersion: networking.istio.io/v1
                kind: WorkloadEntry
                metadata: {name: server-b, namespace: \(namespace)}
                spec: {address: 127.42.0.4, serviceAccount: server, labels: {app: \(app), instance: b}}
                ---

                """
            } ?? ""
            return entry + """
                apiVersion: networking.istio.io/v1
                kind: Sidecar
                metadata: {name: server-b, namespace: \(namespace)}
                spec:
                  workloadSelector: {labels: {instance: b}}
                  ingress:
                  - port: {number: 8080, protocol: HTTP, name: http-8080}
                    defaultEndpoint: 127.42.2.4:8080
                  egress:
                  - bind: 127.42.1.4
                    captureMode: NONE
                    hosts: ["./*"]
                """
        }

        @Test("a WorkloadEntry deleted and re-added under load: zero failed requests, and its proxy (left with nothing to watch) shows in sync")
        func workloadRemoved() async throws {
            var files = Self.files
            files["server-b.yaml"] = Self.serverB("server")
            files["peer.yaml"] = Self.peerAuthentication("PERMISSIVE")
            try await MeshHarness("transitions-removal", files: files, pollInterval: .milliseconds(20), configure: { $0.debounceAfter = .milliseconds(20) }).run { mesh in
                try await mesh.startApp("server", host: "127.42.2.3", port: 8080)
                try await mesh.startApp("server-b", host: "127.42.2.4", port: 8080)
                try await mesh.startSidecar(Self.namespace, "server")
                try await mesh.startSidecar(Self.namespace, "server-b")
                try await mesh.startSidecar(Self.namespace, "client")
                let load = RequestLoop(to: HostPort(host: "127.42.1.2", port: 8080), authority: Self.host)
                try await Eventually.wait(timeout: .seconds(10), what: "the first requests") { load.counts.ok >= 5 }
                for _ in 0..<max(1, Self.count / 5) {
                    // Deleted: clients drop it; its sidecar drains its listeners (and unwatches
                    // endpoints and secrets: nothing of them is awaited any more).
                    try await Self.change(mesh, ["server-b.yaml": Self.serverB(nil)], proxies: 3)
                    // Back, first listening without clients, then chosen by the service again.
                    try await Self.change(mesh, ["server-b.yaml": Self.serverB("standby")], proxies: 3)
                    try await Self.change(mesh, ["server-b.yaml": Self.serverB("server")], proxies: 3)
                }
                let counts = await load.stop()
                #expect(counts.failures.isEmpty, "\(counts.failures.count) failed requests of \(counts.ok + counts.failures.count): \(counts.failures.prefix(5))")
            }
        }
    }
}
