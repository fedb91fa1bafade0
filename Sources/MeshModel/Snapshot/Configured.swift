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

/// A security policy that picks workloads with `selector.matchLabels` (AuthorizationPolicy,
/// RequestAuthentication).
public protocol WorkloadSelecting {
    var selector: PolicySelector? { get }
}

extension AuthorizationPolicy: WorkloadSelecting {}
extension RequestAuthentication: WorkloadSelecting {}

extension Configured where Spec: WorkloadSelecting {
    /// Whether the policy applies to `workload`, as Istio's security policies do: it is in the
    /// workload's namespace or the root namespace, and has no selector or one the labels match.
    public func selects(_ workload: WorkloadInstance, rootNamespace: String) -> Bool {
        guard metadata.namespace == workload.namespace || metadata.namespace == rootNamespace else { return false }
        let labels = spec.selector?.matchLabels ?? [:]
        return labels.isEmpty || workload.matches(labels)
    }
}
