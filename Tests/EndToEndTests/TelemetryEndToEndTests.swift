import ControlPlane
import Foundation
import MeshModel
import Testing
import XDSTesting

extension EndToEnd {
    /// Tracing, per-service metrics, access logs and the ADR's alert with real Envoys, a test Zipkin
    /// collector and a real Prometheus. Addresses: 127.30.0.x sidecars' inbound (and :15090),
    /// 127.30.1.x egress, 127.30.2.x apps, 127.30.9.x collector and Prometheus.
    @Suite("Observability: tracing, metrics, access logs, the error-rate alert")
    struct Observability {
        static let namespace = "tel"
        static let clientEgress = HostPort(host: "127.30.1.2", port: 8080)
        static let collector = HostPort(host: "127.30.9.1", port: 9411)
        static let serverHost = "server.tel.svc.cluster.local"

        /// The mesh, with `mesh.yaml` sending spans to the test collector and access logs to
        /// `<logDirectory>/<namespace>-<workload>.log`, and STRICT mTLS.
        static func files(logDirectory: String) -> [String: String] {
            [
                "service.yaml": serviceYAML("server", namespace: namespace),
                "client.yaml": workloadYAML("client", namespace: namespace, block: 30, host: 2, labels: ["app": "client"], serviceAccount: "client"),
                "server.yaml": workloadYAML("server", namespace: namespace, block: 30, host: 3, labels: ["app": "server"], serviceAccount: "server"),
                "mtls.yaml": """
                    apiVersion: security.istio.io/v1
                    kind: PeerAuthentication
                    metadata: {name: default, namespace: \(namespace)}
                    spec: {mtls: {mode: STRICT}}
                    """,
                "collector.yaml": """
                    apiVersion: networking.istio.io/v1
                    kind: ServiceEntry
                    metadata: {name: zipkin, namespace: istio-system}
                    spec:
                      hosts: [zipkin.istio-system.svc.cluster.local]
                      location: MESH_EXTERNAL
                      resolution: STATIC
                      ports: [{number: 9411, name: http-zipkin, protocol: HTTP}]
                      endpoints: [{address: \(collector.host)}]
                    """,
                "mesh.yaml": """
                    extensionProviders:
                    - name: jaeger
                      zipkin: {service: zipkin.istio-system.svc.cluster.local, port: 9411, traceContextOption: USE_B3_WITH_W3C_PROPAGATION}
                    accessLogFile: \(logDirectory)/{namespace}-{workload}.log
                    accessLogEncoding: JSON
                    """,
            ]
        }

        /// The ADR's `tai-tracing`, in the test's namespace, with `extra` appended to its one entry.
        static func tracing(percentage: Double, extra: String = "") -> String {
            """
            apiVersion: telemetry.istio.io/v1alpha1
            kind: Telemetry
            metadata: {name: tai-tracing, namespace: \(namespace)}
            spec:
              tracing:
              - providers:
                - name: jaeger
                randomSamplingPercentage: \(percentage)
            \(extra)
            """
        }

        /// One Zipkin v2 span as the collector received it.
        struct Span {
            var traceID: String
            var id: String
            var parentID: String?
            var kind: String
            var serviceName: String
            var tags: [String: String]
        }

        /// Every span the collector received (Zipkin v2 JSON arrays posted to /api/v2/spans).
        static func spans(_ collector: TestHTTPApp) -> [Span] {
            collector.requests.filter { $0.path.hasPrefix("/api/v2/spans") }.flatMap { request -> [Span] in
                guard let array = try? JSONSerialization.jsonObject(with: Data(request.body.utf8)) as? [[String: Any]] else { return [] }
                return array.compactMap { span in
                    guard let trace = span["traceId"] as? String, let id = span["id"] as? String else { return nil }
                    return Span(
                        traceID: trace, id: id, parentID: span["parentId"] as? String, kind: span["kind"] as? String ?? "",
                        serviceName: (span["localEndpoint"] as? [String: Any])?["serviceName"] as? String ?? "",
                        tags: span["tags"] as? [String: String] ?? [:])
                }
            }
        }

        /// The spans of requests whose URL contains `path`.
        static func spans(_ collector: TestHTTPApp, path: String) -> [Span] {
            spans(collector).filter { $0.tags["http.url"]?.contains(path) == true }
        }

