internal import Foundation
internal import Synchronization
public import MeshTranslation

/// Istio's standard metrics, counted from the access log entries proxies stream to meshd and
/// served in Prometheus' text format with meshd's own metrics: `istio_requests_total`,
/// `istio_request_duration_milliseconds`, `istio_request_bytes`, `istio_response_bytes` (HTTP
/// and gRPC), and `istio_tcp_sent_bytes_total`, `istio_tcp_received_bytes_total`,
/// `istio_tcp_connections_opened_total`, `istio_tcp_connections_closed_total` (TCP).
///
/// Series are kept for as long as meshd runs (counters never go back); at most
/// ``maximumSeries`` of each kind, beyond which new label sets are counted as dropped.
public final class StandardMetrics: Sendable {
    /// Envoy's default histogram buckets (milliseconds), which Istio's proxies use for durations.
    static let durationBuckets: [Double] = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000]
    /// Size buckets (bytes): powers of ten from 1 to 10⁹.
    static let sizeBuckets: [Double] = (0...9).map { pow(10, Double($0)) }
    /// The most label sets kept per kind (requests, TCP) by default.
    public static let defaultMaximumSeries = 50_000
    /// The most label sets kept per kind.
    public let maximumSeries: Int

    /// A histogram: counts per bucket (not cumulative), sum and count.
    struct Histogram: Sendable {
        var counts: [UInt64]
        var sum: Double = 0
        var count: UInt64 = 0

        init(bounds: Int) { counts = Array(repeating: 0, count: bounds) }

        mutating func observe(_ value: Double, bounds: [Double]) {
            if let index = bounds.firstIndex(where: { value <= $0 }) { counts[index] += 1 }
            sum += value
            count += 1
        }
    }

    struct RequestSeries: Sendable {
        var requests: UInt64 = 0
        var duration = Histogram(bounds: StandardMetrics.durationBuckets.count)
        var requestBytes = Histogram(bounds: StandardMetrics.sizeBuckets.count)
        var responseBytes = Histogram(bounds: StandardMetrics.sizeBuckets.count)
    }

    struct TCPSeries: Sendable {
        var sent: UInt64 = 0
        var received: UInt64 = 0
        var opened: UInt64 = 0
        var closed: UInt64 = 0
    }

    /// One request as an access log entry tells it.
    public struct Request: Sendable {
        /// Its labels.
        public var labels: MetricsAttribution.Labels
        /// From its first byte received to its last byte sent, in milliseconds.
        public var durationMilliseconds: Double
        /// Request headers and body, in bytes.
        public var requestBytes: UInt64
        /// Response headers and body, in bytes.
        public var responseBytes: UInt64

        /// A request.
        public init(labels: MetricsAttribution.Labels, durationMilliseconds: Double, requestBytes: UInt64, responseBytes: UInt64) {
            self.labels = labels
            self.durationMilliseconds = durationMilliseconds
            self.requestBytes = requestBytes
            self.responseBytes = responseBytes
        }
    }

    /// One TCP connection event.
    public struct Connection: Sendable {
        /// What happened.
        public enum Event: Sendable {
            /// The upstream connection was made.
            case opened
            /// The connection ended, having sent and received this many bytes (downstream).
            case closed(sent: UInt64, received: UInt64)
        }

        /// Its labels.
        public var labels: MetricsAttribution.Labels
        /// What happened.
        public var event: Event

        /// An event.
        public init(labels: MetricsAttribution.Labels, event: Event) {
            self.labels = labels
            self.event = event
        }
    }

    private struct State {
        var requests: [MetricsAttribution.Labels: RequestSeries] = [:]
        var tcp: [MetricsAttribution.Labels: TCPSeries] = [:]
        var dropped: UInt64 = 0
    }

    private let state = Mutex(State())

    /// Empty metrics keeping at most `maximumSeries` label sets per kind.
    public init(maximumSeries: Int = StandardMetrics.defaultMaximumSeries) {
        self.maximumSeries = maximumSeries
    }

    /// Counts `requests`; returns how many were dropped because their series would be one too many.
    @discardableResult
    public func record(_ requests: [Request]) -> Int {
        state.withLock { state in
            var dropped = 0
            for request in requests {
                if state.requests[request.labels] == nil, state.requests.count >= maximumSeries {
                    dropped += 1
                    continue
                }
                state.requests[request.labels, default: RequestSeries()].add(request)
            }
            state.dropped += UInt64(dropped)
            return dropped
        }
    }

    /// Counts TCP connection events; returns how many were dropped.
    @discardableResult
    public func record(_ connections: [Connection]) -> Int {
        state.withLock { state in
            var dropped = 0
            for connection in connections {
                if state.tcp[connection.labels] == nil, state.tcp.count >= maximumSeries {
                    dropped += 1
                    continue
                }
                switch connection.event {
                case .opened:
                    state.tcp[connection.labels, default: TCPSeries()].opened += 1
                case .closed(let sent, let received):
                    state.tcp[connection.labels, default: TCPSeries()].add(sent: sent, received: received)
                }
            }
            state.dropped += UInt64(dropped)
            return dropped
        }
    }

    /// Every request series' counts, and every TCP series' (for the service graph).
    func series() -> (requests: [(MetricsAttribution.Labels, RequestSeries)], tcp: [(MetricsAttribution.Labels, TCPSeries)]) {
        state.withLock { state in (state.requests.map { ($0.key, $0.value) }, state.tcp.map { ($0.key, $0.value) }) }
    }

    /// How many entries were dropped for want of room for their series.
    public var dropped: UInt64 { state.withLock { $0.dropped } }

    /// The series in Prometheus' text exposition format, sorted by labels.
    public func prometheusText() -> String {
        let (requests, tcp, dropped) = state.withLock { ($0.requests, $0.tcp, $0.dropped) }
        var out = ""
        let requestSeries = requests.map { (Self.labelText(MetricsAttribution.requestLabelNames, $0.key.values), $0.value) }.sorted { $0.0 < $1.0 }
        let tcpSeries = tcp.map { (Self.labelText(MetricsAttribution.tcpLabelNames, $0.key.values), $0.value) }.sorted { $0.0 < $1.0 }

        out += "# HELP istio_requests_total Requests, counted by the proxy that reports them (Istio's standard metric)\n# TYPE istio_requests_total counter\n"
        for (labels, series) in requestSeries { out += "istio_requests_total{\(labels)} \(series.requests)\n" }
        for (name, help, bounds, pick) in [
            ("istio_request_duration_milliseconds", "Request duration in milliseconds", Self.durationBuckets, \RequestSeries.duration),
            ("istio_request_bytes", "Request size (headers and body) in bytes", Self.sizeBuckets, \RequestSeries.requestBytes),
            ("istio_response_bytes", "Response size (headers and body) in bytes", Self.sizeBuckets, \RequestSeries.responseBytes),
        ] as [(String, String, [Double], KeyPath<RequestSeries, Histogram>)] {
            out += "# HELP \(name) \(help) (Istio's standard metric)\n# TYPE \(name) histogram\n"
            for (labels, series) in requestSeries {
                let histogram = series[keyPath: pick]
                var cumulative: UInt64 = 0
                for (bound, count) in zip(bounds, histogram.counts) {
                    cumulative += count
                    out += "\(name)_bucket{\(labels),le=\"\(Self.number(bound))\"} \(cumulative)\n"
                }
                out += "\(name)_bucket{\(labels),le=\"+Inf\"} \(histogram.count)\n"
                out += "\(name)_sum{\(labels)} \(Self.number(histogram.sum))\n"
                out += "\(name)_count{\(labels)} \(histogram.count)\n"
            }
        }
        for (name, help, pick) in [
            ("istio_tcp_sent_bytes_total", "Bytes sent to the downstream side of TCP connections", \TCPSeries.sent),
            ("istio_tcp_received_bytes_total", "Bytes received from the downstream side of TCP connections", \TCPSeries.received),
            ("istio_tcp_connections_opened_total", "TCP connections opened", \TCPSeries.opened),
            ("istio_tcp_connections_closed_total", "TCP connections closed", \TCPSeries.closed),
        ] as [(String, String, KeyPath<TCPSeries, UInt64>)] {
            out += "# HELP \(name) \(help) (Istio's standard metric)\n# TYPE \(name) counter\n"
            for (labels, series) in tcpSeries { out += "\(name){\(labels)} \(series[keyPath: pick])\n" }
        }
        out += "# HELP meshd_istio_metrics_dropped_total Access log entries not counted because their series would exceed the limit\n# TYPE meshd_istio_metrics_dropped_total counter\nmeshd_istio_metrics_dropped_total \(dropped)\n"
        return out
    }

    /// `name="value",...` with Prometheus' escapes (backslash, double quote, newline).
    static func labelText(_ names: [String], _ values: [String]) -> String {
        zip(names, values).map { name, value in
            var escaped = ""
            for character in value {
                switch character {
                case "\\": escaped += "\\\\"
                case "\"": escaped += "\\\""
                case "\n": escaped += "\\n"
                default: escaped.append(character)
                }
            }
            return "\(name)=\"\(escaped)\""
        }.joined(separator: ",")
    }

    /// A number as Prometheus writes it: integers without a fraction.
    static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }
}

extension StandardMetrics.RequestSeries {
    fileprivate mutating func add(_ request: StandardMetrics.Request) {
        requests += 1
        duration.observe(request.durationMilliseconds, bounds: StandardMetrics.durationBuckets)
        requestBytes.observe(Double(request.requestBytes), bounds: StandardMetrics.sizeBuckets)
        responseBytes.observe(Double(request.responseBytes), bounds: StandardMetrics.sizeBuckets)
    }
}

extension StandardMetrics.TCPSeries {
    fileprivate mutating func add(sent: UInt64, received: UInt64) {
        closed += 1
        self.sent += sent
        self.received += received
    }
}
