import Foundation
import MeshModel
import Testing
import XDSTesting

extension EndToEnd {
    /// The ADR's traffic promises through real Envoys (addresses 127.25.x.y).
    @Suite("Traffic management: VirtualService, DestinationRule, ServiceEntry")
    struct TrafficManagement {
        static let namespace = "traffic"
        static let egress = HostPort(host: "127.25.1.2", port: 8080)

        /// A client, the versions of `web` (HTTP 8080) a test runs, two of `echo` (TCP 9000), and
        /// `extra` YAML. Only workloads a test starts are registered: an endpoint without a sidecar
        /// would refuse connections.
        static func files(_ extra: [String: String] = [:], web versions: [Int] = [1]) -> [String: String] {
            var files = [
                "services.yaml": serviceYAML("web", namespace: namespace) + """
                    ---
                    apiVersion: networking.istio.io/v1
                    kind: ServiceEntry
                    metadata: {name: echo, namespace: \(namespace)}
                    spec:
                      hosts: [echo.\(namespace).svc.cluster.local]
                      location: MESH_INTERNAL
                      resolution: STATIC
                      ports: [{number: 9000, name: tcp-echo, protocol: TCP}]
                      workloadSelector: {labels: {app: echo}}
                    """,
                "client.yaml": workloadYAML("client", namespace: namespace, block: 25, host: 2, labels: ["app": "client"], serviceAccount: "client"),
                "echo-a.yaml": workloadYAML("echo-a", namespace: namespace, block: 25, host: 6, labels: ["app": "echo", "version": "a"], serviceAccount: "echo", ports: [9000], protocol: "TCP"),
                "echo-b.yaml": workloadYAML("echo-b", namespace: namespace, block: 25, host: 7, labels: ["app": "echo", "version": "b"], serviceAccount: "echo", ports: [9000], protocol: "TCP"),
            ]
            for version in versions {
                files["web-v\(version).yaml"] = workloadYAML("web-v\(version)", namespace: namespace, block: 25, host: 2 + version, labels: ["app": "web", "version": "v\(version)"], serviceAccount: "web")
            }
            for (name, text) in extra { files[name] = text }
            return files
        }

        static let subsets = """
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: web, namespace: traffic}
            spec:
              host: web
              subsets:
              - {name: v1, labels: {version: v1}}
              - {name: v2, labels: {version: v2}}
              - {name: v3, labels: {version: v3}}
            """

        /// Starts the client's sidecar and the web versions (apps and sidecars) asked for.
        static func start(_ mesh: MeshHarness, versions: [Int]) async throws -> [TestHTTPApp] {
            var apps: [TestHTTPApp] = []
            for version in versions {
                apps.append(try await mesh.startApp("web-v\(version)", host: "127.25.2.\(2 + version)", port: 8080))
                try await mesh.startSidecar(namespace, "web-v\(version)")
            }
            try await mesh.startSidecar(namespace, "client")
            return apps
        }

        /// Sends `count` requests, `parallel` at a time; counts answers by body (or status when not 200).
        static func send(_ count: Int, parallel: Int = 8, headers: @escaping @Sendable (Int) -> [(String, String)] = { _ in [] }, path: String = "/") async -> [String: Int] {
            await tallyAnswers(count, parallel: parallel, to: egress, authority: "web", path: path, headers: headers)
        }

        static func share(_ tally: [String: Int], _ key: String) -> Double {
            Double(tally[key] ?? 0) / Double(max(1, tally.values.reduce(0, +)))
        }

