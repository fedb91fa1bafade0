/// A workload: a WorkloadEntry, or an inline endpoint of a ServiceEntry.
public struct WorkloadInstance: Hashable, Sendable {
    /// The WorkloadEntry name (inline endpoints: `<serviceentry>/<index>`).
    public var name: String
    /// The namespace.
    public var namespace: String
    /// The address the mesh sends its traffic to.
    public var address: String
    /// Labels.
    public var labels: [String: String]
    /// The service account; `default` when the entry leaves it out, as in Kubernetes.
    public var serviceAccount: String
    /// Port overrides by service port name.
    public var ports: [String: UInt32]
    /// Locality (`region/zone/subzone`).
    public var locality: String?
    /// Network name.
    public var network: String?
    /// Load-balancing weight.
    public var weight: UInt32?
    /// The WorkloadEntry, when this workload is one (inline endpoints have none).
    public var source: ResourceKey?

    /// A workload.
    public init(
        name: String, namespace: String, address: String, labels: [String: String] = [:], serviceAccount: String = "default",
        ports: [String: UInt32] = [:], locality: String? = nil, network: String? = nil, weight: UInt32? = nil,
        source: ResourceKey? = nil
    ) {
        self.name = name
        self.namespace = namespace
        self.address = address
        self.labels = labels
        self.serviceAccount = serviceAccount
        self.ports = ports
        self.locality = locality
        self.network = network
        self.weight = weight
        self.source = source
    }

    /// A workload from a WorkloadEntry's spec.
    public init(entry: WorkloadEntry, name: String, namespace: String, source: ResourceKey?) {
        let account = entry.serviceAccount ?? ""
        self.init(
            name: name, namespace: namespace, address: entry.address ?? "", labels: entry.labels ?? [:],
            serviceAccount: account.isEmpty ? "default" : account, ports: entry.ports ?? [:],
            locality: entry.locality, network: entry.network, weight: entry.weight, source: source)
    }

    /// The SPIFFE identity of the workload in `trustDomain`.
    public func identity(trustDomain: String) -> SpiffeID {
        SpiffeID(trustDomain: trustDomain, namespace: namespace, serviceAccount: serviceAccount)
    }

    /// The port the workload listens on for `port` of a service.
    public func endpointPort(for port: MeshService.Port) -> UInt32 {
        if let override = ports[port.name] { return override }
        if let target = port.targetPort, target != 0 { return target }
        return port.number
    }

    /// The label Istio uses to mark whether an endpoint runs a sidecar (`istio` or `disabled`).
    public static let tlsModeLabel = "security.istio.io/tlsMode"

    /// Whether the workload runs a sidecar that terminates mTLS. WorkloadEntries do (they are
    /// meshd's sidecar workloads) unless labelled `security.istio.io/tlsMode: disabled`; inline
    /// ServiceEntry endpoints do not unless labelled `security.istio.io/tlsMode: istio`.
    public var hasSidecar: Bool {
        if source != nil { return labels[Self.tlsModeLabel] != "disabled" }
        return labels[Self.tlsModeLabel] == "istio"
    }

    /// Whether the workload's labels include every label of `selector`.
    public func matches(_ selector: [String: String]) -> Bool {
        selector.allSatisfy { labels[$0.key] == $0.value }
    }
}

/// A workload identity: `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`.
public struct SpiffeID: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The trust domain (`cluster.local`).
    public var trustDomain: String
    /// The namespace.
    public var namespace: String
    /// The service account.
    public var serviceAccount: String

    /// An identity from its parts.
    public init(trustDomain: String, namespace: String, serviceAccount: String) {
        self.trustDomain = trustDomain
        self.namespace = namespace
        self.serviceAccount = serviceAccount
    }

    /// Parses `spiffe://td/ns/NS/sa/SA`.
    public init?(uri: String) {
        guard uri.hasPrefix("spiffe://") else { return nil }
        let parts = uri.dropFirst("spiffe://".count).split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 5, parts[1] == "ns", parts[3] == "sa", !parts[0].isEmpty, !parts[2].isEmpty, !parts[4].isEmpty else {
            return nil
        }
        self.init(trustDomain: String(parts[0]), namespace: String(parts[2]), serviceAccount: String(parts[4]))
    }

    /// The URI form.
    public var uri: String { "spiffe://\(trustDomain)/ns/\(namespace)/sa/\(serviceAccount)" }

    /// The principal form AuthorizationPolicy uses (`cluster.local/ns/NS/sa/SA`).
    public var principal: String { "\(trustDomain)/ns/\(namespace)/sa/\(serviceAccount)" }

    public var description: String { uri }

    public static func < (lhs: SpiffeID, rhs: SpiffeID) -> Bool { lhs.uri < rhs.uri }
}
