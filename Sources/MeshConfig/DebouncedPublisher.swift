public import CoreMetrics
public import MeshModel
internal import Synchronization

/// Istio's debounce as a pure state machine: changes are merged and pushed once nothing changed
/// for `quiet` (Istio's PILOT_DEBOUNCE_AFTER, 100 ms), or `maximum` after the first of them
/// (PILOT_DEBOUNCE_MAX, 10 s) when changes keep coming.
public struct Debounce: Sendable, Equatable {
    /// Quiet time that ends a burst.
    public var quiet: Duration
    /// Longest time a change waits.
    public var maximum: Duration
    private(set) var first: ContinuousClock.Instant?
    private(set) var last: ContinuousClock.Instant?

    /// A debounce with nothing pending.
    public init(quiet: Duration = .milliseconds(100), maximum: Duration = .seconds(10)) {
        self.quiet = quiet
        self.maximum = maximum
    }

    /// A change happened at `now`.
    public mutating func changed(at now: ContinuousClock.Instant) {
        if first == nil { first = now }
        last = now
    }

    /// When the pending changes are due (nil when nothing is pending).
    public var deadline: ContinuousClock.Instant? {
        guard let first, let last else { return nil }
        return min(last + quiet, first + maximum)
    }

    /// If the pending changes are due at `now`: how long the first of them waited, and nothing
    /// is pending any more.
    public mutating func fire(at now: ContinuousClock.Instant) -> Duration? {
        guard let deadline, let first, now >= deadline else { return nil }
        self.first = nil
        last = nil
        return now - first
    }
}

/// Republishes a ``SnapshotPublisher``'s snapshots after debouncing them: what proxies are
/// pushed. Changes before ``run()`` starts (the initial load) pass straight through.
public final class DebouncedPublisher: Sendable {
    private struct State {
        var debounce: Debounce
        var pending: MeshSnapshot?
        var running = false
    }

    /// The debounced snapshots.
    public let output: SnapshotPublisher
    private let state: Mutex<State>
    private let wake: AsyncStream<Void>
    private let wakeContinuation: AsyncStream<Void>.Continuation
    private let delay: Timer

    /// Debounces `source` with `debounce`'s times; records `pilot_debounce_time`.
    public init(source: SnapshotPublisher, debounce: Debounce, metrics: any MetricsFactory) {
        output = SnapshotPublisher(initial: source.current)
        state = Mutex(State(debounce: debounce))
        (wake, wakeContinuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        delay = Timer(label: "pilot_debounce_time", dimensions: [], preferredDisplayUnit: .seconds, factory: metrics)
        _ = source.subscribe { [weak self] snapshot in self?.received(snapshot) }
    }

    private func received(_ snapshot: MeshSnapshot) {
        let immediate = state.withLock { state -> Bool in
            guard state.running else { return true }
            state.pending = snapshot
            state.debounce.changed(at: .now)
            return false
        }
        if immediate { output.publish(snapshot) } else { wakeContinuation.yield() }
    }

    /// Pushes merged changes when they are due, until cancelled.
    public func run() async {
        state.withLock { $0.running = true }
        var wakes = wake.makeAsyncIterator()
        while !Task.isCancelled {
            guard let deadline = state.withLock({ $0.debounce.deadline }) else {
                guard await wakes.next() != nil else { return }
                continue
            }
            try? await Task.sleep(until: deadline, clock: .continuous)
            let due = state.withLock { state -> (MeshSnapshot, Duration)? in
                guard let waited = state.debounce.fire(at: .now), let snapshot = state.pending else { return nil }
                state.pending = nil
                return (snapshot, waited)
            }
            if let (snapshot, waited) = due {
                delay.recordNanoseconds(waited.nanoseconds)
                output.publish(snapshot)
            }
        }
    }
}

extension Duration {
    /// The duration in whole nanoseconds.
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
