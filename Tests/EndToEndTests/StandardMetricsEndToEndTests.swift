import ControlPlane
import EnvoyAPI
import Foundation
import GRPCCore
import MeshModel
import MeshTranslation
import SwiftProtobuf
import Testing
import XDSTesting

extension EndToEnd {
    /// Istio's standard metrics (`istio_requests_total` and the rest) counted by meshd from the
    /// sidecars' access log streams, scraped from meshd by a real Prometheus. Addresses:
    /// 127.39.0.x sidecars, 127.39.1.x egress binds, 127.39.2.x apps, 127.39.9.x Prometheus.
    @Suite("Istio's standard metrics: exact counts and labels in a real Prometheus")
    struct StandardMetricsTests {
        static let namespace = "tai"
        static let coordinator = "coordinator.tai.svc.cluster.local"
        static let scorer = "scorer.tai.svc.cluster.local"
        static let ledger = "ledger.tai.svc.cluster.local"
        static let egress = "127.39.1.2"
        static let helperDirectory = TestTools.packageRoot + "/Tests/Conformance"
        static let helper = helperDirectory + "/protocol_peers.py"

        static var files: [String: String] {
            [
                "services.yaml": [
                    serviceYAML("coordinator", namespace: namespace),
                    serviceYAML("scorer", namespace: namespace, port: 9090, portName: "grpc", protocol: "GRPC"),
                    serviceYAML("ledger", namespace: namespace, port: 7000, portName: "tcp", protocol: "TCP"),
                ].joined(separator: "---\n"),
                "governor.yaml": workloadYAML("governor", namespace: namespace, block: 39, host: 2, labels: ["app": "governor", "version": "v1"], serviceAccount: "governor"),
                "coordinator-v1.yaml": workloadYAML("coordinator-v1", namespace: namespace, block: 39, host: 3, labels: ["app": "coordinator", "version": "v1"], serviceAccount: "coordinator"),
                "coordinator-v2.yaml": workloadYAML("coordinator-v2", namespace: namespace, block: 39, host: 4, labels: ["app": "coordinator", "version": "v2"], serviceAccount: "coordinator"),
                "scorer.yaml": workloadYAML("scorer", namespace: namespace, block: 39, host: 5, labels: ["app": "scorer"], serviceAccount: "scorer", ports: [9090], protocol: "GRPC"),
                "ledger.yaml": workloadYAML("ledger", namespace: namespace, block: 39, host: 6, labels: ["app": "ledger"], serviceAccount: "ledger", ports: [7000], protocol: "TCP"),
                "auditor.yaml": workloadYAML("auditor", namespace: namespace, block: 39, host: 7, labels: ["app": "auditor"], serviceAccount: "auditor"),
                "mtls.yaml": """
                    apiVersion: security.istio.io/v1
                    kind: PeerAuthentication
                    metadata: {name: default, namespace: \(namespace)}
                    spec: {mtls: {mode: STRICT}}
                    """,
                "coordinator-routing.yaml": """
                    apiVersion: networking.istio.io/v1
                    kind: DestinationRule
                    metadata: {name: coordinator, namespace: \(namespace)}
                    spec:
                      host: \(coordinator)
                      subsets:
                      - {name: v1, labels: {version: v1}}
                      - {name: v2, labels: {version: v2}}
                    ---
                    apiVersion: networking.istio.io/v1
                    kind: VirtualService
                    metadata: {name: coordinator, namespace: \(namespace)}
                    spec:
                      hosts: [\(coordinator)]
                      http:
                      - fault: {abort: {percentage: {value: 5}, httpStatus: 503}}
                        route:
                        - {destination: {host: \(coordinator), subset: v1}, weight: 90}
                        - {destination: {host: \(coordinator), subset: v2}, weight: 10}
                    """,
            ]
        }

        /// A running Prometheus scraping meshd's `/metrics` with a reader token.
        struct Prometheus {
            let process: ProcessHandle
            let listen: HostPort

