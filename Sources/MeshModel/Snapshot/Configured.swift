/// A resource's metadata with its spec typed by kind.
public struct Configured<Spec: Hashable & Sendable>: Hashable, Sendable {
    /// The metadata.
    public var metadata: ObjectMeta
    /// The spec.
    public var spec: Spec
    /// The kind.
    public var kind: ResourceKind

    /// A typed resource.
    public init(metadata: ObjectMeta, spec: Spec, kind: ResourceKind) {
        self.metadata = metadata
        self.spec = spec
        self.kind = kind
    }

    /// Kind, namespace and name.
    public var key: ResourceKey {
        ResourceKey(kind: kind, namespace: metadata.namespace, name: metadata.name)
    }
}