        @Test("the ADR's canary, verbatim: canary-tester reaches the canary; everyone else 90/10 within ±3 points over 2,000 requests")
        func adrCanary() async throws {
            let example = TestTools.packageRoot + "/examples/tai-system/"
            var files: [String: String] = [:]
            for name in ["services.yaml", "workloads.yaml", "sidecars.yaml", "coordinator-canary.yaml", "mtls.yaml", "governor-circuit-breaker.yaml"] {
                // Only the addresses move (to 127.26.x.y); the ADR's resources are used as written.
                files[name] = try String(contentsOfFile: example + name, encoding: .utf8).replacingOccurrences(of: "127.0.", with: "127.26.")
            }
            try await MeshHarness("canary", files: files).run { mesh in
                try await mesh.startApp("coordinator-v1", host: "127.26.2.4", port: 8080)
                try await mesh.startApp("coordinator-v2", host: "127.26.2.5", port: 8080)
                for name in ["coordinator-v1", "coordinator-v2", "governor-v1"] { try await mesh.startSidecar("tai-system", name) }
                let egress = HostPort(host: "127.26.1.2", port: 8080)
                for _ in 0..<50 {
                    let response = try await HTTPProbe.request(egress, authority: "coordinator", path: "/tai.Governor/Status", headers: [("user-agent", "canary-tester")])
                    #expect(response.body == "coordinator-v2\n")
                }
                let tally = await withTaskGroup(of: String.self) { group in
                    var counts: [String: Int] = [:]
                    for batch in 0..<25 {
                        for _ in 0..<80 {
                            group.addTask { (try? await HTTPProbe.request(egress, authority: "coordinator", path: "/tai.Governor/Status"))?.body ?? "error" }
                        }
                        for await body in group { counts[body, default: 0] += 1 }
                        _ = batch
                    }
                    return counts
                }
                #expect(tally.values.reduce(0, +) == 2000 && tally["error"] == nil, "\(tally)")
                let canary = Self.share(tally, "coordinator-v2\n")
                #expect(abs(canary - 0.10) <= 0.03, "canary share \(canary) of \(tally)")
                #expect(try await mesh.envoyHealthProblems() == [])
            }
        }

        @Test("header routing as in bookinfo: end-user jason reaches v2, everyone else v3")
        func headerRouting() async throws {
            let routes = """
                apiVersion: networking.istio.io/v1
                kind: VirtualService
                metadata: {name: web, namespace: traffic}
                spec:
                  hosts: [web]
                  http:
                  - match:
                    - headers:
                        end-user: {exact: jason}
                    route:
                    - destination: {host: web, subset: v2}
                  - route:
                    - destination: {host: web, subset: v3}
                """
            try await MeshHarness("headers", files: Self.files(["dr.yaml": Self.subsets, "vs.yaml": routes], web: [1, 2, 3])).run { mesh in
                _ = try await Self.start(mesh, versions: [1, 2, 3])
                #expect(await Self.send(20, headers: { _ in [("end-user", "jason")] }) == ["web-v2": 20])
                #expect(await Self.send(20, headers: { _ in [("end-user", "someone")] }) == ["web-v3": 20])
                #expect(await Self.send(20) == ["web-v3": 20])
            }
        }

        @Test("faults: a 2 s delay on matched requests only; abort 503 at 50% within ±5 points")
        func faults() async throws {
            let routes = """
                apiVersion: networking.istio.io/v1
                kind: VirtualService
                metadata: {name: web, namespace: traffic}
                spec:
                  hosts: [web]
                  http:
                  - match: [{headers: {x-slow: {exact: "yes"}}}]
                    fault:
                      delay: {fixedDelay: 2s, percentage: {value: 100}}
                    route: [{destination: {host: web}}]
                  - match: [{uri: {prefix: /flaky}}]
                    fault:
                      abort: {httpStatus: 503, percentage: {value: 50}}
                    retries: {attempts: 0}
                    route: [{destination: {host: web}}]
                  - route: [{destination: {host: web}}]
                """
            try await MeshHarness("faults", files: Self.files(["vs.yaml": routes])).run { mesh in
                _ = try await Self.start(mesh, versions: [1])
                let clock = ContinuousClock()
                let slowStart = clock.now
                let slow = try await HTTPProbe.request(Self.egress, authority: "web", headers: [("x-slow", "yes")])
                let slowTime = clock.now - slowStart
                #expect(slow.status == 200 && slowTime >= .milliseconds(1900), "delayed: \(slowTime)")
                let fastStart = clock.now
                #expect(try await HTTPProbe.request(Self.egress, authority: "web").status == 200)
                #expect(clock.now - fastStart < .milliseconds(1000), "not delayed")
                let tally = await Self.send(1000, parallel: 16, path: "/flaky")
                let aborted = Self.share(tally, "status 503")
                #expect(abs(aborted - 0.5) <= 0.05, "abort share \(aborted) of \(tally)")
                #expect((tally["web-v1"] ?? 0) + (tally["status 503"] ?? 0) == 1000)
            }
        }

