internal import Foundation
internal import Synchronization
internal import MeshTranslation
internal import ServiceLifecycle

/// The traffic between one caller, one service and the workload that answered, summed over
/// Istio's standard metric series: what the service graph draws.
struct TrafficKey: Hashable, Sendable {
    /// `namespace/name` of the calling workload, or `unknown`.
    var source: String
    /// The destination service's host (`unknown` when none).
    var service: String
    /// `namespace/name` of the answering workload, or `unknown`.
    var destination: String
    /// The answering workload's `version` label (`unknown` when none).
    var version: String
    /// `http`, `grpc` or `tcp`.
    var protocolName: String
}

/// Counts of one ``TrafficKey`` since meshd started.
struct TrafficTotals: Sendable, Equatable {
    /// Requests (TCP: connections opened).
    var requests: UInt64 = 0
    /// Requests answered 5xx.
    var errors: UInt64 = 0
    /// Requests per duration bucket (``StandardMetrics/durationBuckets``, then +Inf).
    var durations = [UInt64](repeating: 0, count: StandardMetrics.durationBuckets.count + 1)
    /// Requests the server side saw over mTLS, and in plaintext.
    var mutualTLS: UInt64 = 0
    var plaintext: UInt64 = 0

    static func - (lhs: TrafficTotals, rhs: TrafficTotals) -> TrafficTotals {
        var out = TrafficTotals()
        out.requests = lhs.requests &- min(lhs.requests, rhs.requests)
        out.errors = lhs.errors &- min(lhs.errors, rhs.errors)
        out.durations = zip(lhs.durations, rhs.durations).map { $0 &- min($0, $1) }
        out.mutualTLS = lhs.mutualTLS &- min(lhs.mutualTLS, rhs.mutualTLS)
        out.plaintext = lhs.plaintext &- min(lhs.plaintext, rhs.plaintext)
        return out
    }

    static func + (lhs: TrafficTotals, rhs: TrafficTotals) -> TrafficTotals {
        var out = lhs
        out.requests &+= rhs.requests
        out.errors &+= rhs.errors
        out.durations = zip(lhs.durations, rhs.durations).map { $0 &+ $1 }
        out.mutualTLS &+= rhs.mutualTLS
        out.plaintext &+= rhs.plaintext
        return out
    }

    /// The `quantile` (0 to 1) of the durations, interpolated inside its bucket as Prometheus'
    /// `histogram_quantile` does; nil without requests.
    func duration(quantile: Double) -> Double? {
        let total = durations.reduce(0, +)
        guard total > 0 else { return nil }
        let rank = quantile * Double(total)
        var cumulative: UInt64 = 0
        let bounds = StandardMetrics.durationBuckets
        for (index, count) in durations.enumerated() {
            let before = cumulative
            cumulative += count
            guard Double(cumulative) >= rank, count > 0 else { continue }
            guard index < bounds.count else { return bounds.last }
            let lower = index == 0 ? 0 : bounds[index - 1]
            return lower + (bounds[index] - lower) * (rank - Double(before)) / Double(count)
        }
        return bounds.last
    }
}

extension StandardMetrics {
    /// The traffic totals of every caller → service → workload, from both reporters: the client
    /// side counts requests and durations; the server side says whether they came over mTLS,
    /// and counts the requests of callers outside the mesh, which report nothing themselves.
    func trafficTotals() -> [TrafficKey: TrafficTotals] {
        func value(_ labels: MetricsAttribution.Labels, _ name: String) -> String {
            labels[name] ?? MetricsAttribution.unknown
        }
        func workload(_ labels: MetricsAttribution.Labels, _ side: String) -> String {
            let name = value(labels, "\(side)_workload")
            return name == MetricsAttribution.unknown ? name : "\(value(labels, "\(side)_workload_namespace"))/\(name)"
        }
        func key(_ labels: MetricsAttribution.Labels) -> TrafficKey {
            TrafficKey(
                source: workload(labels, "source"), service: value(labels, "destination_service"), destination: workload(labels, "destination"),
                version: value(labels, "destination_version"), protocolName: value(labels, "request_protocol"))
        }
        var totals: [TrafficKey: TrafficTotals] = [:]
        let (requests, tcp) = series()
        for (labels, series) in requests {
            let client = value(labels, "reporter") == MetricsReporting.Reporter.source.rawValue
            var add = TrafficTotals()
            if client || value(labels, "source_workload") == MetricsAttribution.unknown {
                add.requests = series.requests
                if value(labels, "response_code").hasPrefix("5") { add.errors = series.requests }
                add.durations = series.duration.counts + [series.duration.count &- series.duration.counts.reduce(0, +)]
            }
            if !client {
                if value(labels, "connection_security_policy") == "mutual_tls" { add.mutualTLS = series.requests } else { add.plaintext = series.requests }
            }
            totals[key(labels), default: TrafficTotals()] = totals[key(labels), default: TrafficTotals()] + add
        }
        for (labels, series) in tcp {
            let client = value(labels, "reporter") == MetricsReporting.Reporter.source.rawValue
            var add = TrafficTotals()
            if client || value(labels, "source_workload") == MetricsAttribution.unknown { add.requests = series.opened }
            if !client {
                if value(labels, "connection_security_policy") == "mutual_tls" { add.mutualTLS = series.opened } else { add.plaintext = series.opened }
            }
            totals[key(labels), default: TrafficTotals()] = totals[key(labels), default: TrafficTotals()] + add
        }
        return totals
    }
}

/// Samples of ``TrafficTotals`` over time (every ``interval``, kept for ``retention``): the
/// service graph's rates are differences between two samples.
final class TrafficHistory: Sendable {
    /// One sample.
    struct Sample: Sendable {
        var time: Date
        var totals: [TrafficKey: TrafficTotals]
    }

    let interval: Duration
    let retention: TimeInterval
    private let samples = Mutex<[Sample]>([])

    /// A history sampled every `interval`, keeping `retention` seconds.
    init(interval: Duration = .seconds(5), retention: TimeInterval = 15 * 60) {
        self.interval = interval
        self.retention = retention
    }

    /// Adds a sample taken at `now`, and forgets those older than the retention.
    func record(_ totals: [TrafficKey: TrafficTotals], at now: Date) {
        samples.withLock { samples in
            samples.append(Sample(time: now, totals: totals))
            samples.removeAll { now.timeIntervalSince($0.time) > retention }
        }
    }

    /// Every sample kept, oldest first.
    var all: [Sample] { samples.withLock { $0 } }
}

/// Samples the traffic totals into the history every interval (and once at start, so the first
/// window has a beginning).
struct TrafficSampler: Service {
    let metrics: StandardMetrics
    let history: TrafficHistory
    let clock: @Sendable () -> Date

    func run() async throws {
        history.record(metrics.trafficTotals(), at: clock())
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: history.interval)
                if Task.isCancelled { break }
                history.record(metrics.trafficTotals(), at: clock())
            }
        }
    }
}
