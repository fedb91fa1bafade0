import Foundation
import Logging
import MeshConfig
import MeshModel
import MetricsTestKit
import Testing

@Suite("Debouncing config changes before pushes")
struct DebounceTests {
    let start = ContinuousClock.now

    @Test("a burst ends after 100 ms of quiet; nothing is due before")
    func quiet() {
        var debounce = Debounce()
        #expect(debounce.deadline == nil && debounce.fire(at: start) == nil)
        debounce.changed(at: start)
        debounce.changed(at: start + .milliseconds(30))
        debounce.changed(at: start + .milliseconds(60))
        #expect(debounce.deadline == start + .milliseconds(160))
        #expect(debounce.fire(at: start + .milliseconds(159)) == nil)
        #expect(debounce.fire(at: start + .milliseconds(160)) == .milliseconds(160), "how long the first change waited")
        #expect(debounce.deadline == nil, "nothing pending after firing")
    }

    @Test("changes that never stop are pushed after 10 s at most")
    func maximum() {
        var debounce = Debounce()
        var now = start
        for _ in 0..<200 {
            debounce.changed(at: now)
            now = now + .milliseconds(60)
        }
        #expect(debounce.deadline == start + .seconds(10))
        #expect(debounce.fire(at: start + .seconds(10)) == .seconds(10))
    }

    @Test("50 changes within 50 ms reach the push side once, as the newest snapshot, and pilot_debounce_time records it")
    func burst() async throws {
        // The premise needs no two changes further apart than the quiet period; on a machine too
        // busy to make them in time, the burst is made again (at most five times).
        for attempt in 1...5 {
            let metrics = TestMetrics()
            let store = ConfigStore(resourceStore: MemoryResourceStore(), logger: Logger(label: "test"), metrics: metrics)
            let pushes = DebouncedPublisher(source: store.publisher, debounce: Debounce(quiet: .milliseconds(100), maximum: .seconds(10)), metrics: metrics)
            // Before run(): the initial load passes straight through.
            try store.applyAPI(.create(try ResourceStoreTests.virtualService("initial")))
            #expect(pushes.output.current.revision == store.revision)
            let task = Task { await pushes.run() }
            defer { task.cancel() }
            try await Task.sleep(for: .milliseconds(20))
            let received = Counted()
            _ = pushes.output.subscribe { received.add($0.revision) }
            var last = ContinuousClock.now
            var longestGap = Duration.zero
            for index in 0..<50 {
                try store.applyAPI(.create(try ResourceStoreTests.virtualService("burst-\(index)")))
                longestGap = max(longestGap, ContinuousClock.now - last)
                last = ContinuousClock.now
                try await Task.sleep(for: .milliseconds(1))
            }
            if longestGap > .milliseconds(80) && attempt < 5 { continue }
            #expect(longestGap <= .milliseconds(80), "changes \(longestGap) apart on five attempts: the machine is too busy for this test")
            #expect(received.values.isEmpty, "nothing pushed during the burst")
            for _ in 0..<100 where received.values.isEmpty { try await Task.sleep(for: .milliseconds(20)) }
            try await Task.sleep(for: .milliseconds(300))
            #expect(received.values == [store.revision], "one push, of the newest revision")
            #expect(pushes.output.current.resources.count == 51)
            let timer = try metrics.expectTimer("pilot_debounce_time")
            #expect(timer.values.count == 1 && timer.values[0] >= 100_000_000, "\(timer.values)")
            return
        }
    }

    final class Counted: Sendable {
        private let lock = NSLock()
        nonisolated(unsafe) private var stored: [UInt64] = []
        func add(_ value: UInt64) { lock.withLock { stored.append(value) } }
        var values: [UInt64] { lock.withLock { stored } }
    }
}