        @Test("a 500 ms timeout against a slow app answers 504 after about half a second")
        func timeout() async throws {
            let routes = """
                apiVersion: networking.istio.io/v1
                kind: VirtualService
                metadata: {name: web, namespace: traffic}
                spec:
                  hosts: [web]
                  http:
                  - timeout: 0.5s
                    route: [{destination: {host: web}}]
                """
            try await MeshHarness("timeout", files: Self.files(["vs.yaml": routes])).run { mesh in
                let apps = try await Self.start(mesh, versions: [1])
                apps[0].setBehaviour { _, _ in .init(body: "late\n", delay: .seconds(3)) }
                let clock = ContinuousClock()
                let start = clock.now
                let response = try await HTTPProbe.request(Self.egress, authority: "web")
                let elapsed = clock.now - start
                #expect(response.status == 504)
                #expect(elapsed >= .milliseconds(450) && elapsed < .milliseconds(1500), "\(elapsed)")
            }
        }

        @Test("retries: an app that fails each request's first attempt is retried once and the client sees 200; retries off, the client sees the failure")
        func retries() async throws {
            func routes(_ retries: String) -> String {
                """
                apiVersion: networking.istio.io/v1
                kind: VirtualService
                metadata: {name: web, namespace: traffic}
                spec:
                  hosts: [web]
                  http:
                  - retries: \(retries)
                    route: [{destination: {host: web}}]
                """
            }
            try await MeshHarness("retries", files: Self.files(["vs.yaml": routes("{attempts: 3, perTryTimeout: 2s, retryOn: 5xx}")])).run { mesh in
                let apps = try await Self.start(mesh, versions: [1])
                let attempts = AttemptCounter()
                apps[0].setBehaviour { request, _ in
                    let first = attempts.record(request.headers["x-request-id"] ?? "?") == 1
                    return .init(status: first ? 503 : 200, body: first ? "first attempt fails\n" : "ok\n")
                }
                for _ in 0..<10 {
                    let response = try await HTTPProbe.request(Self.egress, authority: "web")
                    #expect(response.status == 200, "\(response.headers) \(response.body)")
                }
                #expect(attempts.counts.count == 10 && attempts.counts.values.allSatisfy { $0 == 2 }, "\(attempts.counts)")

                try mesh.writeConfig("vs.yaml", routes("{attempts: 0}"))
                try await Eventually.wait(timeout: .seconds(5), what: "retries to be switched off") {
                    (try? await HTTPProbe.request(Self.egress, authority: "web"))?.status == 503
                }
                attempts.reset()
                #expect(try await HTTPProbe.request(Self.egress, authority: "web").status == 503)
                #expect(attempts.counts.values.allSatisfy { $0 == 1 })
            }
        }

