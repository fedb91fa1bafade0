import Dispatch
import Foundation
import Synchronization
import Testing
import XDSServer

final class Flags: Sendable {
    let inside = Mutex(false)
    let second = Mutex(false)
}

@Suite("Bounded push concurrency")
struct PushLimiterTests {
    @Test("with a limit of one, a second body waits until the first is done")
    func waits() async throws {
        let limiter = PushLimiter(limit: 1)
        let flags = Flags()
        let release = DispatchSemaphore(value: 0)
        let first = Task.detached {
            await limiter.run {
                flags.inside.withLock { $0 = true }
                release.wait()
            }
        }
        for _ in 0..<200 where !flags.inside.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(5)) }
        #expect(flags.inside.withLock { $0 })
        let second = Task.detached { await limiter.run { flags.second.withLock { $0 = true } } }
        try await Task.sleep(for: .milliseconds(100))
        #expect(!flags.second.withLock { $0 }, "the second body waits for the slot")
        release.signal()
        await first.value
        await second.value
        #expect(flags.second.withLock { $0 })
        #expect(limiter.peak == 1)
    }
}
