import ControlPlane
import Foundation
import MeshModel
import MeshTranslation
import Testing
import XDSTesting

@Suite("Istio's standard metrics: the counts, their text, the report keys")
struct StandardMetricsPartsTests {
    static func labels(_ first: String, response: String = "200") -> MetricsAttribution.Labels {
        var values = MetricsAttribution.requestLabelNames.map { _ in "x" }
        values[0] = "source"
        values[1] = first
        values[values.count - 2] = response
        return MetricsAttribution.Labels(values: values)
    }

    @Test("requests: a counter and three cumulative histograms per label set, in Prometheus' text format")
    func requestText() {
        let metrics = StandardMetrics()
        metrics.record([
            StandardMetrics.Request(labels: Self.labels("a"), durationMilliseconds: 3, requestBytes: 150, responseBytes: 12),
            StandardMetrics.Request(labels: Self.labels("a"), durationMilliseconds: 40, requestBytes: 90, responseBytes: 2_000_000),
            StandardMetrics.Request(labels: Self.labels("a", response: "503"), durationMilliseconds: 0.2, requestBytes: 0, responseBytes: 0),
        ])
        let text = metrics.prometheusText()
        let lines = text.split(separator: "\n").map(String.init)
        let ok = #"reporter="source",source_workload="a""#
        func sample(_ prefix: String, _ contains: [String] = []) -> String? {
            lines.first { $0.hasPrefix(prefix + "{") && contains.allSatisfy($0.contains) && $0.contains(#"response_code="200""#) }?.split(separator: " ").last.map(String.init)
        }
        #expect(sample("istio_requests_total", [ok]) == "2")
        #expect(lines.contains { $0.hasPrefix("istio_requests_total{") && $0.contains(#"response_code="503""#) && $0.hasSuffix(" 1") })
        #expect(sample("istio_request_duration_milliseconds_bucket", [#"le="1""#]) == "0")
        #expect(sample("istio_request_duration_milliseconds_bucket", [#"le="5""#]) == "1")
        #expect(sample("istio_request_duration_milliseconds_bucket", [#"le="50""#]) == "2")
        #expect(sample("istio_request_duration_milliseconds_bucket", [#"le="+Inf""#]) == "2")
        #expect(sample("istio_request_duration_milliseconds_sum") == "43")
        #expect(sample("istio_request_bytes_sum") == "240")
        #expect(sample("istio_response_bytes_bucket", [#"le="1000000""#]) == "1")
        #expect(sample("istio_response_bytes_bucket", [#"le="10000000""#]) == "2")
        #expect(sample("istio_response_bytes_count") == "2")
        for name in ["istio_requests_total counter", "istio_request_duration_milliseconds histogram", "istio_request_bytes histogram", "istio_tcp_sent_bytes_total counter"] {
            #expect(text.contains("# TYPE \(name)\n"), "\(name)")
        }
        #expect(text.contains("meshd_istio_metrics_dropped_total 0\n"))
    }

    @Test("TCP: opened counts on connect; closed, sent and received at the end")
    func tcpText() {
        let metrics = StandardMetrics()
        let labels = MetricsAttribution.Labels(values: MetricsAttribution.tcpLabelNames.map { _ in "t" })
        metrics.record([
            StandardMetrics.Connection(labels: labels, event: .opened),
            StandardMetrics.Connection(labels: labels, event: .opened),
            StandardMetrics.Connection(labels: labels, event: .closed(sent: 7, received: 1000)),
        ])
        let text = metrics.prometheusText()
        for (name, value) in [("istio_tcp_connections_opened_total", 2), ("istio_tcp_connections_closed_total", 1), ("istio_tcp_sent_bytes_total", 7), ("istio_tcp_received_bytes_total", 1000)] {
            #expect(text.split(separator: "\n").contains { $0.hasPrefix(name + "{") && $0.hasSuffix(" \(value)") && !$0.contains("response_code") }, "\(name)")
        }
    }

    @Test("label values are escaped, so a name cannot break the exposition format")
    func escapes() {
        let metrics = StandardMetrics()
        metrics.record([StandardMetrics.Request(labels: Self.labels("evil\"} 1\nistio_fake{a=\"\\"), durationMilliseconds: 1, requestBytes: 1, responseBytes: 1)])
        let text = metrics.prometheusText()
        #expect(text.contains(#"source_workload="evil\"} 1\nistio_fake{a=\"\\""#), "\(text.prefix(600))")
        #expect(!text.contains("\nistio_fake"))
    }

    @Test("beyond the series limit, new label sets are dropped and counted; known ones still count")
    func limit() {
        let metrics = StandardMetrics(maximumSeries: 2)
        let dropped = metrics.record(["a", "b", "c", "a"].map { StandardMetrics.Request(labels: Self.labels($0), durationMilliseconds: 1, requestBytes: 1, responseBytes: 1) })
        #expect(dropped == 1)
        #expect(metrics.dropped == 1)
        let text = metrics.prometheusText()
        #expect(text.contains("meshd_istio_metrics_dropped_total 1\n"))
        #expect(!text.contains(#"source_workload="c""#))
        #expect(text.split(separator: "\n").contains { $0.hasPrefix("istio_requests_total{") && $0.contains(#"source_workload="a""#) && $0.hasSuffix(" 2") })
    }

    @Test("report keys: one per workload, the same after a restart, kept in a 0600 file; a wrong key is refused")
    func reportKeys() throws {
        let directory = try TestTools.temporaryDirectory("report-keys")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let web = ServiceRegistry.WorkloadID(namespace: "shop", name: "web")
        let keys = try MetricsReportKeys(dataDirectory: directory)
        let again = try MetricsReportKeys(dataDirectory: directory)
        #expect(keys.key(for: web) == again.key(for: web))
        #expect(keys.key(for: web) != keys.key(for: .init(namespace: "shop", name: "db")))
        #expect(keys.key(for: web).count == 32)
        #expect(keys.accepts(keys.key(for: web), for: web))
        #expect(!keys.accepts(keys.key(for: .init(namespace: "shop", name: "db")), for: web))
        #expect(!keys.accepts("", for: web))
        let mode = try FileManager.default.attributesOfItem(atPath: directory + "/telemetry.key")[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let other = try TestTools.temporaryDirectory("report-keys-other")
        defer { try? FileManager.default.removeItem(atPath: other) }
        #expect(try MetricsReportKeys(dataDirectory: other).key(for: web) != keys.key(for: web), "each data directory has its own secret")
    }
}