        /// Writes `tracing.yaml` and waits until every sidecar's listeners changed.
        static func replaceTracing(_ mesh: MeshHarness, _ text: String) async throws {
            var before: [String] = []
            for envoy in mesh.envoys { before.append(try await envoy.admin("/config_dump?resource=dynamic_listeners").body) }
            try mesh.writeConfig("tracing.yaml", text)
            for (envoy, old) in zip(mesh.envoys, before) {
                try await Eventually.wait(timeout: .seconds(10), interval: .milliseconds(100), what: "\(envoy.name) to take the new config") {
                    (try? await envoy.admin("/config_dump?resource=dynamic_listeners"))?.body != old
                }
            }
        }

        /// One sample of a sidecar's Prometheus text.
        struct Sample {
            var name: String
            var labels: [String: String]
            var value: Double
        }

        /// Scrapes `<address>:15090/stats/prometheus` and parses the samples.
        static func scrape(_ address: String) async throws -> [Sample] {
            let text = try await HTTPProbe.request(HostPort(host: address, port: 15090), authority: "stats", path: "/stats/prometheus").body
            let label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/
            return text.split(separator: "\n").compactMap { line -> Sample? in
                guard !line.hasPrefix("#"), let brace = line.firstIndex(of: "{"), let close = line.lastIndex(of: "}"),
                      let value = Double(line[line.index(after: close)...].trimmingCharacters(in: .whitespaces))
                else { return nil }
                var labels: [String: String] = [:]
                for match in line[brace..<close].matches(of: label) { labels[String(match.1)] = String(match.2) }
                return Sample(name: String(line[..<brace]), labels: labels, value: value)
            }
        }

        static func startCollector(_ mesh: MeshHarness) async throws -> TestHTTPApp {
            let collector = try await mesh.startApp("zipkin", host: Self.collector.host, port: Int(Self.collector.port))
            collector.setBehaviour { _, _ in TestHTTPApp.Reply(status: 202, body: "") }
            return collector
        }

