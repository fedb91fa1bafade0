/// Bounded waiting for a condition, for tests.
public enum Eventually {
    /// The condition did not hold in time.
    public struct Timeout: Error, CustomStringConvertible {
        /// What was awaited.
        public var description: String
    }

    /// Polls `condition` every `interval` until it returns true; throws ``Timeout`` after `timeout`.
    public static func wait(
        timeout: Duration, interval: Duration = .milliseconds(50), what: String,
        _ condition: () async throws -> Bool
    ) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while true {
            if try await condition() { return }
            if clock.now >= deadline { throw Timeout(description: "timed out after \(timeout) waiting for \(what)") }
            try await Task.sleep(for: interval)
        }
    }
}
