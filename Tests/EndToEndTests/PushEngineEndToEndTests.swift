import ControlPlane
import EnvoyAPI
import Foundation
import GRPCCore
import MeshConfig
import MeshModel
import SwiftProtobuf
import Testing
import XDSTesting

extension EndToEnd {
    /// The push engine against the real server, with protocol-level clients: delta xDS with
    /// reconnects, debouncing, scoped pushes, NACKs and unacknowledged responses.
    /// Addresses: 127.31.0.x.
    @Suite("Push engine: delta xDS, debounce, scoped pushes, NACKs")
    struct PushEngine {
        static var files: [String: String] {
            [
                "a.yaml": serviceYAML("alpha", namespace: "push-a")
                    + "---\n" + workloadYAML("alpha-1", namespace: "push-a", block: 31, host: 2, labels: ["app": "alpha"], serviceAccount: "alpha"),
                "b.yaml": serviceYAML("beta", namespace: "push-b")
                    + "---\n" + workloadYAML("beta-1", namespace: "push-b", block: 31, host: 3, labels: ["app": "beta"], serviceAccount: "beta"),
            ]
        }

        static let node: Envoy_Config_Core_V3_Node = {
            var node = Envoy_Config_Core_V3_Node()
            node.id = NodeIdentity.nodeID(workload: .init(namespace: "push-b", name: "beta-1"), address: "127.31.0.3")
            return node
        }()

        static func metadata(_ mesh: MeshHarness) throws -> Metadata {
            ["authorization": "Bearer \(try mesh.token("push-b", "beta"))"]
        }

        /// Waits until proxies are pushed the store's newest revision.
        static func pushed(_ mesh: MeshHarness) async throws {
            try await Eventually.wait(timeout: .seconds(5), what: "the change to reach the push side") {
                mesh.controlPlane.pushes.output.current.revision == mesh.controlPlane.store.revision
            }
        }

        static func serviceEntry(_ name: String, namespace: String, port: Int = 8080) -> String {
            serviceYAML(name, namespace: namespace, port: port)
        }

        @Test("delta: a reconnect with initial_resource_versions receives only what changed, and removals of what it holds")
        func deltaReconnect() async throws {
            try await MeshHarness("push-delta", files: Self.files).run { mesh in
                let metadata = try Self.metadata(mesh)
                let held = try await ADSTestClient.withDeltaStream(to: mesh.xdsAddress, security: mesh.security, metadata: metadata) { conversation in
                    conversation.request(XDSTypeURL.cluster, node: Self.node)
                    let response = try await conversation.receive()
                    #expect(response.removedResources.isEmpty)
                    conversation.request(XDSTypeURL.cluster, nonce: response.nonce)
                    return Dictionary(uniqueKeysWithValues: response.resources.map { ($0.name, $0.version) })
                }
                #expect(held.keys.contains("outbound|8080||beta.push-b.svc.cluster.local"), "\(held.keys.sorted())")
                #expect(!held.keys.contains { $0.contains("alpha") }, "push-a is outside beta's Sidecar egress")

                // While disconnected: a service appears in push-b.
                try mesh.writeConfig("gamma.yaml", Self.serviceEntry("gamma", namespace: "push-b"))
                try await Eventually.wait(timeout: .seconds(5), what: "gamma to be served") {
                    mesh.controlPlane.pushes.output.current.registry.services.contains { $0.hostname.hasPrefix("gamma.") }
                }
                let gamma = "outbound|8080||gamma.push-b.svc.cluster.local"
                try await ADSTestClient.withDeltaStream(to: mesh.xdsAddress, security: mesh.security, metadata: metadata) { conversation in
                    conversation.request(XDSTypeURL.cluster, node: Self.node, initialVersions: held)
                    let response = try await conversation.receive()
                    #expect(response.resources.map(\.name) == [gamma], "only the new cluster: \(response.resources.map(\.name))")
                    #expect(response.removedResources.isEmpty)
                    conversation.request(XDSTypeURL.cluster, nonce: response.nonce)
                    #expect(await conversation.receivesNothing(within: .milliseconds(500)))
                }

                // A reconnect holding a cluster that is gone is told to remove it, and only that.
                try FileManager.default.removeItem(atPath: mesh.configDirectory + "/gamma.yaml")
                try await Eventually.wait(timeout: .seconds(5), what: "gamma to be gone") {
                    !mesh.controlPlane.pushes.output.current.registry.services.contains { $0.hostname.hasPrefix("gamma.") }
                }
                let stale = held.merging([gamma: "an-old-version"]) { $1 }
                try await ADSTestClient.withDeltaStream(to: mesh.xdsAddress, security: mesh.security, metadata: metadata) { conversation in
                    conversation.request(XDSTypeURL.cluster, node: Self.node, initialVersions: stale)
                    let response = try await conversation.receive()
                    #expect(response.resources.isEmpty && response.removedResources == [gamma], "\(response.resources.map(\.name)) removed \(response.removedResources)")
                }
                #expect(try await mesh.admin("/metrics").body.contains(#"meshd_xds_streams_total{api="delta"} 3"#))
            }
        }