        @Test("the ADR's tai-tracing at 100 %: client and server spans share a trace id, the server's is the client's child; B3, W3C and x-request-id reach the app; customTags; 0 % sends none")
        func tracing() async throws {
            let logs = try TestTools.temporaryDirectory("tel-logs")
            defer { try? FileManager.default.removeItem(atPath: logs) }
            var files = Self.files(logDirectory: logs)
            files["tracing.yaml"] = Self.tracing(percentage: 100)
            // A new connection per request, so that the server sidecar's connections never outlive a config change.
            files["destination-rule.yaml"] = """
                apiVersion: networking.istio.io/v1
                kind: DestinationRule
                metadata: {name: server, namespace: \(Self.namespace)}
                spec:
                  host: \(Self.serverHost)
                  trafficPolicy: {connectionPool: {http: {maxRequestsPerConnection: 1}}}
                """
            try await MeshHarness("telemetry-tracing", files: files).run { mesh in
                let collector = try await Self.startCollector(mesh)
                let app = try await mesh.startApp("server", host: "127.30.2.3", port: 8080)
                try await mesh.startSidecar(Self.namespace, "client")
                try await mesh.startSidecar(Self.namespace, "server")

                let response = try await HTTPProbe.request(Self.clientEgress, authority: "server", path: "/traced-1")
                #expect(response.status == 200)
                var pair: (client: Span, server: Span)?
                try await Eventually.wait(timeout: .seconds(15), interval: .milliseconds(200), what: "spans of /traced-1 from both sidecars") {
                    let spans = Self.spans(collector, path: "/traced-1")
                    guard let client = spans.first(where: { $0.kind == "CLIENT" }), let server = spans.first(where: { $0.kind == "SERVER" }) else { return false }
                    pair = (client, server)
                    return true
                }
                let (clientSpan, serverSpan) = try #require(pair)
                #expect(clientSpan.traceID.count == 32, "128-bit trace ids")
                #expect(clientSpan.traceID == serverSpan.traceID, "one trace")
                #expect(serverSpan.parentID == clientSpan.id, "the server's span is the child of the client's")
                #expect(clientSpan.id != serverSpan.id)
                #expect(clientSpan.serviceName != serverSpan.serviceName, "each sidecar names its own service: \(clientSpan.serviceName), \(serverSpan.serviceName)")
                let seen = try #require(app.requests.last(where: { $0.path == "/traced-1" }))
                #expect(seen.headers["x-b3-traceid"] == clientSpan.traceID, "B3 propagates: \(seen.headers)")
                #expect(seen.headers["x-b3-spanid"] == serverSpan.id || seen.headers["x-b3-parentspanid"] == clientSpan.id || seen.headers["x-b3-spanid"] == clientSpan.id)
                #expect(seen.headers["traceparent"]?.contains(clientSpan.traceID) == true, "W3C traceparent propagates: \(seen.headers)")
                let requestID = try #require(seen.headers["x-request-id"])
                #expect(clientSpan.tags["guid:x-request-id"] == requestID && serverSpan.tags["guid:x-request-id"] == requestID)

                // customTags: a literal, a request header (with a default) and an environment variable.
                try await Self.replaceTracing(mesh, Self.tracing(percentage: 100, extra: """
                      customTags:
                        team: {literal: {value: payments}}
                        caller: {header: {name: x-caller, defaultValue: nobody}}
                        home: {environment: {name: HOME, defaultValue: unset}}
                  """))
                _ = try await HTTPProbe.request(Self.clientEgress, authority: "server", path: "/traced-2", headers: [("x-caller", "governor")])
                _ = try await HTTPProbe.request(Self.clientEgress, authority: "server", path: "/traced-3")
                try await Eventually.wait(timeout: .seconds(15), interval: .milliseconds(200), what: "spans of /traced-2 and /traced-3 with custom tags") {
                    Self.spans(collector, path: "/traced-2").count >= 2 && Self.spans(collector, path: "/traced-3").count >= 2
                }
                for span in Self.spans(collector, path: "/traced-2") {
                    #expect(span.tags["team"] == "payments" && span.tags["caller"] == "governor", "\(span.kind) tags: \(span.tags)")
                    #expect(span.tags["home"] == (ProcessInfo.processInfo.environment["HOME"] ?? "unset"), "\(span.tags)")
                }
                for span in Self.spans(collector, path: "/traced-3") {
                    #expect(span.tags["caller"] == "nobody", "the header tag's default: \(span.tags)")
                }

                // 0 %: requests still work and carry a request id, and no span is reported.
                try await Self.replaceTracing(mesh, Self.tracing(percentage: 0))
                for index in 0..<6 {
                    #expect(try await HTTPProbe.request(Self.clientEgress, authority: "server", path: "/untraced-\(index)").status == 200)
                }
                #expect(app.requests.last?.headers["x-request-id"] != nil)
                // Envoy's Zipkin reporter flushes at least every 5 s (or after 5 spans).
                try await Task.sleep(for: .seconds(7))
                #expect(Self.spans(collector, path: "/untraced-").isEmpty, "no span at 0 %")
                #expect(try await mesh.envoyHealthProblems().isEmpty)
            }
        }

        @Test("access logs are JSON lines with Istio's fields; the server's carries the caller's SPIFFE identity over mTLS")
        func accessLogs() async throws {
            let logs = try TestTools.temporaryDirectory("tel-logs")
            defer { try? FileManager.default.removeItem(atPath: logs) }
            try await MeshHarness("telemetry-logs", files: Self.files(logDirectory: logs)).run { mesh in
                try await mesh.startApp("server", host: "127.30.2.3", port: 8080)
                try await mesh.startSidecar(Self.namespace, "client")
                try await mesh.startSidecar(Self.namespace, "server")
                let response = try await HTTPProbe.request(Self.clientEgress, authority: "server", path: "/logged?x=1", method: "POST", body: "hello")
                #expect(response.status == 200)

                func entries(_ workload: String) -> [[String: Any]] {
                    let text = (try? String(contentsOfFile: "\(logs)/\(Self.namespace)-\(workload).log", encoding: .utf8)) ?? ""
                    return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
                }
                try await Eventually.wait(timeout: .seconds(10), interval: .milliseconds(200), what: "both sidecars to log /logged") {
                    entries("client").contains { $0["path"] as? String == "/logged?x=1" } && entries("server").contains { $0["path"] as? String == "/logged?x=1" }
                }
                for workload in ["client", "server"] {
                    let text = try String(contentsOfFile: "\(logs)/\(Self.namespace)-\(workload).log", encoding: .utf8)
                    for line in text.split(separator: "\n") {
                        #expect((try? JSONSerialization.jsonObject(with: Data(line.utf8))) is [String: Any], "\(workload) log line is not a JSON object: \(line)")
                    }
                    let entry = try #require(entries(workload).last { $0["path"] as? String == "/logged?x=1" })
                    for field in ["start_time", "method", "path", "protocol", "response_code", "response_flags", "bytes_received", "bytes_sent", "duration", "upstream_cluster", "upstream_host", "request_id", "authority", "downstream_peer_identity"] {
                        #expect(entry.keys.contains(field), "\(workload) log lacks \(field): \(entry)")
                    }
                    #expect(entry["method"] as? String == "POST" && entry["response_code"] as? Int == 200 && entry["authority"] as? String == "server", "\(entry)")
                    #expect(entry["bytes_received"] as? Int == 5, "\(entry)")
                }
                let server = try #require(entries("server").last { $0["path"] as? String == "/logged?x=1" })
                let client = try #require(entries("client").last { $0["path"] as? String == "/logged?x=1" })
                #expect(server["downstream_peer_identity"] as? String == "spiffe://cluster.local/ns/tel/sa/client", "\(server)")
                #expect(client["upstream_peer_identity"] as? String == "spiffe://cluster.local/ns/tel/sa/server", "\(client)")
                #expect((client["upstream_cluster"] as? String)?.hasPrefix("outbound|8080||\(Self.serverHost)") == true, "\(client)")
                #expect((server["upstream_cluster"] as? String)?.hasPrefix("inbound|8080|") == true, "\(server)")
                #expect(server["request_id"] as? String == client["request_id"] as? String, "one request id end to end")
            }
        }

