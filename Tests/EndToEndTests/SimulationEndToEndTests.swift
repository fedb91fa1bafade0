@testable import ControlPlane
import EnvoyAPI
import Foundation
import MeshModel
import MeshTranslation
import Testing
import XDSTesting

extension EndToEnd {
    /// `meshctl simulate` against real Envoys: every case of a matrix (routing, subsets, faults,
    /// mTLS modes, ALLOW and DENY) is simulated by meshd and sent for real through the sidecars,
    /// and the two must agree (addresses 127.35.x.y).
    @Suite("Request simulation agrees with Envoy")
    struct SimulationTests {
        static let namespace = "sim"

        /// Apps answering with their name: web v1 and v2, api (STRICT mTLS, ALLOW and DENY
        /// policies), legacy (mTLS DISABLE, an ALLOW by source address); two callers, client and
        /// other, with service accounts of their own.
        static var files: [String: String] {
            var files: [String: String] = [
                "client.yaml": workloadYAML("client", namespace: namespace, block: 35, host: 1, labels: ["app": "client"], serviceAccount: "client"),
                "other.yaml": workloadYAML("other", namespace: namespace, block: 35, host: 2, labels: ["app": "other"], serviceAccount: "other"),
                "web-v1.yaml": workloadYAML("web-v1", namespace: namespace, block: 35, host: 3, labels: ["app": "web", "version": "v1"], serviceAccount: "web"),
                "web-v2.yaml": workloadYAML("web-v2", namespace: namespace, block: 35, host: 4, labels: ["app": "web", "version": "v2"], serviceAccount: "web"),
                "api.yaml": workloadYAML("api", namespace: namespace, block: 35, host: 5, labels: ["app": "api"], serviceAccount: "api"),
                "legacy.yaml": workloadYAML("legacy", namespace: namespace, block: 35, host: 6, labels: ["app": "legacy"], serviceAccount: "legacy"),
                "services.yaml": [
                    serviceYAML("web", namespace: namespace), serviceYAML("api", namespace: namespace), serviceYAML("legacy", namespace: namespace),
                    serviceYAML("api-plain", namespace: namespace, app: "api"), serviceYAML("legacy-mtls", namespace: namespace, app: "legacy"),
                ].joined(separator: "---\n"),
            ]
            files["policy.yaml"] = """
                apiVersion: security.istio.io/v1
                kind: PeerAuthentication
                metadata: {name: api-strict, namespace: sim}
                spec: {selector: {matchLabels: {app: api}}, mtls: {mode: STRICT}}
                ---
                apiVersion: security.istio.io/v1
                kind: PeerAuthentication
                metadata: {name: legacy-plain, namespace: sim}
                spec: {selector: {matchLabels: {app: legacy}}, mtls: {mode: DISABLE}}
                ---
                apiVersion: networking.istio.io/v1
                kind: DestinationRule
                metadata: {name: api-plain, namespace: sim}
                spec: {host: api-plain.sim.svc.cluster.local, trafficPolicy: {tls: {mode: DISABLE}}}
                ---
                apiVersion: networking.istio.io/v1
                kind: DestinationRule
                metadata: {name: legacy-mtls, namespace: sim}
                spec: {host: legacy-mtls.sim.svc.cluster.local, trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}}
                ---
                apiVersion: networking.istio.io/v1
                kind: DestinationRule
                metadata: {name: web, namespace: sim}
                spec:
                  host: web
                  subsets:
                  - {name: v1, labels: {version: v1}}
                  - {name: v2, labels: {version: v2}}
                ---
                apiVersion: security.istio.io/v1
                kind: AuthorizationPolicy
                metadata: {name: api-deny, namespace: sim}
                spec:
                  selector: {matchLabels: {app: api}}
                  action: DENY
                  rules: [{to: [{operation: {paths: ["/admin", "/admin/*"]}}]}]
                ---
                apiVersion: security.istio.io/v1
                kind: AuthorizationPolicy
                metadata: {name: api-allow, namespace: sim}
                spec:
                  selector: {matchLabels: {app: api}}
                  rules:
                  - from: [{source: {principals: ["cluster.local/ns/sim/sa/client"]}}]
                    to: [{operation: {methods: ["GET"], paths: ["/api/*"]}}]
                  - from: [{source: {namespaces: ["sim"]}}]
                    to: [{operation: {paths: ["/public"]}}]
                  - to: [{operation: {paths: ["/headers"]}}]
                    when: [{key: "request.headers[x-token]", values: ["let-me-in"]}]
                ---
                apiVersion: security.istio.io/v1
                kind: AuthorizationPolicy
                metadata: {name: legacy-allow, namespace: sim}
                spec:
                  selector: {matchLabels: {app: legacy}}
                  rules: [{from: [{source: {ipBlocks: ["127.35.0.1/32"]}}]}]
                ---
                apiVersion: networking.istio.io/v1
                kind: VirtualService
                metadata: {name: api, namespace: sim}
                spec:
                  hosts: [api]
                  http:
                  - match: [{uri: {prefix: /api}}, {uri: {prefix: /admin}}, {uri: {exact: /public}}, {uri: {exact: /headers}}]
                    route: [{destination: {host: api}}]
                ---
                apiVersion: networking.istio.io/v1
                kind: VirtualService
                metadata: {name: web, namespace: sim}
                spec:
                  hosts: [web]
                  http:
                  - match: [{headers: {x-version: {exact: v2}}}]
                    route: [{destination: {host: web, subset: v2}}]
                  - match: [{headers: {x-user: {prefix: beta-}}}]
                    route: [{destination: {host: web, subset: v2}}]
                  - match: [{uri: {prefix: /v2}}]
                    route: [{destination: {host: web, subset: v2}}]
                  - match: [{uri: {exact: /teapot}}]
                    fault: {abort: {httpStatus: 418, percentage: {value: 100}}}
                    route: [{destination: {host: web, subset: v1}}]
                  - match: [{uri: {prefix: /half-fault}}]
                    fault: {abort: {httpStatus: 503, percentage: {value: 50}}}
                    route: [{destination: {host: web, subset: v1}}]
                  - match: [{uri: {prefix: /split}}]
                    route:
                    - {destination: {host: web, subset: v1}, weight: 50}
                    - {destination: {host: web, subset: v2}, weight: 50}
                  - match: [{uri: {prefix: /moved}}]
                    redirect: {uri: /elsewhere}
                  - match: [{uri: {prefix: /direct}}]
                    directResponse: {status: 202, body: {string: "accepted"}}
                  - match: [{queryParams: {canary: {exact: "yes"}}}]
                    route: [{destination: {host: web, subset: v2}}]
                  - match: [{method: {exact: POST}}]
                    route: [{destination: {host: web, subset: v2}}]
                  - match: [{uri: {regex: "/items/[0-9]+"}}]
                    route: [{destination: {host: web, subset: v2}}]
                  - match: [{uri: {prefix: /slow}}]
                    fault: {delay: {fixedDelay: 0.1s, percentage: {value: 100}}}
                    route: [{destination: {host: web, subset: v1}}]
                  - route: [{destination: {host: web, subset: v1}}]
                """
            return files
        }

