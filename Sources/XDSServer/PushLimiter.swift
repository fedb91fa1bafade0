internal import Synchronization

/// Bounds how many proxies' configurations are computed at once (`--push-concurrency`), so that a
/// change reaching thousands of streams does not compute thousands of translations in parallel.
/// Waiters are served in arrival order.
public final class PushLimiter: Sendable {
    private struct State {
        var running = 0
        var waiting: [CheckedContinuation<Void, Never>] = []
        var peak = 0
    }

    /// How many run at once.
    public let limit: Int
    private let state = Mutex(State())

    /// A limiter letting `limit` (at least 1) bodies run at once.
    public init(limit: Int) {
        self.limit = max(1, limit)
    }

    /// Runs `body` once fewer than `limit` others run.
    public func run<T>(_ body: () throws -> T) async rethrows -> T {
        await acquire()
        defer { release() }
        return try body()
    }

    /// The most that ever ran at once.
    public var peak: Int { state.withLock { $0.peak } }

    private func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let admitted = state.withLock { state -> Bool in
                guard state.running < limit else {
                    state.waiting.append(continuation)
                    return false
                }
                state.running += 1
                state.peak = max(state.peak, state.running)
                return true
            }
            if admitted { continuation.resume() }
        }
    }

    private func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard !state.waiting.isEmpty else {
                state.running -= 1
                return nil
            }
            // The slot passes straight to the next waiter.
            return state.waiting.removeFirst()
        }
        next?.resume()
    }
}
