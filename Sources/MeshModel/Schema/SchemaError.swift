/// A value that does not fit Istio's schema: which field, and why.
public struct SchemaError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The field the error is about.
    public var path: FieldPath
    /// Why the value was refused, in words a user can act on.
    public var reason: String

    /// An error at `path`.
    public init(path: FieldPath, reason: String) {
        self.path = path
        self.reason = reason
    }

    public var description: String { "\(path): \(reason)" }
}
