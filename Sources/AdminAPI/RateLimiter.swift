public import Foundation
internal import Synchronization

/// A token bucket per caller: `burst` requests at once, refilled at `ratePerSecond`.
public final class RateLimiter: Sendable {
    /// Sustained requests per second per caller.
    public let ratePerSecond: Double
    /// Requests allowed at once.
    public let burst: Int
    private let clock: @Sendable () -> Date
    private let buckets = Mutex<[String: (tokens: Double, at: Date)]>([:])

    /// A limiter; the defaults suit an operator and a CI job, not a flood.
    public init(ratePerSecond: Double = 20, burst: Int = 40, clock: @escaping @Sendable () -> Date = Date.init) {
        self.ratePerSecond = ratePerSecond
        self.burst = burst
        self.clock = clock
    }

    /// Whether `key` may make one more request now (and counts it if so).
    public func allow(_ key: String) -> Bool {
        admit(key) == nil
    }

    /// Counts one more request of `key` and returns `nil`, or, when `key` is over its rate,
    /// how many seconds until it may ask again (what `Retry-After` says).
    public func admit(_ key: String) -> TimeInterval? {
        let now = clock()
        return buckets.withLock { buckets in
            var bucket = buckets[key] ?? (Double(burst), now)
            bucket.tokens = min(Double(burst), bucket.tokens + now.timeIntervalSince(bucket.at) * ratePerSecond)
            bucket.at = now
            defer { buckets[key] = bucket }
            guard bucket.tokens >= 1 else { return ratePerSecond > 0 ? (1 - bucket.tokens) / ratePerSecond : 60 }
            bucket.tokens -= 1
            return nil
        }
    }
}