        @Test("circuit breaking with the ADR's DestinationRule shape, scaled down: overflow 503s (UO) under load, none without the rule")
        func circuitBreaking() async throws {
            let breaker = """
                apiVersion: networking.istio.io/v1beta1
                kind: DestinationRule
                metadata: {name: web-circuit-breaker, namespace: traffic}
                spec:
                  host: web.traffic.svc.cluster.local
                  trafficPolicy:
                    connectionPool:
                      tcp: {maxConnections: 1}
                      http: {http1MaxPendingRequests: 1, http2MaxRequests: 1, maxRequestsPerConnection: 1}
                    outlierDetection: {consecutive5xxErrors: 5, interval: 30s, baseEjectionTime: 30s, maxEjectionPercent: 50}
                """
            try await MeshHarness("breaker", files: Self.files()).run { mesh in
                let apps = try await Self.start(mesh, versions: [1])
                apps[0].setBehaviour { _, _ in .init(body: "web-v1\n", delay: .milliseconds(200)) }
                let without = await Self.send(20, parallel: 10)
                #expect(without == ["web-v1": 20], "no 503 without the rule: \(without)")

                try mesh.writeConfig("dr.yaml", breaker)
                let client = try #require(mesh.envoys.first { $0.name == "client" })
                try await Eventually.wait(timeout: .seconds(5), what: "the circuit breaker to reach the client") {
                    (try? await client.admin("/config_dump").body.contains("\"max_pending_requests\": 1")) ?? false
                }
                let overflowed = OverflowCounter()
                let with = await withTaskGroup(of: Int.self) { group in
                    for _ in 0..<20 {
                        group.addTask {
                            guard let response = try? await HTTPProbe.request(Self.egress, authority: "web") else { return -1 }
                            if response.headers["x-envoy-overloaded"] == "true" { overflowed.add() }
                            return response.status
                        }
                    }
                    var statuses: [Int: Int] = [:]
                    for await status in group { statuses[status, default: 0] += 1 }
                    return statuses
                }
                #expect((with[503] ?? 0) > 0, "some requests overflow: \(with)")
                #expect(overflowed.value == with[503], "every 503 is an overflow (UO): \(overflowed.value) of \(with)")
                let stats = try await client.stats(filter: "outbound\\|8080\\|\\|web.traffic.svc.cluster.local.upstream_rq_pending_overflow")
                #expect((stats.values.first ?? 0) > 0, "\(stats)")
            }
        }

        @Test("outlier detection ejects the endpoint that answers 5xx until baseEjectionTime passes")
        func outlierDetection() async throws {
            let rule = """
                apiVersion: networking.istio.io/v1
                kind: DestinationRule
                metadata: {name: web, namespace: traffic}
                spec:
                  host: web
                  trafficPolicy:
                    loadBalancer: {simple: ROUND_ROBIN}
                    outlierDetection: {consecutive5xxErrors: 3, interval: 1s, baseEjectionTime: 4s, maxEjectionPercent: 100}
                """
            try await MeshHarness("outlier", files: Self.files(["dr.yaml": rule], web: [1, 2])).run { mesh in
                let apps = try await Self.start(mesh, versions: [1, 2])
                apps[0].setBehaviour { _, _ in .init(status: 500, body: "broken\n") }
                let first = await Self.send(20, parallel: 1)
                #expect((first["status 500"] ?? 0) <= 3, "ejected after 3 consecutive 5xx: \(first)")
                let healthy = await Self.send(30, parallel: 1)
                #expect(healthy == ["web-v2": 30], "only the healthy endpoint while ejected: \(healthy)")
                try await Task.sleep(for: .seconds(5))
                let back = await Self.send(10, parallel: 1)
                #expect((back["status 500"] ?? 0) > 0, "after baseEjectionTime the endpoint is tried again: \(back)")
            }
        }