        @Test("a real Prometheus scrapes both sidecars' :15090: request rate by destination_service; 10 % of 5xx fires the shipped MeshServiceErrorRateHigh")
        func metricsAndAlert() async throws {
            let logs = try TestTools.temporaryDirectory("tel-logs")
            defer { try? FileManager.default.removeItem(atPath: logs) }
            try await MeshHarness("telemetry-metrics", files: Self.files(logDirectory: logs)).run { mesh in
                let app = try await mesh.startApp("server", host: "127.30.2.3", port: 8080)
                app.setBehaviour { _, sequence in sequence % 10 == 0 ? TestHTTPApp.Reply(status: 500, body: "failed\n") : TestHTTPApp.Reply(body: "server\n") }
                try await mesh.startSidecar(Self.namespace, "client")
                try await mesh.startSidecar(Self.namespace, "server")

                // The sidecars' own endpoint serves labelled series.
                _ = try await HTTPProbe.request(Self.clientEgress, authority: "server")
                let outbound = ["direction": "outbound", "destination_port": "8080", "destination_subset": "", "destination_service": Self.serverHost]
                let histograms = ["envoy_cluster_upstream_rq_time", "envoy_cluster_upstream_rq_headers_size", "envoy_cluster_upstream_rq_body_size", "envoy_cluster_upstream_rs_headers_size", "envoy_cluster_upstream_rs_body_size"]
                var client: [Sample] = []
                // Envoy publishes histograms at its stats flush (every 5 s).
                try await Eventually.wait(timeout: .seconds(12), interval: .milliseconds(500), what: "histograms per destination service (request duration and sizes)") {
                    client = try await Self.scrape("127.30.0.2")
                    return histograms.allSatisfy { histogram in client.contains { $0.name == histogram + "_count" && $0.labels == outbound && $0.value >= 1 } }
                }
                #expect(client.contains { $0.name == "envoy_cluster_upstream_rq" && $0.labels == outbound.merging(["response_code": "200"]) { $1 } }, "\(client.filter { $0.name.hasPrefix("envoy_cluster_upstream_rq") }.prefix(10))")
                #expect(client.contains { $0.name == "envoy_cluster_upstream_rq" && $0.labels == outbound.merging(["response_code_class": "2xx"]) { $1 } })
                let inbound = ["direction": "inbound", "destination_port": "8080", "destination_subset": "", "destination_service": ""]
                let server = try await Self.scrape("127.30.0.3")
                #expect(server.contains { $0.name == "envoy_cluster_upstream_rq" && $0.labels == inbound.merging(["response_code": "200"]) { $1 } }, "\(server.filter { $0.name.hasPrefix("envoy_cluster_upstream_rq") }.prefix(10))")
                let leftovers = Set((client + server).map(\.name).filter { $0.contains("8080") || $0.contains("svc_cluster_local") || $0.contains("__") })
                #expect(leftovers.isEmpty, "no cluster or listener name left in a series name: \(leftovers.sorted())")

                let directory = mesh.directory + "/prometheus"
                try FileManager.default.createDirectory(atPath: directory + "/data", withIntermediateDirectories: true)
                try """
                    global: {scrape_interval: 1s, evaluation_interval: 1s}
                    rule_files: ["\(TestTools.packageRoot)/examples/prometheus/meshd-rules.yaml"]
                    scrape_configs:
                    - job_name: sidecars
                      metrics_path: /stats/prometheus
                      static_configs: [{targets: ["127.30.0.2:15090", "127.30.0.3:15090"]}]
                    """.write(toFile: directory + "/prometheus.yml", atomically: true, encoding: .utf8)
                let listen = HostPort(host: "127.30.9.2", port: 9090)
                let prometheus = try ProcessHandle(
                    executable: try TestTools.prometheus(),
                    arguments: ["--config.file", directory + "/prometheus.yml", "--storage.tsdb.path", directory + "/data", "--web.listen-address", "\(listen)"],
                    logPath: directory + "/prometheus.log")
                defer { Task { await prometheus.killNow() } }
                func get(_ path: String) async -> [String: Any]? {
                    guard let response = try? await HTTPProbe.request(listen, authority: "\(listen)", path: path),
                          let object = try? JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any]
                    else { return nil }
                    return object["data"] as? [String: Any]
                }
                func query(_ expression: String) async -> [[String: Any]] {
                    await get("/api/v1/query?query=" + (expression.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""))?["result"] as? [[String: Any]] ?? []
                }

                // Steady traffic, 10 % of it answered 500 (not retried: Istio's default retry policy retries 503 only).
                let load = Task {
                    for _ in 0..<3000 where !Task.isCancelled {
                        _ = try? await HTTPProbe.request(Self.clientEgress, authority: "server", timeout: .seconds(2))
                        try? await Task.sleep(for: .milliseconds(40))
                    }
                }
                defer { load.cancel() }
                let started = ContinuousClock.now
                try await Eventually.wait(timeout: .seconds(40), interval: .milliseconds(500), what: "the request rate of \(Self.serverHost) (log \(directory)/prometheus.log)") {
                    guard prometheus.isRunning else { throw HTTPProbe.Failure(description: "prometheus exited: \(prometheus.log.suffix(1000))") }
                    let result = await query(#"sum by (destination_service) (rate(envoy_cluster_upstream_rq{direction="outbound", response_code=~".+"}[1m]))"#)
                    return result.contains { ($0["metric"] as? [String: String])?["destination_service"] == Self.serverHost }
                }
                var sawPending = false
                try await Eventually.wait(timeout: .seconds(90), interval: .seconds(1), what: "MeshServiceErrorRateHigh to fire for \(Self.serverHost)") {
                    let alerts = await get("/api/v1/alerts")?["alerts"] as? [[String: Any]] ?? []
                    let ours = alerts.filter {
                        ($0["labels"] as? [String: String])?["alertname"] == "MeshServiceErrorRateHigh"
                            && ($0["labels"] as? [String: String])?["destination_service"] == Self.serverHost
                    }
                    if ours.contains(where: { $0["state"] as? String == "pending" }) { sawPending = true }
                    return ours.contains { $0["state"] as? String == "firing" }
                }
                #expect(sawPending, "the alert waits its `for` window before firing")
                let ratio = await query(#"destination_service:envoy_error_ratio:rate1m"#).first { ($0["metric"] as? [String: String])?["destination_service"] == Self.serverHost }
                let value = Double((ratio?["value"] as? [Any])?.last as? String ?? "") ?? 0
                #expect(value > 0.05 && value < 0.2, "error ratio near 10 %: \(value)")
                #expect(ContinuousClock.now - started < .seconds(120))
                load.cancel()
                await prometheus.killNow()
            }
        }

        @Test("the shipped Prometheus rules (Envoy series and Istio's standard metrics) pass promtool check rules")
        func promtool() async throws {
            let directory = try TestTools.temporaryDirectory("promtool")
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let process = try ProcessHandle(
                executable: try TestTools.promtool(),
                arguments: ["check", "rules"] + ["meshd-rules.yaml", "istio-standard-rules.yaml"].map { TestTools.packageRoot + "/examples/prometheus/" + $0 },
                logPath: directory + "/promtool.log")
            #expect(await process.waitForExit(timeout: .seconds(30)))
            #expect(process.terminationStatus == 0, "\(process.log)")
            #expect(process.log.contains("SUCCESS"), "\(process.log)")
        }
    }
}