        /// Subscribes to CDS, EDS (the clusters' names), LDS and RDS (port 8080's routes) and
        /// acknowledges until the stream is quiet; returns the clusters' names.
        static func sync(_ conversation: ADSConversation) async throws {
            conversation.request(XDSTypeURL.cluster, node: Self.node)
            conversation.request(XDSTypeURL.listener)
            var quietRounds = 0
            for _ in 0..<20 {
                guard let response = try? await conversation.receive(timeout: .milliseconds(500)) else {
                    quietRounds += 1
                    if quietRounds == 2 { return }
                    continue
                }
                var names: [String] = []
                if response.typeURL == XDSTypeURL.cluster {
                    let clusters = response.resources.compactMap { try? Envoy_Config_Cluster_V3_Cluster(unpackingAny: $0) }
                    conversation.request(XDSTypeURL.cluster, version: response.versionInfo, nonce: response.nonce)
                    conversation.request(XDSTypeURL.endpoint, names: clusters.filter { $0.type == .eds }.map(\.name))
                    continue
                }
                if response.typeURL == XDSTypeURL.listener {
                    conversation.request(XDSTypeURL.listener, version: response.versionInfo, nonce: response.nonce)
                    conversation.request(XDSTypeURL.route, names: ["8080"])
                    continue
                }
                if response.typeURL == XDSTypeURL.endpoint { names = response.resources.compactMap { try? Envoy_Config_Endpoint_V3_ClusterLoadAssignment(unpackingAny: $0).clusterName } }
                if response.typeURL == XDSTypeURL.route { names = ["8080"] }
                conversation.request(response.typeURL, names: names, version: response.versionInfo, nonce: response.nonce)
            }
        }

        /// Every response within `window`, acknowledged.
        static func responses(_ conversation: ADSConversation, within window: Duration, names: [String: [String]]) async -> [Envoy_Service_Discovery_V3_DiscoveryResponse] {
            var out: [Envoy_Service_Discovery_V3_DiscoveryResponse] = []
            let deadline = ContinuousClock.now + window
            while ContinuousClock.now < deadline, let response = try? await conversation.receive(timeout: deadline - ContinuousClock.now) {
                out.append(response)
                conversation.request(response.typeURL, names: names[response.typeURL] ?? [], version: response.versionInfo, nonce: response.nonce)
            }
            return out
        }

        @Test("a burst of 50 changes is one push; an endpoint-only change sends EDS only; a change in another namespace sends nothing")
        func scopedPushes() async throws {
            try await MeshHarness("push-scoped", files: Self.files).run { mesh in
                try await ADSTestClient.withStream(to: mesh.xdsAddress, security: mesh.security, metadata: try Self.metadata(mesh)) { conversation in
                    try await Self.sync(conversation)
                    let edsNames = mesh.controlPlane.pushes.output.current.registry.services.filter { $0.hostname.contains("push-b") }.map { "outbound|8080||\($0.hostname)" }
                    let names = [XDSTypeURL.endpoint: edsNames, XDSTypeURL.route: ["8080"]]

                    // 50 changes within 50 ms to a route beta-1 uses: one RDS push.
                    for index in 0..<50 {
                        let yaml = """
                            apiVersion: networking.istio.io/v1
                            kind: VirtualService
                            metadata: {name: beta, namespace: push-b}
                            spec:
                              hosts: [beta.push-b.svc.cluster.local]
                              http: [{timeout: \(index + 1)s, route: [{destination: {host: beta.push-b.svc.cluster.local}}]}]
                            """
                        let resource = try #require(try ResourceDocuments.decode(yaml, source: "test").first).resource
                        _ = try mesh.controlPlane.store.applyAPI(index == 0 ? .create(resource) : .replace(resource, expectedVersion: nil))
                    }
                    let burst = await Self.responses(conversation, within: .milliseconds(1500), names: names)
                    #expect(burst.map(\.typeURL) == [XDSTypeURL.route], "one route push for the burst: \(burst.map { XDSTypeURL.shortName($0.typeURL) })")

                    // A second workload of beta: only endpoints change.
                    try mesh.writeConfig("beta-2.yaml", """
                        apiVersion: networking.istio.io/v1
                        kind: WorkloadEntry
                        metadata: {name: beta-2, namespace: push-b}
                        spec: {address: 127.31.0.4, labels: {app: beta}, serviceAccount: beta}
                        """)
                    let endpoints = await Self.responses(conversation, within: .milliseconds(1500), names: names)
                    #expect(endpoints.map(\.typeURL) == [XDSTypeURL.endpoint], "EDS only: \(endpoints.map { XDSTypeURL.shortName($0.typeURL) })")

                    // A service in push-a, which beta-1's Sidecar does not import: nothing.
                    try mesh.writeConfig("delta.yaml", Self.serviceEntry("delta", namespace: "push-a"))
                    try await Self.pushed(mesh)
                    let unrelated = await Self.responses(conversation, within: .milliseconds(800), names: names)
                    #expect(unrelated.isEmpty, "nothing for a change beta-1 cannot reach: \(unrelated.map { XDSTypeURL.shortName($0.typeURL) })")
                }
                let metrics = try await mesh.admin("/metrics").body
                #expect(metrics.contains("pilot_debounce_time_count"), "the debounce is measured")
                // Server-side push time: each change that reached the proxy is timed from its
                // publication to the proxy's responses written.
                #expect(Rotation.metric(metrics, "meshd_push_duration_seconds_count") >= 2, "the route and endpoint changes were timed")
                #expect(Rotation.metric(metrics, "meshd_push_last_change_seconds") > 0)
            }
        }

