public import MeshModel

/// Resolves PeerAuthentication for a workload: the mesh-wide policy (root namespace, no selector),
/// overridden by the namespace policy (no selector), overridden by a workload policy (selector
/// matching the workload's labels, the first by name), overridden for a port by that policy's
/// `portLevelMtls`. UNSET inherits; with no policy at all the mode is PERMISSIVE, as in Istio.
public struct PeerAuthenticationPolicy: Sendable {
    let meshPolicy: Configured<PeerAuthentication>?
    let namespacePolicy: Configured<PeerAuthentication>?
    let workloadPolicy: Configured<PeerAuthentication>?
    /// What is served instead of the configured mode while a change is rolled out, by port.
    let staged: [UInt32: MTLSStaging.Entry]

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
        staged = snapshot.mtlsStaging.entries(of: .init(namespace: workload.namespace, name: workload.name))
    }

    /// The configured mode on `port` (the port the workload's sidecar accepts traffic on).
    public func mode(port: UInt32) -> MTLSMode {
        decision(port: port).mode
    }

    /// What the workload's sidecar accepts on `port` now: the configured mode, or while a change
    /// is rolled out, the staged one.
    public func servedMode(port: UInt32) -> MTLSMode {
        staged[port]?.accept ?? mode(port: port)
    }

    /// Whether clients send mTLS to `port` now (auto mTLS: unless DISABLE; while a change is
    /// rolled out, as staged).
    public func clientsUseTLS(port: UInt32) -> Bool {
        staged[port]?.clientsUseTLS ?? (mode(port: port) != .disable)
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
