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
    let mesh: PeerAuthentication?
    let namespace: PeerAuthentication?
    let workload: PeerAuthentication?

    /// The policies that apply to `workload`.
    public init(workload: WorkloadInstance, snapshot: MeshSnapshot) {
        let policies = snapshot.peerAuthentications
        func unselected(_ item: Configured<PeerAuthentication>) -> Bool {
            (item.spec.selector?.matchLabels ?? [:]).isEmpty
        }
        mesh = policies.first { $0.metadata.namespace == snapshot.settings.rootNamespace && unselected($0) }?.spec
        namespace = workload.namespace == snapshot.settings.rootNamespace
            ? nil
            : policies.first { $0.metadata.namespace == workload.namespace && unselected($0) }?.spec
        self.workload = policies.first { item in
            item.metadata.namespace == workload.namespace && !unselected(item) && workload.matches(item.spec.selector!.matchLabels!)
        }?.spec
    }

    /// The mode on `port` (the port the workload's sidecar accepts traffic on).
    public func mode(port: UInt32) -> MTLSMode {
        var mode = MTLSMode.permissive
        for policy in [mesh, namespace, workload] {
            if let resolved = Self.resolve(policy?.mtls?.mode) { mode = resolved }
        }
        if let resolved = Self.resolve(workload?.portLevelMtls?[String(port)]?.mode) { mode = resolved }
        return mode
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
