/// What a proxy last reported of its workload's readiness probe (the WorkloadGroup's `probe`), as
/// Istio's agent reports it: healthy, or unhealthy with the probe's error.
public struct WorkloadHealth: Hashable, Sendable, Codable {
    /// Whether the probe passes.
    public var healthy: Bool
    /// Why it fails (the prober's words), when it does.
    public var message: String?

    /// A report.
    public init(healthy: Bool, message: String? = nil) {
        self.healthy = healthy
        self.message = healthy ? nil : message
    }
}

/// The annotations Istio writes on a WorkloadEntry it made for a proxy of a WorkloadGroup, which
/// meshd writes the same way.
public enum AutoRegistration {
    /// The WorkloadGroup (in the entry's namespace) the entry was made from.
    public static let groupAnnotation = "istio.io/autoRegistrationGroup"
    /// The control plane instance that keeps the entry.
    public static let controllerAnnotation = "istio.io/workloadController"
    /// When its proxy last connected (RFC 3339 with nanoseconds).
    public static let connectedAtAnnotation = "istio.io/connectedAt"
    /// When its proxy's last connection closed; the entry goes after the grace period.
    public static let disconnectedAtAnnotation = "istio.io/disconnectedAt"
    /// The node metadata key naming the group a proxy registers into (`AUTO_REGISTER_GROUP`).
    public static let nodeMetadataKey = "AUTO_REGISTER_GROUP"

    /// The name Istio gives the entry of a proxy at `address` in `group`: `<group>-<address>`
    /// with `:` made `-` (IPv6), so that one address in one group has one entry.
    public static func entryName(group: String, address: String) -> String {
        "\(group)-" + String(address.map { $0 == ":" ? "-" : $0 })
    }
}

extension MeshResource {
    /// The WorkloadGroup (in its namespace) this WorkloadEntry was auto-registered from, if it was.
    public var autoRegistrationGroup: String? {
        guard kind == .workloadEntry, let group = metadata.annotations[AutoRegistration.groupAnnotation], !group.isEmpty else { return nil }
        return group
    }
}
