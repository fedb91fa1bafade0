public import MeshModel

/// The mTLS mode a server sidecar enforces on a port, from PeerAuthentication as Istio resolves it.
public enum MTLSMode: String, Sendable, Hashable {
    /// Only mTLS.
    case strict = "STRICT"
    /// mTLS and plaintext.
    case permissive = "PERMISSIVE"
    /// Plaintext only.
    case disable = "DISABLE"
}

/// Resolves PeerAuthentication for a workload: the mesh-wide policy (root namespace, no selector),
/// overridden by the namespace policy (no selector), overridden by a workload policy (selector
/// matching the workload's labels, the first by name), overridden for a port by that policy's
/// `portLevelMtls`. UNSET inherits; with no policy at all the mode is PERMISSIVE, as in Istio.
public struct PeerAuthenticationPolicy: Sendable {
    let meshPolicy: Configured<PeerAuthentication>?
    let namespacePolicy: Configured<PeerAuthentication>?
    let workloadPolicy: Configured<PeerAuthentication>?

    /// The policies that apply to `workload`.
    public init(workload: WorkloadInstance, snapshot: MeshSnapshot) {
        let policies = snapshot.peerAuthentications
        func unselected(_ item: Configured<PeerAuthentication>) -> Bool {
            (item.spec.selector?.matchLabels ?? [:]).isEmpty
        }
        meshPolicy = policies.first { $0.metadata.namespace == snapshot.settings.rootNamespace && unselected($0) }
        namespacePolicy = workload.namespace == snapshot.settings.rootNamespace
            ? nil
            : policies.first { $0.metadata.namespace == workload.namespace && unselected($0) }
        workloadPolicy = policies.first { item in
            item.metadata.namespace == workload.namespace && !unselected(item) && workload.matches(item.spec.selector!.matchLabels!)
        }
    }

    /// The mode on `port` (the port the workload's sidecar accepts traffic on).
    public func mode(port: UInt32) -> MTLSMode {
        decision(port: port).mode
    }

    /// The mode on `port` and the policy that decided it (`namespace/name`, or `default`).
    public func decision(port: UInt32) -> (mode: MTLSMode, decidedBy: String) {
        var decision = (mode: MTLSMode.permissive, decidedBy: "default")
        for policy in [meshPolicy, namespacePolicy, workloadPolicy] {
            if let policy, let resolved = Self.resolve(policy.spec.mtls?.mode) { decision = (resolved, "\(policy.metadata.namespace)/\(policy.metadata.name)") }
        }
        if let policy = workloadPolicy, let resolved = Self.resolve(policy.spec.portLevelMtls?[String(port)]?.mode) {
            decision = (resolved, "\(policy.metadata.namespace)/\(policy.metadata.name) (port \(port))")
        }
        return decision
    }

    /// The policies that apply, `namespace/name`, mesh-wide first.
    public var applied: [String] {
        [meshPolicy, namespacePolicy, workloadPolicy].compactMap { $0.map { "\($0.metadata.namespace)/\($0.metadata.name)" } }
    }

    private static func resolve(_ mode: PeerAuthentication.MutualTLS.Mode?) -> MTLSMode? {
        switch mode {
        case .STRICT?: .strict
        case .PERMISSIVE?: .permissive
        case .DISABLE?: .disable
        case .UNSET?, nil: nil
        }
    }
}