        /// One request of the matrix: from a caller to a URL.
        struct Case: CustomStringConvertible {
            var from: String
            var url: String
            var method = "GET"
            var headers: [String: String] = [:]
            var description: String { "\(from) \(method) \(url) \(headers)" }
        }

        static var cases: [Case] {
            var cases: [Case] = []
            let web = "http://web:8080"
            for (path, headers) in [
                ("/", [:]), ("/", ["x-version": "v2"]), ("/", ["x-version": "v1"]), ("/", ["x-user": "beta-tester"]), ("/", ["x-user": "alpha"]),
                ("/v2/page", [:]), ("/teapot", [:]), ("/teapot/more", [:]), ("/half-fault", [:]), ("/split", [:]), ("/moved", [:]),
                ("/direct", [:]), ("/?canary=yes", [:]), ("/?canary=no", [:]), ("/items/42", [:]), ("/items/abc", [:]), ("/slow", [:]),
            ] as [(String, [String: String])] {
                cases.append(Case(from: "client", url: web + path, headers: headers))
            }
            cases.append(Case(from: "client", url: web + "/", method: "POST"))
            cases.append(Case(from: "client", url: "http://web.sim:8080/"))
            cases.append(Case(from: "client", url: "http://web.sim.svc.cluster.local:8080/v2"))
            cases.append(Case(from: "other", url: web + "/"))
            cases.append(Case(from: "other", url: web + "/", headers: ["x-version": "v2"]))
            let api = "http://api:8080"
            for (path, method, headers) in [
                ("/api/items", "GET", [:]), ("/api/items", "POST", [:]), ("/api", "GET", [:]), ("/admin", "GET", [:]), ("/admin/users", "GET", [:]),
                ("/public", "GET", [:]), ("/headers", "GET", [:]), ("/headers", "GET", ["x-token": "let-me-in"]), ("/missing", "GET", [:]),
                ("/api/items?x=1", "GET", [:]),
            ] as [(String, String, [String: String])] {
                cases.append(Case(from: "client", url: api + path, method: method, headers: headers))
            }
            for (path, headers) in [("/api/items", [:]), ("/public", [:]), ("/headers", ["x-token": "let-me-in"]), ("/admin", [:])] as [(String, [String: String])] {
                cases.append(Case(from: "other", url: api + path, headers: headers))
            }
            cases.append(Case(from: "client", url: "http://api-plain:8080/api/items"))
            cases.append(Case(from: "client", url: "http://api-plain:8080/public"))
            cases.append(Case(from: "client", url: "http://legacy:8080/"))
            cases.append(Case(from: "other", url: "http://legacy:8080/"))
            cases.append(Case(from: "client", url: "http://legacy-mtls:8080/"))
            cases.append(Case(from: "other", url: "http://legacy-mtls:8080/", method: "POST"))
            return cases
        }

