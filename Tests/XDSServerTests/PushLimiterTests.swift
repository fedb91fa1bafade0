import Foundation
import Synchronization
import Testing
import XDSCache

final class Counter: Sendable {
    let value = Mutex(0)
}

@Suite("Bounded push concurrency")
struct PushLimiterTests {
    @Test("never more than the limit at once; every body runs")
    func bounded() async {
        let limiter = PushLimiter(limit: 3)
        let done = Counter()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<24 {
                group.addTask {
                    await limiter.run {
                        usleep(2000)
                        done.value.withLock { $0 += 1 }
                    }
                }
            }
        }
        #expect(done.value.withLock { $0 } == 24)
        #expect(limiter.peak <= 3 && limiter.peak >= 2, "peak \(limiter.peak)")
    }
}
