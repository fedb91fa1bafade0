import Foundation
import MeshModel
import Testing
import XDSTesting

extension EndToEnd {
    /// Locality load balancing through real Envoys (addresses 127.36.x.y): a client in r1/z1,
    /// `web` in its zone (web-a) and in r1/z2 (web-b1, web-b2).
    @Suite("Locality load balancing: traffic stays in the zone, fails over and comes back, distribute splits")
    struct LocalityTests {
        static let namespace = "locality"
        static let egress = HostPort(host: "127.36.1.1", port: 8080)
        static let workloads = [("web-a", 2, "r1/z1"), ("web-b1", 3, "r1/z2"), ("web-b2", 4, "r1/z2")]

        static func rule(_ trafficPolicy: String) -> String {
            """
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: web, namespace: \(namespace)}
            spec:
              host: web
              trafficPolicy: \(trafficPolicy)
            """
        }

        static func retries(remote: Bool) -> String {
            """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: web, namespace: \(namespace)}
            spec:
              hosts: [web]
              http:
              - route: [{destination: {host: web}}]
                retries: {attempts: 2\(remote ? ", retryRemoteLocalities: true" : "")}
            """
        }

        static var files: [String: String] {
            var files = [
                "services.yaml": serviceYAML("web", namespace: namespace),
                "client.yaml": workloadYAML("client", namespace: namespace, block: 36, host: 1, labels: ["app": "client"], serviceAccount: "client", locality: "r1/z1"),
                // Istio's default: with outlier detection, endpoints are ordered by distance.
                "dr.yaml": rule("{outlierDetection: {consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 4s, maxEjectionPercent: 100}}"),
            ]
            for (name, host, locality) in workloads {
                files["\(name).yaml"] = workloadYAML(name, namespace: namespace, block: 36, host: host, labels: ["app": "web", "instance": name], serviceAccount: "web", locality: locality)
            }
            return files
        }

        /// Sends `count` requests, `parallel` at a time; counts answers by body (or status).
        static func send(_ count: Int, parallel: Int = 1) async -> [String: Int] {
            await tallyAnswers(count, parallel: parallel, to: egress, authority: "web", timeout: .seconds(2))
        }

        @Test("in-zone first; when web-a is killed traffic moves to r1/z2 within seconds and returns after baseEjectionTime once it is back; retryRemoteLocalities retries in r1/z2; distribute 80/20 within ±5 points over 1,000 requests")
        func failoverAndDistribute() async throws {
            try await MeshHarness("locality", files: Self.files).run { mesh in
                for (name, _, _) in Self.workloads { try await mesh.startSidecar(Self.namespace, name) }
                try await mesh.startSidecar(Self.namespace, "client")
                var apps: [String: TestHTTPApp] = [:]
                for (name, host, _) in Self.workloads { apps[name] = try await mesh.startApp(name, host: "127.36.2.\(host)", port: 8080) }

                let local = await Self.send(40)
                #expect(local == ["web-a": 40], "the client's zone takes everything while it is healthy: \(local)")

                // Killed: no listener, open connections closed.
                let killed = ContinuousClock.now
                await apps["web-a"]!.stop()
                var moved: Duration?
                for _ in 0..<100 where moved == nil {
                    let batch = await Self.send(10)
                    if batch["web-a"] == nil && (batch["web-b1"] ?? 0) + (batch["web-b2"] ?? 0) == 10 { moved = ContinuousClock.now - killed }
                }
                let failover = try #require(moved, "traffic never left the killed zone")
                #expect(failover < .seconds(5), "outlier detection (interval 1s) moves traffic within seconds: \(failover)")
                let remote = await Self.send(40)
                #expect((remote["web-b1"] ?? 0) + (remote["web-b2"] ?? 0) == 40, "while web-a is ejected, r1/z2 serves everything: \(remote)")
                #expect((remote["web-b1"] ?? 0) > 0 && (remote["web-b2"] ?? 0) > 0, "both endpoints of the other zone share it: \(remote)")

                // Back: after baseEjectionTime the endpoint is tried again and keeps the traffic.
                let restarted = ContinuousClock.now
                apps["web-a"] = try await mesh.startApp("web-a", host: "127.36.2.2", port: 8080)
                var returned: Duration?
                for _ in 0..<200 where returned == nil {
                    if await Self.send(10) == ["web-a": 10] { returned = ContinuousClock.now - restarted } else { try await Task.sleep(for: .milliseconds(100)) }
                }
                let recovery = try #require(returned, "traffic never came back to the client's zone")
                #expect(recovery < .seconds(12), "back after the 4 s ejection (plus the outlier interval): \(recovery)")

                // retryRemoteLocalities: web-a answers 503 and is never ejected; Istio's default
                // retries stay in its priority, retries that move on reach r1/z2 (the third
                // attempt, with Envoy's previous_priorities updated every 2 attempts).
                apps["web-a"]!.setBehaviour { _, _ in .init(status: 503, body: "broken\n") }
                try mesh.writeConfig("dr.yaml", Self.rule("{outlierDetection: {consecutive5xxErrors: 1000, interval: 1s}}"))
                try mesh.writeConfig("vs.yaml", Self.retries(remote: false))
                let client = try #require(mesh.envoys.first { $0.name == "client" })
                try await Eventually.wait(timeout: .seconds(10), what: "the retry policy to reach the client") {
                    let dump = (try? await client.admin("/config_dump").body) ?? ""
                    return dump.contains("consecutive_5xx\": 1000") && dump.contains("\"num_retries\": 2") && !dump.contains("\"retry_priority\"")
                }
                let stuck = await Self.send(20)
                #expect(stuck == ["status 503": 20], "without retryRemoteLocalities every retry stays in the client's zone: \(stuck)")
                try mesh.writeConfig("vs.yaml", Self.retries(remote: true))
                try await Eventually.wait(timeout: .seconds(10), what: "retryRemoteLocalities to reach the client") {
                    (try? await client.admin("/config_dump").body.contains("\"retry_priority\"")) ?? false
                }
                let rescued = await Self.send(20)
                #expect((rescued["web-b1"] ?? 0) + (rescued["web-b2"] ?? 0) == 20, "retries move on to r1/z2: \(rescued)")
                apps["web-a"]!.setBehaviour { _, _ in .init(body: "web-a\n") }

                // distribute: 80 % stays in r1/z1, 20 % goes to r1/z2, with or without failures.
                try mesh.writeConfig("dr.yaml", Self.rule("""
                    {loadBalancer: {localityLbSetting: {distribute: [{from: "r1/z1/*", to: {"r1/z1/*": 80, "r1/z2/*": 20}}]}}}
                    """))
                try await Eventually.wait(timeout: .seconds(10), what: "the locality weights to reach the client") {
                    let dump = (try? await client.admin("/config_dump?include_eds").body) ?? ""
                    return dump.contains("locality_weighted_lb_config") && dump.contains("\"load_balancing_weight\": 80")
                }
                let split = await Self.send(1000, parallel: 8)
                #expect(split["error"] == nil && split.keys.allSatisfy { $0.hasPrefix("web-") }, "\(split)")
                let inZone = Double(split["web-a"] ?? 0) / 1000
                #expect(abs(inZone - 0.80) <= 0.05, "in-zone share \(inZone) of \(split)")
                print("locality: failover after \(failover), back after \(recovery), in-zone share \(inZone) (distribute 80/20)")
                #expect(try await mesh.envoyHealthProblems().isEmpty)
            }
        }
    }
}