        @Test("new streams beyond the rate are turned away with RESOURCE_EXHAUSTED; streams end with UNAVAILABLE at the maximum connection age")
        func overload() async throws {
            let limits = MeshProxyProvider.Limits(connectionsPerSecond: 1, connectionBurst: 3, maximumConnectionAge: .seconds(1))
            try await MeshHarness("push-overload", files: Self.files, configure: { $0.proxyLimits = limits }).run { mesh in
                let metadata = try Self.metadata(mesh)
                let outcomes = try await withThrowingTaskGroup(of: String.self) { group in
                    for _ in 0..<8 {
                        group.addTask {
                            try await ADSTestClient.withStream(to: mesh.xdsAddress, security: mesh.security, metadata: metadata) { conversation -> String in
                                conversation.request(XDSTypeURL.cluster, node: Self.node)
                                let started = ContinuousClock.now
                                do {
                                    let response = try await conversation.receive()
                                    conversation.request(XDSTypeURL.cluster, version: response.versionInfo, nonce: response.nonce)
                                    _ = try await conversation.receive(timeout: .seconds(5))
                                    return "not closed"
                                } catch let error as RPCError {
                                    let age = ContinuousClock.now - started
                                    if error.code == .unavailable, age > .milliseconds(800), age < .seconds(3) { return "aged out" }
                                    return "\(error.code)"
                                }
                            }
                        }
                    }
                    var outcomes: [String] = []
                    for try await outcome in group { outcomes.append(outcome) }
                    return outcomes
                }
                let admitted = outcomes.filter { $0 == "aged out" }.count
                #expect(admitted >= 3 && admitted <= 4, "the burst is admitted, then about 1 per second: \(outcomes)")
                #expect(outcomes.filter { $0 == "\(RPCError.Code.resourceExhausted)" }.count == 8 - admitted, "\(outcomes)")
            }
        }

        @Test("one unacknowledged response per type; a NACKed configuration is not resent until it changes, and counted once")
        func nacksAndBackPressure() async throws {
            try await MeshHarness("push-nack", files: Self.files).run { mesh in
                try await ADSTestClient.withStream(to: mesh.xdsAddress, security: mesh.security, metadata: try Self.metadata(mesh)) { conversation in
                    conversation.request(XDSTypeURL.cluster, node: Self.node)
                    let first = try await conversation.receive()
                    // Never acknowledged: changes that alter the clusters are held back.
                    for index in 0..<3 {
                        try mesh.writeConfig("extra-\(index).yaml", Self.serviceEntry("extra\(index)", namespace: "push-b"))
                        try await Self.pushed(mesh)
                    }
                    #expect(await conversation.receivesNothing(within: .milliseconds(800)), "nothing while a CDS response is unacknowledged")
                    // A NACK: the newest configuration (which differs) is sent, once.
                    conversation.request(XDSTypeURL.cluster, version: "", nonce: first.nonce, error: "rejected for the test")
                    let newest = try await conversation.receive()
                    #expect(newest.resources.count == first.resources.count + 3)
                    conversation.request(XDSTypeURL.cluster, version: "", nonce: newest.nonce, error: "rejected again")
                    // A change that does not alter the clusters: the rejected set is not resent.
                    try mesh.writeConfig("vs.yaml", """
                        apiVersion: networking.istio.io/v1
                        kind: VirtualService
                        metadata: {name: beta, namespace: push-b}
                        spec:
                          hosts: [beta.push-b.svc.cluster.local]
                          http: [{timeout: 3s, route: [{destination: {host: beta.push-b.svc.cluster.local}}]}]
                        """)
                    try await Self.pushed(mesh)
                    #expect(await conversation.receivesNothing(within: .milliseconds(800)), "the NACKed clusters are not sent again")
                    // Once the clusters change, they are.
                    try mesh.writeConfig("extra-9.yaml", Self.serviceEntry("extra9", namespace: "push-b"))
                    let fixed = try await conversation.receive()
                    #expect(fixed.resources.count == newest.resources.count + 1)
                }
                let metrics = try await mesh.admin("/metrics").body
                #expect(metrics.contains(#"pilot_total_xds_rejects{type="cds"} 2"#), "each NACK counted once")
            }
        }
    }
}
