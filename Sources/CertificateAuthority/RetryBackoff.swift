public import Foundation

/// How long to wait before retrying after consecutive failures: 1, 2, 4 … seconds, at most
/// `maximum` (the CA's failed steps and the renewals of proxies' certificates).
public enum RetryBackoff {
    /// The wait after the `failures`-th failure in a row (1 or more).
    public static func delay(afterFailures failures: Int, maximum: TimeInterval = 300) -> TimeInterval {
        min(pow(2, Double(max(failures, 1) - 1)), maximum)
    }
}

/// Failures in a row and when to try again, following ``RetryBackoff``.
struct FailureStreak: Sendable {
    private var failures = 0
    private var retryAt = Date.distantPast

    /// Whether a try is due at `now`.
    func allows(_ now: Date) -> Bool { now >= retryAt }

    /// Counts a failure at `now`; returns the wait before the next try.
    mutating func failed(at now: Date) -> TimeInterval {
        failures += 1
        let delay = RetryBackoff.delay(afterFailures: failures)
        retryAt = now.addingTimeInterval(delay)
        return delay
    }

    /// Ends the streak.
    mutating func succeeded() {
        self = FailureStreak()
    }
}
