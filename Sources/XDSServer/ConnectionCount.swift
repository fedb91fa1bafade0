internal import Synchronization

/// A shared counter of open streams.
final class ConnectionCount: Sendable {
    private let value = Atomic<Int>(0)

    /// Adds `delta` and returns the new count.
    func add(_ delta: Int) -> Int {
        value.add(delta, ordering: .relaxed).newValue
    }
}
