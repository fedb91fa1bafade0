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
    /// WorkloadGroup auto-registration and probes through real Envoys (addresses 127.37.x.y):
    /// a client with a hand-written entry, and proxies that register into groups as they connect.
    @Suite("Workloads that come and go: auto-registration from a WorkloadGroup, health probes")
    struct AutoRegistrationTests {
        static let namespace = "vms"
        static let egress = HostPort(host: "127.37.1.1", port: 8080)
        static let grace = 3

        static func group(_ name: String, serviceAccount: String, probe: String? = nil) -> String {
            """
            apiVersion: networking.istio.io/v1
            kind: WorkloadGroup
            metadata: {name: \(name), namespace: \(namespace)}
            spec:
              metadata: {labels: {app: \(name)}}
              template: {serviceAccount: \(serviceAccount), labels: {tier: backend}}
            \(probe.map { "  probe: \($0)\n" } ?? "")
            """
        }

        static func files(probe: String? = nil) -> [String: String] {
            var files = [
                "services.yaml": serviceYAML("vm", namespace: namespace) + "---\n" + serviceYAML("api", namespace: namespace) + "---\n"
                    + serviceYAML("solo", namespace: namespace),
                // A group of one, started through meshctl as users do; its probe reaches its app directly.
                "solo.yaml": group("solo", serviceAccount: "solo", probe: "{tcpSocket: {host: 127.37.2.40, port: 8080}, periodSeconds: 1}") + "---\n"
                    + sidecarYAML("solo", namespace: namespace, block: 37, host: 40, labels: ["app": "solo"]),
                "client.yaml": workloadYAML("client", namespace: namespace, block: 37, host: 1, labels: ["app": "client"], serviceAccount: "client"),
                "groups.yaml": group("vm", serviceAccount: "vm") + "---\n" + group("other", serviceAccount: "other") + "---\n"
                    + group("api", serviceAccount: "api", probe: probe),
            ]
            // Each registered proxy carries an `instance` label (node LABELS), which its Sidecar selects.
            for host in 10..<32 {
                files["sidecar-\(host).yaml"] = sidecarYAML("instance-\(host)", namespace: namespace, block: 37, host: host, labels: ["instance": "i\(host)"])
            }
            return files
        }

        /// The auto-registered WorkloadEntries served: name → address.
        static func registered(_ mesh: MeshHarness, group: String) -> [String: String] {
            var out: [String: String] = [:]
            for resource in mesh.controlPlane.store.storedResources where resource.autoRegistrationGroup == group {
                if case .workloadEntry(let spec) = resource.spec { out[resource.metadata.name] = spec.address ?? "" }
            }
            return out
        }

        static func node(group: String, address: String) -> Envoy_Config_Core_V3_Node {
            var node = Envoy_Config_Core_V3_Node()
            node.id = "sidecar~\(address)~\(group).\(namespace)~\(namespace).svc.cluster.local"
            node.metadata.fields["AUTO_REGISTER_GROUP"] = Google_Protobuf_Value(stringValue: group)
            node.metadata.fields["INSTANCE_IPS"] = Google_Protobuf_Value(stringValue: address)
            return node
        }

        /// Stops `envoys` at once (each drains for up to a second).
        static func stop(_ envoys: [EnvoyProcess]) async {
            await withTaskGroup(of: Void.self) { group in
                for envoy in envoys { group.addTask { await envoy.stop() } }
            }
        }

        /// The status a stream ends with after its first request (nil: it was served).
        static func refusal(_ mesh: MeshHarness, token: String, node: Envoy_Config_Core_V3_Node) async throws -> RPCError? {
            try await ADSTestClient.withStream(to: mesh.xdsAddress, security: mesh.security, metadata: ["authorization": "Bearer \(token)"]) { conversation in
                conversation.request(XDSTypeURL.cluster, node: node)
                do {
                    _ = try await conversation.receive()
                    return nil
                } catch let error as RPCError {
                    return error
                }
            }
        }

        @Test("20 proxies of one WorkloadGroup register as they connect, serve traffic and go a grace period after they stop; a token for another group is refused; a meshd restart in between leaves exactly the live entries")
        func registration() async throws {
            try await MeshHarness("autoregistration", files: Self.files(), configure: { $0.workloadEntryGracePeriod = .seconds(Self.grace) }).run { mesh in
                try await mesh.startSidecar(Self.namespace, "client")
                let hosts = Array(10..<30)
                var proxies: [Int: EnvoyProcess] = [:]
                for host in hosts {
                    proxies[host] = try await mesh.startRegisteredSidecar(
                        Self.namespace, group: "vm", address: "127.37.0.\(host)", labels: ["instance": "i\(host)"], as: "vm-\(host)", wait: false)
                }
                for host in hosts { try await proxies[host]!.waitUntilReady(timeout: .seconds(30)) }
                for host in hosts { try await mesh.startApp("vm-\(host)", host: "127.37.2.\(host)", port: 8080) }

                let expected = Dictionary(uniqueKeysWithValues: hosts.map { ("vm-127.37.0.\($0)", "127.37.0.\($0)") })
                #expect(Self.registered(mesh, group: "vm") == expected, "one entry per proxy, named as Istio names them")
                let entry = try #require(mesh.controlPlane.store.storedResource(ResourceKey(kind: .workloadEntry, namespace: Self.namespace, name: "vm-127.37.0.10")))
                #expect(entry.metadata.labels["app"] == "vm" && entry.metadata.labels["instance"] == "i10", "labels: the group's and the proxy's own: \(entry.metadata.labels)")
                #expect(entry.metadata.annotations["istio.io/connectedAt"] != nil && entry.metadata.annotations["istio.io/disconnectedAt"] == nil)
                guard case .workloadEntry(let spec) = entry.spec else { Issue.record("not a WorkloadEntry"); return }
                #expect(spec.serviceAccount == "vm" && spec.labels?["tier"] == "backend", "the template's service account and labels")

                // Every registered proxy serves traffic.
                var seen: Set<String> = []
                for _ in 0..<10 where seen.count < hosts.count {
                    let tally = await tallyAnswers(200, parallel: 8, to: Self.egress, authority: "vm", timeout: .seconds(3))
                    seen.formUnion(tally.keys.filter { $0.hasPrefix("vm-") })
                }
                #expect(seen == Set(hosts.map { "vm-\($0)" }), "answered by: \(seen.sorted())")

                // A token limited to another group, and one for another service account, are refused.
                let otherGroup = try mesh.controlPlane.tokens.mint(namespace: Self.namespace, serviceAccount: "vm", ttl: nil, workloadGroup: "\(Self.namespace)/other").token
                let refused = try await Self.refusal(mesh, token: otherGroup, node: Self.node(group: "vm", address: "127.37.0.40"))
                #expect(refused?.code == .permissionDenied && refused?.message.contains("WorkloadGroup vms/other") == true, "\(String(describing: refused))")
                let wrongAccount = try await Self.refusal(mesh, token: try mesh.token(Self.namespace, "client"), node: Self.node(group: "vm", address: "127.37.0.41"))
                #expect(wrongAccount?.code == .permissionDenied, "\(String(describing: wrongAccount))")
                #expect(Self.registered(mesh, group: "vm").count == hosts.count, "refused proxies get no entry")

                // Ten stop; meshd restarts at once; the ten others reconnect within the grace period.
                let stopped = Array(hosts.prefix(10))
                let live = Array(hosts.dropFirst(10))
                await Self.stop(stopped.map { proxies[$0]! })
                try await mesh.restartControlPlane()
                #expect(Self.registered(mesh, group: "vm").count == hosts.count, "entries survive the restart")
                try await Eventually.wait(timeout: .seconds(Double(Self.grace) * 4), what: "the stopped proxies' entries to go") {
                    Self.registered(mesh, group: "vm") == Dictionary(uniqueKeysWithValues: live.map { ("vm-127.37.0.\($0)", "127.37.0.\($0)") })
                }
                // A while later: still exactly the live ones, and they serve.
                try await Task.sleep(for: .seconds(Self.grace + 1))
                #expect(Set(Self.registered(mesh, group: "vm").keys) == Set(live.map { "vm-127.37.0.\($0)" }))
                seen = []
                for _ in 0..<10 where seen.count < live.count {
                    let tally = await tallyAnswers(100, parallel: 8, to: Self.egress, authority: "vm", timeout: .seconds(3))
                    seen.formUnion(tally.keys.filter { $0.hasPrefix("vm-") })
                }
                #expect(seen == Set(live.map { "vm-\($0)" }), "answered by: \(seen.sorted())")

                // The rest stop: their entries go after the grace period, not before.
                let stoppedAt = ContinuousClock.now
                await Self.stop(live.map { proxies[$0]! })
                #expect(Self.registered(mesh, group: "vm").count == live.count, "kept during the grace period")
                try await Eventually.wait(timeout: .seconds(Double(Self.grace) * 4), what: "the last entries to go") {
                    Self.registered(mesh, group: "vm").isEmpty
                }
                #expect(ContinuousClock.now - stoppedAt >= .seconds(Self.grace))
            }
        }

        @Test("a WorkloadGroup probe run by meshctl proxy run: no traffic before the first passing report; a failing app leaves the load balancers within the probe period and comes back; get and describe show the health")
        func probes() async throws {
            let probe = "{httpGet: {path: /healthz, port: 8080}, periodSeconds: 1, timeoutSeconds: 1}"
            try await MeshHarness("autoregistration-probes", files: Self.files(probe: probe)).run { mesh in
                try await mesh.startSidecar(Self.namespace, "client")
                for host in [30, 31] {
                    try await mesh.startRegisteredSidecar(Self.namespace, group: "api", address: "127.37.0.\(host)", labels: ["instance": "i\(host)"], as: "api-\(host)")
                }
                // Registered, but nothing answers the probe yet: no endpoint.
                let entries = ["api-127.37.0.30", "api-127.37.0.31"].map { ServiceRegistry.WorkloadID(namespace: Self.namespace, name: $0) }
                try await Task.sleep(for: .seconds(2))
                let pending = mesh.controlPlane.store.publisher.current
                #expect(entries.allSatisfy { pending.registry.workload($0) != nil && !pending.isReady($0) })
                // Either no report yet, or the probe reported failing (nothing listens behind the sidecar).
                #expect(["Unknown", "False"].contains(pending.healthCondition(of: entries[0])?.status ?? ""))
                let before = await tallyAnswers(5, parallel: 1, to: Self.egress, authority: "api", timeout: .seconds(2))
                #expect(before.keys.allSatisfy { !$0.hasPrefix("api-") }, "no traffic before the probe passes: \(before)")

                var apps: [Int: TestHTTPApp] = [:]
                for host in [30, 31] { apps[host] = try await mesh.startApp("api-\(host)", host: "127.37.2.\(host)", port: 8080) }
                try await Eventually.wait(timeout: .seconds(10), what: "both to turn healthy and take traffic") {
                    let tally = await tallyAnswers(20, parallel: 4, to: Self.egress, authority: "api", timeout: .seconds(2))
                    return Set(tally.keys) == ["api-30", "api-31"]
                }
                let listed = try await mesh.admin("/apis/networking.istio.io/v1/namespaces/\(Self.namespace)/workloadentries/api-127.37.0.30")
                #expect(listed.body.contains("Healthy"), "\(listed.body)")

                // The app behind api-30 fails: it leaves the load balancers within about a period.
                let failed = ContinuousClock.now
                await apps[30]!.stop()
                var gone: Duration?
                for _ in 0..<100 where gone == nil {
                    let snapshot = mesh.controlPlane.store.publisher.current
                    if !snapshot.isReady(entries[0]) { gone = ContinuousClock.now - failed }
                    try await Task.sleep(for: .milliseconds(100))
                }
                let removal = try #require(gone, "the failing workload was never taken out")
                #expect(removal < .seconds(4), "period 1s, failureThreshold 1: \(removal)")
                try await Eventually.wait(timeout: .seconds(5), what: "traffic to leave api-30") {
                    await tallyAnswers(20, parallel: 4, to: Self.egress, authority: "api", timeout: .seconds(2)) == ["api-31": 20]
                }
                let condition = mesh.controlPlane.store.publisher.current.healthCondition(of: entries[0])
                #expect(condition?.status == "False" && condition?.message?.contains("503") == true, "\(String(describing: condition))")
                let describe = try await mesh.admin("/v1/workloads/\(Self.namespace)/api-127.37.0.30/describe")
                #expect(describe.body.contains("Unhealthy") && describe.body.contains("\(Self.namespace)/api"), "\(describe.body)")
                let table = try await meshctl(["get", "workloadentries", "-n", Self.namespace, "--server", "http://\(mesh.adminAddress)", "--admin-token", mesh.adminToken], in: mesh.directory)
                #expect(table.status == 0 && table.output.contains("Unhealthy") && table.output.contains("Healthy"), "\(table.output)")

                // Back: it takes traffic again.
                apps[30] = try await mesh.startApp("api-30", host: "127.37.2.30", port: 8080)
                try await Eventually.wait(timeout: .seconds(10), what: "api-30 to come back") {
                    let tally = await tallyAnswers(20, parallel: 4, to: Self.egress, authority: "api", timeout: .seconds(2))
                    return Set(tally.keys) == ["api-30", "api-31"]
                }

                // The user's path: a token for the group, then `meshctl proxy run --workload-group`.
                let server = ["--server", "http://\(mesh.adminAddress)", "--admin-token", mesh.adminToken]
                let token = try await meshctl(["token", "create", "--workload-group", "\(Self.namespace)/solo"] + server, in: mesh.directory)
                #expect(token.status == 0 && token.output.contains("for vms/solo, WorkloadGroup vms/solo only"), "\(token.output)")
                let solo = try EnvoyProcess.start(
                    name: "solo", workloadGroup: "\(Self.namespace)/solo", address: "127.37.0.40", adminAddress: HostPort(host: "127.37.0.40", port: 15000),
                    directory: mesh.directory, meshctlArguments: server)
                mesh.adopt(solo)
                try await solo.waitUntilReady()
                let bootstrap = try String(contentsOfFile: mesh.directory + "/solo-bootstrap.json", encoding: .utf8)
                #expect(bootstrap.contains("AUTO_REGISTER_GROUP") && bootstrap.contains("MESHD_PROBE"))
                try await mesh.startApp("solo", host: "127.37.2.40", port: 8080)
                try await Eventually.wait(timeout: .seconds(10), what: "the proxy started by meshctl to register, pass its probe and take traffic") {
                    await tallyAnswers(5, parallel: 1, to: Self.egress, authority: "solo", timeout: .seconds(2)) == ["solo": 5]
                }
                #expect(Self.registered(mesh, group: "solo") == ["solo-127.37.0.40": "127.37.0.40"])

                // A report stream is authenticated as the proxy's own: revoking its token ends it.
                let minted = try mesh.controlPlane.tokens.mint(namespace: Self.namespace, serviceAccount: "api", ttl: nil, workloadGroup: "\(Self.namespace)/api")
                let reporter = {
                    var node = Self.node(group: "api", address: "127.37.0.31")
                    node.metadata.fields["MESHD_HEALTH_REPORTER"] = Google_Protobuf_Value(stringValue: "true")
                    return node
                }()
                let ended = try await ADSTestClient.withStream(to: mesh.xdsAddress, security: mesh.security, metadata: ["authorization": "Bearer \(minted.token)"]) { conversation -> RPCError? in
                    conversation.request(XDSTypeURL.healthInformation, node: reporter)
                    #expect(await conversation.receivesNothing(within: .milliseconds(300)), "reports are not answered")
                    try mesh.controlPlane.tokens.revoke(id: minted.record.id)
                    do {
                        _ = try await conversation.receive()
                        return nil
                    } catch let error as RPCError {
                        return error
                    }
                }
                #expect(ended?.code == .unauthenticated, "\(String(describing: ended))")
                #expect(mesh.controlPlane.store.publisher.current.isReady(entries[1]), "its healthy report changed nothing")
                #expect(try await mesh.envoyHealthProblems().isEmpty)
            }
        }
    }
}
