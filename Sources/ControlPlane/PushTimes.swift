internal import Metrics
internal import MeshModel
internal import Synchronization

/// How long configurations take to reach the proxies, server side: from a configuration's
/// publication (the end of the debounce, or a rollout step) to each proxy's responses for it
/// being written. `meshd_push_duration_seconds` has one sample per proxy and configuration;
/// `meshd_push_last_change_seconds` is, for the newest configuration, the time until the last
/// proxy's responses were written so far (the push time of the whole change).
final class PushTimes: Sendable {
    /// A configuration: its revision and rollout step.
    struct Key: Hashable, Sendable {
        var revision: UInt64
        var step: UInt64

        init(_ snapshot: MeshSnapshot) {
            revision = snapshot.revision
            step = snapshot.rolloutStep
        }
    }

    private struct State {
        /// Publication instants of the recent configurations, oldest first.
        var published: [(key: Key, at: ContinuousClock.Instant)] = []
        var newest: Key?
        var newestLongest: Duration = .zero
    }

    private let state = Mutex(State())
    private let perProxy: Metrics.Timer
    private let lastChange: Gauge
    /// Configurations remembered (older ones are no longer timed).
    static let remembered = 64

    init(metrics: any MetricsFactory) {
        perProxy = Metrics.Timer(label: "meshd_push_duration_seconds", dimensions: [], preferredDisplayUnit: .seconds, factory: metrics)
        lastChange = Gauge(label: "meshd_push_last_change_seconds", dimensions: [], factory: metrics)
    }

    /// A configuration was published at `now`.
    func published(_ key: Key, at now: ContinuousClock.Instant = .now) {
        state.withLock { state in
            guard !state.published.contains(where: { $0.key == key }) else { return }
            state.published.append((key, now))
            if state.published.count > Self.remembered { state.published.removeFirst(state.published.count - Self.remembered) }
            state.newest = key
            state.newestLongest = .zero
        }
    }

    /// A proxy's responses for configuration `key` were written at `now`; returns how long after
    /// its publication (`nil`: not a configuration timed here).
    @discardableResult
    func written(_ key: Key, at now: ContinuousClock.Instant = .now) -> Duration? {
        let (elapsed, longest) = state.withLock { state -> (Duration?, Duration?) in
            guard let published = state.published.last(where: { $0.key == key })?.at else { return (nil, nil) }
            let elapsed = now - published
            guard key == state.newest else { return (elapsed, nil) }
            state.newestLongest = max(state.newestLongest, elapsed)
            return (elapsed, state.newestLongest)
        }
        if let elapsed { perProxy.recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000) }
        if let longest { lastChange.record(Double(longest.components.seconds) + Double(longest.components.attoseconds) / 1e18) }
        return elapsed
    }
}