        /// What the caller sees, as the simulation names it: the app that answered (its body) or
        /// the status.
        static func label(_ response: HTTPProbe.Response) -> String {
            let body = response.body.trimmingCharacters(in: .whitespacesAndNewlines)
            return response.status == 200 && ["web-v1", "web-v2", "api", "legacy"].contains(body) ? "app \(body)" : "status \(response.status)"
        }

        static func label(_ outcome: RequestSimulation.Outcome) -> String {
            if let status = outcome.status { return "status \(status)" }
            if let served = outcome.servedBy { return "app \(served.split(separator: "/").last ?? "")" }
            return "unknown: \(outcome.reason)"
        }

        static func send(_ test: Case) async -> String {
            let target = URLComponents(string: test.url)!
            let egress = HostPort(host: test.from == "client" ? "127.35.1.1" : "127.35.1.2", port: 8080)
            let path = target.percentEncodedPath + (target.percentEncodedQuery.map { "?" + $0 } ?? "")
            do {
                let response = try await HTTPProbe.request(
                    egress, authority: "\(target.host!):\(target.port!)", path: path, method: test.method, headers: test.headers.map { ($0.key, $0.value) })
                return label(response)
            } catch {
                return "error \(error)"
            }
        }

        @Test("a matrix of 42 requests: meshd's simulation predicts what real Envoys do (routes, subsets, splits, faults, redirects, mTLS modes, ALLOW and DENY), and meshctl simulate prints the deciding rule")
        func agreement() async throws {
            let mesh = try await MeshHarness("simulate", files: Self.files)
            try await mesh.run { mesh in
                for (name, host) in [("web-v1", 3), ("web-v2", 4), ("api", 5), ("legacy", 6)] {
                    try await mesh.startApp(name, host: "127.35.2.\(host)", port: 8080)
                }
                for name in ["web-v1", "web-v2", "api", "legacy", "client", "other"] {
                    try await mesh.startSidecar(Self.namespace, name)
                }
                let cases = Self.cases
                #expect(cases.count >= 40)
                var disagreements: [String] = []
                var statuses: Set<String> = []
                for test in cases {
                    let body = try JSONEncoder().encode(RequestSimulation.Request(from: "\(Self.namespace)/\(test.from)", url: test.url, method: test.method, headers: test.headers))
                    let answer = try await mesh.admin("/v1/simulate", method: "POST", body: String(decoding: body, as: UTF8.self))
                    try #require(answer.status == 200, "\(test): \(answer.body)")
                    let simulation = try JSONDecoder().decode(RequestSimulation.self, from: Data(answer.body.utf8))
                    let predicted = Dictionary(simulation.outcomes.map { (Self.label($0), $0.probability) }, uniquingKeysWith: +)
                    statuses.formUnion(predicted.keys)
                    #expect(abs(predicted.values.reduce(0, +) - 1) < 1e-9, "\(test): probabilities \(predicted)")
                    if predicted.count == 1 {
                        // One outcome: the real request must give it (the sidecars may still be
                        // taking their first certificates, so a few seconds are allowed).
                        var seen = ""
                        let deadline = ContinuousClock.now + .seconds(5)
                        repeat {
                            seen = await Self.send(test)
                            if seen == predicted.keys.first { break }
                            try await Task.sleep(for: .milliseconds(200))
                        } while ContinuousClock.now < deadline
                        if seen != predicted.keys.first { disagreements.append("\(test): simulated \(predicted), Envoy gave \(seen)\n\(simulation.text)") }
                    } else {
                        // Several outcomes: 30 requests, each must be one of them, and each
                        // outcome of probability ≥ 25% must be seen.
                        var seen: [String: Int] = [:]
                        for _ in 0..<30 { seen[await Self.send(test), default: 0] += 1 }
                        let unexpected = Set(seen.keys).subtracting(predicted.keys)
                        let missing = predicted.filter { $0.value >= 0.25 && seen[$0.key] == nil }.keys
                        if !unexpected.isEmpty || !missing.isEmpty { disagreements.append("\(test): simulated \(predicted), Envoy gave \(seen)\n\(simulation.text)") }
                    }
                }
                #expect(disagreements.isEmpty, "\(disagreements.count) of \(cases.count) disagree:\n\(disagreements.joined(separator: "\n"))")
                // The matrix reaches every kind of end.
                for expected in ["app web-v1", "app web-v2", "app api", "app legacy", "status 403", "status 503", "status 404", "status 418", "status 301", "status 202"] {
                    #expect(statuses.contains(expected), "no case ends with \(expected): \(statuses.sorted())")
                }

                // meshctl simulate names the rule that decided.
                let server = ["--server", "http://\(mesh.adminAddress)", "--data-dir", mesh.controlPlane.options.dataDirectory]
                let denied = try await meshctl(["simulate", "--from", "sim/client", "--to", "http://api:8080/admin"] + server, in: mesh.directory)
                #expect(denied.status == 0, "\(denied.output)")
                #expect(denied.output.contains("DENY: ns[sim]-policy[api-deny]-rule[0] matches"), "\(denied.output)")
                #expect(denied.output.contains("100.00%  status 403: denied by a DENY rule"), "\(denied.output)")
                let split = try await meshctl(["simulate", "--from", "sim/client", "--to", "http://web:8080/split", "-H", "x-user: alpha", "--json"] + server, in: mesh.directory)
                let decoded = try JSONDecoder().decode(RequestSimulation.self, from: Data(split.output.utf8))
                #expect(decoded.outcomes.map { "\($0.servedBy ?? "-") \($0.probability)" }.sorted() == ["sim/web-v1 0.5", "sim/web-v2 0.5"], "\(split.output)")
                let unknown = try await meshctl(["simulate", "--from", "sim/nobody", "--to", "http://web:8080/"] + server, in: mesh.directory)
                #expect(unknown.status != 0 && unknown.output.contains("no workload sim/nobody"), "\(unknown.output)")
            }
        }

