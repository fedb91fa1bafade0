/// A CA failure with an opaque code for counters and a message for the log.
public struct CAError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A short stable code (`ttl_too_long`, `identity_mismatch`, ...).
    public var code: String
    /// What happened, for the log (never sent to an unauthenticated caller).
    public var message: String

    /// An error.
    public init(_ code: String, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}