            static func start(_ mesh: MeshHarness) async throws -> Prometheus {
                let minted = try await mesh.admin("/v1/tokens", method: "POST", body: #"{"role": "reader"}"#)
                let reader = try #require((try JSONSerialization.jsonObject(with: Data(minted.body.utf8)) as? [String: Any])?["token"] as? String)
                let directory = mesh.directory + "/prometheus"
                try FileManager.default.createDirectory(atPath: directory + "/data", withIntermediateDirectories: true)
                try reader.write(toFile: directory + "/token", atomically: true, encoding: .utf8)
                try """
                    global: {scrape_interval: 1s, evaluation_interval: 1s}
                    rule_files: ["\(TestTools.packageRoot)/examples/prometheus/istio-standard-rules.yaml"]
                    scrape_configs:
                    - job_name: meshd
                      metrics_path: /metrics
                      authorization: {credentials_file: \(directory)/token}
                      static_configs: [{targets: ["\(mesh.adminAddress)"]}]
                    """.write(toFile: directory + "/prometheus.yml", atomically: true, encoding: .utf8)
                let listen = HostPort(host: "127.39.9.2", port: 9090)
                let process = try ProcessHandle(
                    executable: try TestTools.prometheus(),
                    arguments: ["--config.file", directory + "/prometheus.yml", "--storage.tsdb.path", directory + "/data", "--web.listen-address", "\(listen)"],
                    logPath: directory + "/prometheus.log")
                return Prometheus(process: process, listen: listen)
            }

            /// An instant query's samples: labels and value.
            func query(_ expression: String) async -> [(labels: [String: String], value: Double)] {
                guard let response = try? await HTTPProbe.request(
                    listen, authority: "\(listen)", path: "/api/v1/query?query=" + (expression.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")),
                    let object = try? JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any],
                    let result = (object["data"] as? [String: Any])?["result"] as? [[String: Any]]
                else { return [] }
                return result.map { sample in
                    ((sample["metric"] as? [String: String]) ?? [:], Double((sample["value"] as? [Any])?.last as? String ?? "") ?? .nan)
                }
            }

            /// Whether Prometheus accepts `expression`: nil, or its error.
            func problem(_ expression: String) async -> String? {
                guard let response = try? await HTTPProbe.request(
                    listen, authority: "\(listen)", path: "/api/v1/query?query=" + (expression.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")),
                    let object = try? JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any]
                else { return "no answer" }
                return object["status"] as? String == "success" ? nil : "\(object["errorType"] ?? "") \(object["error"] ?? "")"
            }

            /// The single value of `expression` (0 when it has no sample).
            func value(_ expression: String) async -> Double {
                await query(expression).first?.value ?? 0
            }
        }

        @Test("300 requests split 90/10 with 5 % aborted, gRPC calls with OK and NOT_FOUND, one TCP connection of known size: exact counts and Istio's labels from both reporters, consistent histograms, Istio's dashboard queries")
        func exactCounts() async throws {
            try await MeshHarness("istio-metrics", files: Self.files).run { mesh in
                for (name, host) in [("coordinator-v1", 3), ("coordinator-v2", 4)] {
                    let app = try await mesh.startApp(name, host: "127.39.2.\(host)", port: 8080)
                    app.setBehaviour { _, _ in TestHTTPApp.Reply(body: "\(name)\n") }
                }
                let scorer = try ProcessHandle(
                    executable: try TestTools.python(), arguments: ["-u", Self.helper, "grpc-server", "127.39.2.5", "9090", "scorer"],
                    logPath: "\(mesh.directory)/scorer.log")
                defer { scorer.signal(SIGKILL) }
                let ledger = try await TestTCPApp.start(name: "ledger", host: "127.39.2.6", port: 7000)
                defer { Task { await ledger.stop() } }
                for name in ["governor", "coordinator-v1", "coordinator-v2", "scorer", "ledger"] { try await mesh.startSidecar(Self.namespace, name) }
                let prometheus = try await Prometheus.start(mesh)
                defer { Task { await prometheus.process.killNow() } }

                // HTTP: 300 requests, what each got counted as the client saw it.
                let tally = await tallyAnswers(300, parallel: 4, to: HostPort(host: Self.egress, port: 8080), authority: "coordinator")
                let v1 = tally["coordinator-v1"] ?? 0, v2 = tally["coordinator-v2"] ?? 0, aborted = tally["status 503"] ?? 0
                #expect(v1 + v2 + aborted == 300, "every request answered by v1, v2 or the fault: \(tally)")
                #expect(v2 > 5 && v1 > 200 && aborted > 0, "the split and the fault happened: \(tally)")

                // gRPC: two OK calls and one NOT_FOUND (5).
                try await Eventually.wait(timeout: .seconds(20), what: "scorer listening (\(mesh.directory)/scorer.log)") { scorer.log.contains("listening") }
                var codes: [String] = []
                for payload in ["ok", "ok", "status:5"] {
                    let log = "\(mesh.directory)/call-\(codes.count).log"
                    let call = try ProcessHandle(executable: try TestTools.python(), arguments: [Self.helper, "grpc-call", "\(Self.egress):9090", Self.scorer, "Status", payload], logPath: log)
                    #expect(await call.waitForExit(timeout: .seconds(30)))
                    codes.append(call.log.trimmingCharacters(in: .whitespacesAndNewlines))
                }
                let outcomes: [String] = codes.map { code in String(code.prefix { $0 != " " }) }
                #expect(outcomes == ["code=OK", "code=OK", "code=NOT_FOUND"], "\(codes)")

                // TCP: one connection sending 1,000 bytes; the app answers "ledger\n" (7 bytes).
                let payload = String(repeating: "x", count: 999) + "\n"
                let answer = try await TestTCPApp.read(HostPort(host: Self.egress, port: 7000), timeout: .seconds(5), greeting: payload)
                #expect(answer == "ledger\n")

                let coordinator = #"destination_service="\#(Self.coordinator)""#
                let source = #"reporter="source""#, destination = #"reporter="destination""#
                // Envoy flushes entries every second; Prometheus scrapes every second.
                var last = ""
                do {
                try await Eventually.wait(timeout: .seconds(40), interval: .seconds(1), what: "every request counted by both reporters (log \(mesh.directory)/prometheus/prometheus.log)") {
                    guard prometheus.process.isRunning else { throw HTTPProbe.Failure(description: "prometheus exited: \(prometheus.process.log.suffix(1000))") }
                    let sourceTotal = await prometheus.value("sum(istio_requests_total{\(source), \(coordinator)})")
                    let destinationTotal = await prometheus.value("sum(istio_requests_total{\(destination), \(coordinator)})")
                    let tcp = await prometheus.value(#"sum(istio_tcp_connections_closed_total{destination_service="\#(Self.ledger)"})"#)
                    let grpc = await prometheus.value(#"sum(istio_requests_total{destination_service="\#(Self.scorer)"})"#)
                    last = "source \(sourceTotal), destination \(destinationTotal), TCP closed \(tcp), gRPC \(grpc)"
                    return sourceTotal == 300 && destinationTotal == Double(v1 + v2) && tcp == 2 && grpc == 6
                }
                } catch {
                    let metrics = (try? await mesh.admin("/metrics").body) ?? ""
                    Issue.record("\(error): last \(last); meshd's Istio series: \(metrics.split(separator: "\n").filter { $0.hasPrefix("istio_requests_total") || $0.hasPrefix("istio_tcp") }.joined(separator: "\n"))")
                    throw error
                }

                // The source reporter: the split as it happened and the aborts, with Istio's labels.
                let bySource = await prometheus.query("istio_requests_total{\(source), \(coordinator)}")
                func count(_ samples: [(labels: [String: String], value: Double)], _ match: [String: String]) -> Double {
                    samples.filter { sample in match.allSatisfy { sample.labels[$0.key] == $0.value } }.reduce(0) { $0 + $1.value }
                }
                let common = [
                    "source_workload": "governor", "source_workload_namespace": "tai", "source_app": "governor", "source_version": "v1",
                    "source_canonical_service": "governor", "destination_service_name": "coordinator", "destination_service_namespace": "tai",
                    "request_protocol": "http", "connection_security_policy": "unknown",
                ]
                #expect(count(bySource, common.merging(["destination_workload": "coordinator-v1", "destination_version": "v1", "response_code": "200", "response_flags": "-"]) { $1 }) == Double(v1), "\(bySource)")
                #expect(count(bySource, common.merging(["destination_workload": "coordinator-v2", "destination_version": "v2", "response_code": "200", "response_flags": "-"]) { $1 }) == Double(v2), "\(bySource)")
                #expect(count(bySource, common.merging(["destination_workload": "unknown", "response_code": "503", "response_flags": "FI"]) { $1 }) == Double(aborted), "\(bySource)")
                #expect(count(bySource, [
                    "source_principal": "spiffe://cluster.local/ns/tai/sa/governor", "destination_principal": "spiffe://cluster.local/ns/tai/sa/coordinator",
                    "destination_workload_namespace": "tai", "destination_app": "coordinator", "destination_canonical_service": "coordinator",
                ]) == Double(v1 + v2), "mTLS principals on every forwarded request: \(bySource)")

                // The destination reporter: mTLS, the caller known by its certificate and address.
                let byDestination = await prometheus.query("istio_requests_total{\(destination), \(coordinator)}")
                let seen = [
                    "source_workload": "governor", "source_principal": "spiffe://cluster.local/ns/tai/sa/governor",
                    "destination_principal": "spiffe://cluster.local/ns/tai/sa/coordinator", "connection_security_policy": "mutual_tls",
                    "response_code": "200", "response_flags": "-", "request_protocol": "http",
                ]
                #expect(count(byDestination, seen.merging(["destination_workload": "coordinator-v1", "destination_version": "v1"]) { $1 }) == Double(v1), "\(byDestination)")
                #expect(count(byDestination, seen.merging(["destination_workload": "coordinator-v2", "destination_version": "v2"]) { $1 }) == Double(v2), "\(byDestination)")

                // Histograms agree with the counts; sizes with what was sent.
                for name in ["istio_request_duration_milliseconds", "istio_request_bytes", "istio_response_bytes"] {
                    #expect(await prometheus.value("sum(\(name)_count{\(source), \(coordinator)})") == 300, "\(name)_count")
                    #expect(await prometheus.value(#"sum(\#(name)_bucket{\#(source), \#(coordinator), le="+Inf"})"#) == 300, "\(name)_bucket le=+Inf")
                }
                let bodyBytes = Double(v1 * "coordinator-v1\n".utf8.count + v2 * "coordinator-v2\n".utf8.count)
                let responseBytes = await prometheus.value(#"sum(istio_response_bytes_sum{\#(destination), \#(coordinator)})"#)
                #expect(responseBytes > bodyBytes && responseBytes < bodyBytes + Double(v1 + v2) * 400, "response bytes are the bodies plus headers: \(responseBytes) for \(bodyBytes) of bodies")
                // gRPC: HTTP 200 with the gRPC status, from both reporters.
                let grpc = await prometheus.query(#"istio_requests_total{destination_service="\#(Self.scorer)"}"#)
                for reporter in ["source", "destination"] {
                    #expect(count(grpc, ["reporter": reporter, "request_protocol": "grpc", "response_code": "200", "grpc_response_status": "0", "destination_workload": "scorer"]) == 2, "\(grpc)")
                    #expect(count(grpc, ["reporter": reporter, "request_protocol": "grpc", "response_code": "200", "grpc_response_status": "5", "destination_workload": "scorer"]) == 1, "\(grpc)")
                }

                // TCP: one connection, 1,000 bytes in, 7 out, from both reporters.
                let ledgerLabels = #"destination_service="\#(Self.ledger)", request_protocol="tcp", source_workload="governor", destination_workload="ledger""#
                for reporter in ["source", "destination"] {
                    let selector = #"reporter="\#(reporter)", \#(ledgerLabels)"#
                    #expect(await prometheus.value("sum(istio_tcp_connections_opened_total{\(selector)})") == 1, "\(reporter) opened")
                    #expect(await prometheus.value("sum(istio_tcp_connections_closed_total{\(selector)})") == 1, "\(reporter) closed")
                    #expect(await prometheus.value("sum(istio_tcp_received_bytes_total{\(selector)})") == 1000, "\(reporter) received")
                    #expect(await prometheus.value("sum(istio_tcp_sent_bytes_total{\(selector)})") == 7, "\(reporter) sent")
                }
                #expect(await prometheus.value(#"sum(istio_tcp_connections_opened_total{reporter="destination", \#(ledgerLabels), connection_security_policy="mutual_tls"})"#) == 1)

                // Queries of Istio's published dashboards and the ADR's alert read rates, which
                // need a series to grow between two scrapes: a second batch, paced over seconds.
                let second = await tallyAnswers(300, parallel: 1, to: HostPort(host: Self.egress, port: 8080), authority: "coordinator")
                let total = Double(600), failed = Double(aborted + (second["status 503"] ?? 0))
                try await Eventually.wait(timeout: .seconds(20), interval: .seconds(1), what: "the second batch counted") {
                    await prometheus.value("sum(istio_requests_total{\(source), \(coordinator)})") == total
                }
                try await Task.sleep(for: .seconds(2))
                let p99 = await prometheus.value(#"histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{\#(source), \#(coordinator)}[5m])) by (le))"#)
                #expect(p99 > 0 && p99 < 5000, "p99 request duration in milliseconds: \(p99)")

                // Queries of Istio's published dashboards and the ADR's alert.
                let workloadInbound = await prometheus.query(#"round(sum(increase(istio_requests_total{connection_security_policy="mutual_tls", destination_workload_namespace="tai", destination_workload=~"coordinator-.*", reporter="destination"}[10m])) by (source_workload, source_workload_namespace, destination_workload), 0.001)"#)
                #expect(workloadInbound.count == 2 && workloadInbound.allSatisfy { $0.labels["source_workload"] == "governor" }, "workload dashboard, inbound by source: \(workloadInbound)")
                let serviceInbound = await prometheus.query(#"round(sum(irate(istio_requests_total{connection_security_policy="mutual_tls", destination_service=~"\#(Self.coordinator)", reporter=~"destination", source_workload=~".*", source_workload_namespace=~".*"}[5m])) by (source_workload, source_workload_namespace, response_code), 0.001)"#)
                #expect(serviceInbound.contains { $0.labels["source_workload"] == "governor" && $0.labels["response_code"] == "200" }, "service dashboard, incoming requests by source and code: \(serviceInbound)")
                let serviceDuration = await prometheus.value(#"histogram_quantile(0.50, sum(rate(istio_request_duration_milliseconds_bucket{reporter=~"source", destination_service=~"\#(Self.coordinator)"}[5m])) by (le))"#)
                #expect(serviceDuration > 0 && serviceDuration < 1000, "service dashboard, client request duration P50 (ms): \(serviceDuration)")
                let successRatio = await prometheus.value(#"sum(increase(istio_requests_total{reporter="source", \#(coordinator), response_code!~"5.*"}[10m])) / sum(increase(istio_requests_total{reporter="source", \#(coordinator)}[10m]))"#)
                #expect(abs(successRatio - (1 - failed / total)) < 0.03, "mesh dashboard success rate \(successRatio), observed \(1 - failed / total)")
                let errorRatio = await prometheus.value(#"destination_service:istio_error_ratio:rate1m{\#(coordinator)}"#)
                #expect(errorRatio > 0 && abs(errorRatio - failed / total) < 0.04, "the ADR's alert's ratio \(errorRatio), observed \(failed / total)")
                let serviceGraph = await prometheus.query(#"sum(increase(istio_requests_total{reporter="source"}[10m])) by (source_workload, destination_service)"#)
                #expect(Set(serviceGraph.map { $0.labels["destination_service"] ?? "" }) == [Self.coordinator, Self.scorer], "Kiali's edges: \(serviceGraph)")

                // The shipped Grafana dashboards: every query is valid PromQL over these series
                // (Grafana's variables as "All"), and the main panels show this traffic.
                var expressions: [String: String] = [:]
                for file in ["meshd-mesh.json", "meshd-control-plane.json"] {
                    let data = try Data(contentsOf: URL(fileURLWithPath: TestTools.packageRoot + "/examples/grafana/" + file))
                    let dashboard = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
                    for panel in dashboard["panels"] as? [[String: Any]] ?? [] {
                        for (index, target) in (panel["targets"] as? [[String: Any]] ?? []).enumerated() {
                            let expression = (target["expr"] as? String ?? "")
                                .replacingOccurrences(of: "$__rate_interval", with: "1m").replacingOccurrences(of: "$namespace", with: ".*")
                                .replacingOccurrences(of: "$service", with: ".*")
                            expressions["\(file): \(panel["title"] as? String ?? "") #\(index)"] = expression
                        }
                    }
                }
                #expect(expressions.count > 30)
                for (name, expression) in expressions.sorted(by: { $0.key < $1.key }) {
                    let problem = await prometheus.problem(expression)
                    #expect(problem == nil, "\(name): \(expression): \(problem ?? "")")
                }
                let volume = await prometheus.value(try #require(expressions["meshd-mesh.json: Request volume #0"]))
                #expect(volume > 0, "the mesh dashboard's request volume")
                let edges = await prometheus.query(try #require(expressions["meshd-mesh.json: Requests by source and destination workload #0"]))
                #expect(edges.contains { $0.labels["source_workload"] == "governor" && $0.labels["destination_workload"] == "coordinator-v1" }, "\(edges)")
                #expect(await prometheus.value(try #require(expressions["meshd-control-plane.json: Connected proxies #0"])) == 5)
                #expect(!(await prometheus.query(try #require(expressions["meshd-control-plane.json: Certificate expiry #0"]))).isEmpty)
                await prometheus.process.killNow()

                try await Self.checkGraphPage(mesh, v1: v1 + (second["coordinator-v1"] ?? 0), v2: v2 + (second["coordinator-v2"] ?? 0), failed: Int(failed))
            }
        }

        /// The service graph page in headless Chromium after the traffic above (600 requests to
        /// coordinator, `failed` of them aborted): nodes, edges with their rates and colours,
        /// mTLS, the canary split, a workload whose proxy never connected, an edge's series;
        /// nothing without signing in; markup in a reported host stays text.
        static func checkGraphPage(_ mesh: MeshHarness, v1: Int, v2: Int, failed: Int) async throws {
            let minted = try await mesh.admin("/v1/tokens", method: "POST", body: #"{"role": "reader"}"#)
            let reader = try #require((try JSONSerialization.jsonObject(with: Data(minted.body.utf8)) as? [String: Any])?["token"] as? String)
            let coordinatorEdge = "workload:tai/governor>service:\(Self.coordinator)"
            let screens = TestTools.packageRoot + "/test-artifacts/service-graph"
            let seen = try await Self.browse(mesh, token: reader, screens: screens, edge: coordinatorEdge)

            let anonymous = try #require(seen["anonymous"] as? [String: Any])
            #expect(anonymous["loginForm"] as? Bool == true && anonymous["graph"] as? Bool == false, "\(anonymous)")
            #expect((anonymous["edges"] as? [Any])?.isEmpty == true && anonymous["api"] as? Int == 401)

            #expect(seen["edgesShown"] as? Bool == true)
            let page = try #require(seen["signedIn"] as? [String: Any])
            let nodes = page["nodes"] as? [[String: Any]] ?? []
            let edges = page["edges"] as? [[String: Any]] ?? []
            func node(_ id: String) -> [String: Any]? { nodes.first { $0["id"] as? String == id } }
            func edge(_ id: String) -> [String: Any]? { edges.first { $0["id"] as? String == id } }
            for workload in ["governor", "coordinator-v1", "coordinator-v2", "scorer", "ledger"] {
                #expect(node("workload:tai/\(workload)")?["sync"] as? String == "SYNCED", "\(workload): \(node("workload:tai/\(workload)") ?? [:])")
            }
            #expect(node("workload:tai/auditor")?["notSynced"] as? Bool == true, "a proxy that never connected is marked")
            #expect(node("service:\(Self.coordinator)") != nil && (page["namespaces"] as? [String])?.contains("tai") == true)

            // governor → coordinator: every request (both batches, within the window), its error share, mTLS.
            let toCoordinator = try #require(edge(coordinatorEdge), "\(edges)")
            let errorRate = toCoordinator["errorRate"] as? Double ?? -1
            #expect(abs(errorRate - Double(failed) / 600) < 0.002, "error rate \(errorRate), observed \(Double(failed) / 600)")
            #expect((toCoordinator["rate"] as? Double ?? 0) > 0)
            #expect(toCoordinator["security"] as? String == "mutual_tls")
            let toV1 = try #require(edge("service:\(Self.coordinator)>workload:tai/coordinator-v1"), "\(edges)")
            #expect(toV1["errorRate"] as? Double == 0 && toV1["security"] as? String == "mutual_tls" && toV1["p99"] as? String != "–")
            let aborted = try #require(edge("service:\(Self.coordinator)>unknown"), "the aborted requests reached no workload: \(edges)")
            #expect(aborted["errorRate"] as? Double == 1)
            #expect(edge("service:\(Self.ledger)>workload:tai/ledger")?["protocol"] as? String == "tcp")
            #expect(edge("workload:tai/governor>service:\(Self.scorer)")?["protocol"] as? String == "grpc")
            // Colours: green without errors, red with only errors, in between for a few.
            func rgb(_ edge: [String: Any]?) -> [Int] {
                (edge?["color"] as? String ?? "").split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
            }
            let green = rgb(toV1), faulty = rgb(toCoordinator), red = rgb(aborted)
            #expect(green.count == 3 && green[1] > green[0] * 2, "no errors is green: \(green)")
            #expect(red.count == 3 && red[0] > red[1] * 2, "only errors is red: \(red)")
            #expect(faulty.count == 3 && faulty[0] > green[0] && faulty[0] < red[0], "a few errors lie between: \(faulty)")

            // The canary split as configured and as it happened.
            let splits = page["splits"] as? [[String: Any]] ?? []
            let v1Row = splits.first { $0["version"] as? String == "v1" }?["cells"] as? [String] ?? []
            #expect(v1Row.count == 5 && v1Row[3] == "90", "\(splits)")
            let observed = Double(v1Row.last ?? "") ?? -1
            #expect(abs(observed - Double(v1) / Double(v1 + v2) * 100) < 0.1, "observed v1 share \(observed)")

            let cookies = seen["cookies"] as? [[String: Any]] ?? []
            #expect(cookies.count == 1 && cookies.first?["httpOnly"] as? Bool == true && cookies.first?["sameSite"] as? String == "Strict", "\(cookies)")
            #expect(seen["cookieVisibleToScript"] as? Bool == false)
            #expect(seen["edgeShown"] as? Bool == true)
            let detail = seen["edgeDetail"] as? [String: Any] ?? [:]
            #expect((detail["rows"] as? Int ?? 0) >= 1 && (detail["title"] as? String)?.contains("governor") == true, "\(detail)")
            for shot in ["login.png", "graph.png", "edge.png"] {
                #expect(FileManager.default.fileExists(atPath: screens + "/" + shot), "screenshot \(shot)")
            }

            // A sidecar reports a passthrough request whose host is markup (any caller can send
            // such a Host): it is a node, shown as text, and runs nothing.
            let keys = try MetricsReportKeys(dataDirectory: mesh.controlPlane.options.dataDirectory)
            var message = Self.message(logName: MetricsReporting.logName(.source))
            message.httpLogs.logEntry[0].commonProperties.upstreamCluster = "PassthroughCluster"
            message.httpLogs.logEntry[0].request.authority = #"<img src=x onerror="window.__xss=true"><script>window.__xss=true</script>"#
            let markup = message
            try await mesh.security.withClient(mesh.xdsAddress) { client in
                var metadata = Metadata()
                metadata.addString(keys.key(for: .init(namespace: Self.namespace, name: "governor")), forKey: MetricsReporting.keyHeader)
                let request = StreamingClientRequest<Envoy_Service_Accesslog_V3_StreamAccessLogsMessage>(metadata: metadata) { writer in try await writer.write(markup) }
                _ = try await Envoy_Service_Accesslog_V3_AccessLogService.Client(wrapping: client).streamAccessLogs(request: request)
            }
            let injected = try #require(try await Self.browse(mesh, token: reader, screens: screens + "-markup", edge: nil)["signedIn"] as? [String: Any])
            let labels = (injected["nodes"] as? [[String: Any]] ?? []).compactMap { $0["label"] as? String }
            #expect(labels.contains { $0.hasPrefix("<img src=x") }, "the host is shown as text: \(labels)")
            #expect(injected["images"] as? Int == 0 && injected["xss"] as? Bool == false && injected["scripts"] as? Int == 1, "\(injected)")
        }

        /// Runs graph_page.py against meshd's page and returns what it saw.
        static func browse(_ mesh: MeshHarness, token: String, screens: String, edge: String?) async throws -> [String: Any] {
            let log = "\(mesh.directory)/graph-page-\(UUID().uuidString).log"
            let browser = try ProcessHandle(
                executable: try TestTools.python(),
                arguments: [Self.helperDirectory + "/graph_page.py", try TestTools.chromium(), "http://\(mesh.adminAddress)", token, screens] + (edge.map { [$0] } ?? []),
                logPath: log)
            #expect(await browser.waitForExit(timeout: .seconds(120)), "the browser run ended (\(log))")
            let output = try #require(browser.log.split(separator: "\n").last { $0.hasPrefix("{") }, "no result from the browser: \(browser.log.suffix(2000))")
            let seen = try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
            #expect(seen["error"] == nil, "the browser run: \(seen["error"] ?? "") at \(seen["location"] ?? "")")
            return seen
        }

        /// One access log message as governor's sidecar would send it: one request to coordinator-v1.
        static func message(logName: String) -> Envoy_Service_Accesslog_V3_StreamAccessLogsMessage {
            var message = Envoy_Service_Accesslog_V3_StreamAccessLogsMessage()
            message.identifier.node.id = NodeIdentity.nodeID(workload: .init(namespace: namespace, name: "governor"), address: "127.39.0.2")
            message.identifier.logName = logName
            var entry = Envoy_Data_Accesslog_V3_HTTPAccessLogEntry()
            entry.commonProperties.upstreamCluster = "outbound|8080|v1|\(coordinator)"
            var socket = Envoy_Config_Core_V3_SocketAddress()
            socket.address = "127.39.0.3"
            socket.portValue = 8080
            entry.commonProperties.upstreamRemoteAddress.socketAddress = socket
            entry.request.authority = "coordinator"
            entry.response.responseCode.value = 418
            message.httpLogs.logEntry = [entry]
            return message
        }

        @Test("an access log stream without its workload's report key, or naming no metrics log, is refused and counts nothing; with the key its entries count")
        func streamAuthentication() async throws {
            try await MeshHarness("istio-metrics-streams", files: Self.files).run { mesh in
                let keys = try MetricsReportKeys(dataDirectory: mesh.controlPlane.options.dataDirectory)
                let governor = ServiceRegistry.WorkloadID(namespace: Self.namespace, name: "governor")
                func send(key: String?, logName: String = MetricsReporting.logName(.source)) async -> RPCError.Code? {
                    do {
                        try await mesh.security.withClient(mesh.xdsAddress) { client in
                            var metadata = Metadata()
                            if let key { metadata.addString(key, forKey: MetricsReporting.keyHeader) }
                            let request = StreamingClientRequest<Envoy_Service_Accesslog_V3_StreamAccessLogsMessage>(metadata: metadata) { writer in
                                try await writer.write(Self.message(logName: logName))
                                try await writer.write(Self.message(logName: logName))
                            }
                            _ = try await Envoy_Service_Accesslog_V3_AccessLogService.Client(wrapping: client).streamAccessLogs(request: request)
                        }
                        return nil
                    } catch let error as RPCError {
                        return error.code
                    } catch {
                        Issue.record("unexpected \(error)")
                        return .unknown
                    }
                }
                func counted() -> [Substring] {
                    mesh.controlPlane.standardMetrics.prometheusText().split(separator: "\n").filter { $0.hasPrefix("istio_requests_total{") && $0.contains(#"response_code="418""#) }
                }
                #expect(await send(key: nil) == .unauthenticated)
                #expect(await send(key: keys.key(for: .init(namespace: Self.namespace, name: "ledger"))) == .unauthenticated, "another workload's key")
                #expect(await send(key: keys.key(for: governor), logName: "something-else") == .invalidArgument)
                #expect(counted().isEmpty)
                #expect(await send(key: keys.key(for: governor)) == nil)
                let lines = counted()
                #expect(lines.count == 1 && lines.first?.hasSuffix(" 2") == true, "\(lines)")
                let line = String(lines.first ?? "")
                #expect(line.contains(#"source_workload="governor""#))
                #expect(line.contains(#"destination_workload="coordinator-v1""#))
            }
        }
    }
}