        @Test("LEAST_REQUEST favours the less busy endpoint; consistent hashing sends a header value to the same endpoint every time")
        func loadBalancing() async throws {
            func rule(_ loadBalancer: String) -> String {
                """
                apiVersion: networking.istio.io/v1
                kind: DestinationRule
                metadata: {name: web, namespace: traffic}
                spec:
                  host: web
                  trafficPolicy:
                    loadBalancer: \(loadBalancer)
                """
            }
            try await MeshHarness("balancing", files: Self.files(["dr.yaml": rule("{simple: LEAST_REQUEST}")], web: [1, 2, 3])).run { mesh in
                let apps = try await Self.start(mesh, versions: [1, 2, 3])
                apps[0].setBehaviour { _, _ in .init(body: "web-v1\n", delay: .milliseconds(300)) }
                let busy = await Self.send(300, parallel: 12)
                let slowShare = Self.share(busy, "web-v1")
                #expect(slowShare < 0.2, "the slow endpoint gets few requests under LEAST_REQUEST: \(busy)")

                try mesh.writeConfig("dr.yaml", rule("{consistentHash: {httpHeaderName: x-user}}"))
                let client = try #require(mesh.envoys.first { $0.name == "client" })
                // The cluster (RING_HASH) and then the route (its hash policy on x-user) must both
                // have reached the client: routes follow clusters.
                try await Eventually.wait(timeout: .seconds(5), what: "ring hash and the route's hash policy to reach the client") {
                    let dump = (try? await client.admin("/config_dump").body) ?? ""
                    return dump.contains("RING_HASH") && dump.contains("\"header_name\": \"x-user\"")
                }
                apps[0].setBehaviour { _, _ in .init(body: "web-v1\n") }
                var reached: Set<String> = []
                for user in 0..<12 {
                    let tally = await Self.send(10, parallel: 4, headers: { _ in [("x-user", "user-\(user)")] })
                    #expect(tally.count == 1, "user-\(user) always reaches one endpoint: \(tally)")
                    reached.formUnion(tally.keys)
                }
                #expect(reached.count >= 2, "different users spread over endpoints: \(reached)")
            }
        }

        @Test("mirroring delivers a copy of each request to the mirror while the client gets the primary's answer")
        func mirroring() async throws {
            let routes = """
                apiVersion: networking.istio.io/v1
                kind: VirtualService
                metadata: {name: web, namespace: traffic}
                spec:
                  hosts: [web]
                  http:
                  - route: [{destination: {host: web, subset: v1}}]
                    mirror: {host: web, subset: v2}
                    mirrorPercentage: {value: 100}
                """
            try await MeshHarness("mirror", files: Self.files(["dr.yaml": Self.subsets, "vs.yaml": routes], web: [1, 2])).run { mesh in
                let apps = try await Self.start(mesh, versions: [1, 2])
                #expect(await Self.send(20, parallel: 4) == ["web-v1": 20])
                try await Eventually.wait(timeout: .seconds(3), what: "20 mirrored copies") { apps[1].requests.count == 20 }
                #expect(apps[1].requests.allSatisfy { $0.headers["host"]?.hasSuffix("-shadow") == true })
            }
        }

        @Test("TCP routes split connections 80/20 within ±5 points over 1,000 connections")
        func tcpWeights() async throws {
            let routes = """
                apiVersion: networking.istio.io/v1
                kind: DestinationRule
                metadata: {name: echo, namespace: traffic}
                spec:
                  host: echo
                  subsets: [{name: a, labels: {version: a}}, {name: b, labels: {version: b}}]
                ---
                apiVersion: networking.istio.io/v1
                kind: VirtualService
                metadata: {name: echo, namespace: traffic}
                spec:
                  hosts: [echo]
                  tcp:
                  - match: [{port: 9000}]
                    route:
                    - {destination: {host: echo, subset: a}, weight: 80}
                    - {destination: {host: echo, subset: b}, weight: 20}
                """
            try await MeshHarness("tcp", files: Self.files(["echo.yaml": routes])).run { mesh in
                let a = try await TestTCPApp.start(name: "echo-a", host: "127.25.2.6", port: 9000)
                let b = try await TestTCPApp.start(name: "echo-b", host: "127.25.2.7", port: 9000)
                defer { Task { await a.stop(); await b.stop() } }
                for name in ["echo-a", "echo-b", "client"] { try await mesh.startSidecar(Self.namespace, name) }
                let egress = HostPort(host: "127.25.1.2", port: 9000)
                let tally = await withTaskGroup(of: String.self) { group in
                    var counts: [String: Int] = [:]
                    for _ in 0..<10 {
                        for _ in 0..<100 { group.addTask { (try? await TestTCPApp.read(egress)) ?? "error" } }
                        for await line in group { counts[line, default: 0] += 1 }
                    }
                    return counts
                }
                #expect(tally["error"] == nil && tally.values.reduce(0, +) == 1000, "\(tally)")
                let shareA = Self.share(tally, "echo-a\n")
                #expect(abs(shareA - 0.8) <= 0.05, "\(tally)")
            }
        }