        @Test("sidecar suggest from real load reports: after client called only web, the Sidecar imports web (requests seen), api and api-plain (an ALLOW policy of their workload names client) and istio-system; in client's config file, the client's Envoy drops the clusters printed and still reaches web")
        func sidecarSuggest() async throws {
            let mesh = try await MeshHarness("suggest", files: Self.files, configure: { $0.trafficReportInterval = .seconds(1) })
            try await mesh.run { mesh in
                try await mesh.startApp("web-v1", host: "127.35.2.3", port: 8080)
                try await mesh.startSidecar(Self.namespace, "web-v1")
                let client = try await mesh.startSidecar(Self.namespace, "client")
                // Envoy counts a cluster's requests from the first report period after the
                // cluster arrived, so the client keeps calling until a report names web.
                var report: SidecarSuggestion.Report? = nil
                try await Eventually.wait(timeout: .seconds(15), interval: .milliseconds(200), what: "client's load report naming web") {
                    #expect(await Self.send(Case(from: "client", url: "http://web:8080/")) == "app web-v1")
                    let answer = try await mesh.admin("/v1/workloads/sim/client/sidecar-suggestion")
                    report = try? JSONDecoder().decode(SidecarSuggestion.Report.self, from: Data(answer.body.utf8))
                    return report?.hosts.contains { $0.reason == "requests seen" } ?? false
                }
                let suggestion = try #require(report)
                #expect(suggestion.hosts.map(\.host) == ["istio-system/*", "sim/api-plain.sim.svc.cluster.local", "sim/api.sim.svc.cluster.local", "sim/web.sim.svc.cluster.local"], "\(suggestion.hosts)")
                #expect(suggestion.hosts.first { $0.host == "sim/web.sim.svc.cluster.local" }?.reason == "requests seen")
                #expect(suggestion.hosts.first { $0.host == "sim/api.sim.svc.cluster.local" }?.reason == "allowed by AuthorizationPolicy sim/api-allow")
                #expect(suggestion.observed.keys.sorted() == ["outbound|8080|v1|web.sim.svc.cluster.local"], "only web was called: \(suggestion.observed)")
                #expect(suggestion.after.clusters < suggestion.before.clusters && suggestion.after.bytes < suggestion.before.bytes)

                // meshctl prints it with the sizes; applied, the Envoy holds the clusters printed.
                let server = ["--server", "http://\(mesh.adminAddress)", "--data-dir", mesh.controlPlane.options.dataDirectory]
                let printed = try await meshctl(["sidecar", "suggest", "sim/client"] + server, in: mesh.directory)
                #expect(printed.status == 0, "\(printed.output)")
                #expect(printed.output.contains("\(suggestion.after.bytes) bytes with this Sidecar"), "\(printed.output)")
                // client's Sidecar comes from the config directory: the suggestion replaces it there.
                let before = try await client.stats(filter: "cluster_manager.active_clusters")["cluster_manager.active_clusters"] ?? 0
                let entry = workloadYAML("client", namespace: Self.namespace, block: 35, host: 1, labels: ["app": "client"], serviceAccount: "client").components(separatedBy: "---")[0]
                try mesh.writeConfig("client.yaml", entry + "---\n" + printed.output)
                try await Eventually.wait(timeout: .seconds(15), what: "the client's Envoy dropping \(suggestion.before.clusters - suggestion.after.clusters) clusters") {
                    let now = try await client.stats(filter: "cluster_manager.active_clusters")["cluster_manager.active_clusters"] ?? 0
                    return now == before - (suggestion.before.clusters - suggestion.after.clusters)
                }
                #expect(await Self.send(Case(from: "client", url: "http://web:8080/")) == "app web-v1")
                let again = try JSONDecoder().decode(SidecarSuggestion.Report.self, from: Data(try await mesh.admin("/v1/workloads/sim/client/sidecar-suggestion").body.utf8))
                #expect(again.before == suggestion.after, "the configuration is now the size printed")
                #expect(try await mesh.envoyHealthProblems().isEmpty)
            }
        }
    }
}

