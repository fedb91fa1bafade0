/// Identifies a resource: kind, namespace and name.
public struct ResourceKey: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The kind.
    public var kind: ResourceKind
    /// The namespace.
    public var namespace: String
    /// The name.
    public var name: String

    /// A key from its parts.
    public init(kind: ResourceKind, namespace: String, name: String) {
        self.kind = kind
        self.namespace = namespace
        self.name = name
    }

    /// `Kind namespace/name`, as errors and logs print it.
    public var description: String { "\(kind.rawValue) \(namespace)/\(name)" }

    public static func < (lhs: ResourceKey, rhs: ResourceKey) -> Bool {
        (lhs.kind, lhs.namespace, lhs.name) < (rhs.kind, rhs.namespace, rhs.name)
    }
}