        @Test("DestinationRule connectionPool.tcp on a TCP port: idleTimeout closes an idle connection, maxConnectionDuration closes one even when the idle timeout is far off (Envoy's tcp_proxy)")
        func tcpTimeouts() async throws {
            try await MeshHarness("tcp-timeouts", files: Self.files()).run { mesh in
                let a = try await TestTCPApp.start(name: "echo-a", host: "127.25.2.6", port: 9000)
                let b = try await TestTCPApp.start(name: "echo-b", host: "127.25.2.7", port: 9000)
                defer { Task { await a.stop(); await b.stop() } }
                for name in ["echo-a", "echo-b"] { try await mesh.startSidecar(Self.namespace, name) }
                let client = try await mesh.startSidecar(Self.namespace, "client")
                let egress = HostPort(host: "127.25.1.2", port: 9000)
                #expect(try await TestTCPApp.read(egress) != "", "the TCP route works")
                #expect(try await TestTCPApp.idleLifetime(egress, limit: .seconds(3)) == nil, "without a DestinationRule an idle connection stays open (Envoy's default: 1 h)")

                for (tcp, field) in [("{idleTimeout: 1s}", "\"idle_timeout\": \"1s\""), ("{idleTimeout: 1h, maxConnectionDuration: 1s}", "\"max_downstream_connection_duration\": \"1s\"")] {
                    try mesh.writeConfig("dr.yaml", """
                        apiVersion: networking.istio.io/v1
                        kind: DestinationRule
                        metadata: {name: echo, namespace: \(Self.namespace)}
                        spec:
                          host: echo
                          trafficPolicy: {connectionPool: {tcp: \(tcp)}}
                        """)
                    try await Eventually.wait(timeout: .seconds(10), what: "the client's TCP proxy to take \(tcp)") {
                        (try? await client.admin("/config_dump?resource=dynamic_listeners").body.contains(field)) == true
                    }
                    let lifetime = try await TestTCPApp.idleLifetime(egress, limit: .seconds(4))
                    #expect(lifetime.map { $0 >= .milliseconds(800) && $0 < .seconds(3) } == true, "\(tcp): the connection closed after \(String(describing: lifetime))")
                }
            }
        }

        @Test("a MESH_EXTERNAL ServiceEntry (DNS) reaches an app outside the mesh")
        func meshExternal() async throws {
            let external = """
                apiVersion: networking.istio.io/v1
                kind: ServiceEntry
                metadata: {name: partner-api, namespace: traffic}
                spec:
                  hosts: [api.partner.example]
                  location: MESH_EXTERNAL
                  resolution: DNS
                  ports: [{number: 19095, name: http, protocol: HTTP}]
                  endpoints: [{address: localhost}]
                """
            try await MeshHarness("external", files: Self.files(["external.yaml": external])).run { mesh in
                try await mesh.startApp("partner", host: "127.0.0.1", port: 19095)
                try await mesh.startSidecar(Self.namespace, "client")
                let response = try await HTTPProbe.request(HostPort(host: "127.25.1.2", port: 19095), authority: "api.partner.example")
                #expect(response.status == 200 && response.body == "partner\n")
            }
        }
    }
}

/// Counts attempts per request id.
final class AttemptCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [String: Int] = [:]

    func record(_ id: String) -> Int {
        lock.lock()
        defer { lock.unlock() }
        values[id, default: 0] += 1
        return values[id]!
    }

    var counts: [String: Int] {
        lock.lock()
        defer { lock.unlock() }
        return values
    }

    func reset() {
        lock.lock()
        values = [:]
        lock.unlock()
    }
}

/// A thread-safe counter.
final class OverflowCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}
