public import Foundation

/// How long to wait before retrying after consecutive failures: 1, 2, 4 … seconds, at most
/// `maximum` (the CA's failed steps and the renewals of proxies' certificates).
public enum RetryBackoff {
    /// The wait after the `failures`-th failure in a row (1 or more).
    public static func delay(afterFailures failures: Int, maximum: TimeInterval = 300) -> TimeInterval {
        min(pow(2, Double(max(failures, 1) - 1)), maximum)
    }
}
