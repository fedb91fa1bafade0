/// When the launcher restarts an Envoy that exited on its own: after `initial`, doubling with each
/// quick failure up to `maximum`; a run of at least `healthyRun` starts the count again (as
/// systemd's `Restart=on-failure` with growing `RestartSec` would).
public struct RestartBackoff: Sendable, Equatable {
    /// The first delay.
    public var initial: Duration
    /// The longest delay.
    public var maximum: Duration
    /// A run at least this long resets the delay to `initial`.
    public var healthyRun: Duration
    /// Quick failures in a row so far.
    public private(set) var consecutiveFailures = 0

    /// A back-off with the given bounds.
    public init(initial: Duration = .milliseconds(500), maximum: Duration = .seconds(30), healthyRun: Duration = .seconds(60)) {
        self.initial = initial
        self.maximum = maximum
        self.healthyRun = healthyRun
    }

    /// Records an exit after running for `uptime` and returns how long to wait before the restart.
    public mutating func exited(after uptime: Duration) -> Duration {
        if uptime >= healthyRun { consecutiveFailures = 0 }
        defer { consecutiveFailures += 1 }
        var delay = initial
        for _ in 0..<min(consecutiveFailures, 30) {
            delay *= 2
            if delay >= maximum { return maximum }
        }
        return min(delay, maximum)
    }
}