@Suite("Traffic ledger: load reports kept per workload")
struct TrafficLedgerTests {
    static func stats(_ cluster: String, issued: UInt64, success: UInt64 = 0) -> Envoy_Config_Endpoint_V3_ClusterStats {
        var locality = Envoy_Config_Endpoint_V3_UpstreamLocalityStats()
        locality.totalIssuedRequests = issued
        locality.totalSuccessfulRequests = success
        var stats = Envoy_Config_Endpoint_V3_ClusterStats()
        stats.clusterName = cluster
        stats.upstreamLocalityStats = [locality]
        return stats
    }

    @Test("reports add up per workload and cluster; clusters without requests are not kept; a stream naming too many clusters cannot grow the ledger without bound")
    func ledger() {
        let ledger = TrafficLedger()
        ledger.record(workload: "sim/client", [Self.stats("outbound|8080||web", issued: 3), Self.stats("outbound|8080||api", issued: 0)])
        ledger.record(workload: "sim/client", [Self.stats("outbound|8080||web", issued: 0, success: 2)])
        #expect(ledger.usage(workload: "sim/client") == ["outbound|8080||web": 5])
        #expect(ledger.usage(workload: "sim/other").isEmpty)
        let many = (0...TrafficLedger.maximumClustersPerWorkload).map { Self.stats("c\($0)", issued: 1) }
        #expect(ledger.record(workload: "sim/noisy", many) == 1)
        #expect(ledger.usage(workload: "sim/noisy").count == TrafficLedger.maximumClustersPerWorkload)
        #expect(ledger.record(workload: "sim/noisy", [Self.stats("c0", issued: 1)]) == 0, "known clusters still count")
        #expect(ledger.usage(workload: "sim/noisy")["c0"] == 2)
    }
}
