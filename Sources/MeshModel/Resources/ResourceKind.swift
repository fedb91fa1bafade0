/// The kinds meshd accepts: Istio's, with the API groups and versions Istio serves them under,
/// and the core `v1` Secret that holds gateway credentials.
public enum ResourceKind: String, CaseIterable, Hashable, Sendable, Comparable {
    case serviceEntry = "ServiceEntry"
    case workloadEntry = "WorkloadEntry"
    case workloadGroup = "WorkloadGroup"
    case virtualService = "VirtualService"
    case destinationRule = "DestinationRule"
    case sidecar = "Sidecar"
    case gateway = "Gateway"
    case peerAuthentication = "PeerAuthentication"
    case authorizationPolicy = "AuthorizationPolicy"
    case requestAuthentication = "RequestAuthentication"
    case telemetry = "Telemetry"
    case secret = "Secret"

    /// The API group (`networking.istio.io`, `security.istio.io`, `telemetry.istio.io`).
    public var group: String {
        switch self {
        case .serviceEntry, .workloadEntry, .workloadGroup, .virtualService, .destinationRule, .sidecar, .gateway:
            "networking.istio.io"
        case .peerAuthentication, .authorizationPolicy, .requestAuthentication:
            "security.istio.io"
        case .telemetry:
            "telemetry.istio.io"
        case .secret:
            ""
        }
    }

    /// The versions served for the kind, newest first.
    public var versions: [String] {
        switch group {
        case "": ["v1"]
        case "networking.istio.io": ["v1", "v1beta1", "v1alpha3"]
        case "security.istio.io": ["v1", "v1beta1"]
        default: ["v1", "v1alpha1"]
        }
    }

    /// The `apiVersion` meshd writes: the group's newest version.
    public var preferredAPIVersion: String { apiVersions[0] }

    /// Every `apiVersion` the kind is served under, newest first (`v1` alone for the core group).
    public var apiVersions: [String] { versions.map { group.isEmpty ? $0 : "\(group)/\($0)" } }

    /// The REST path of the kind's newest version, as Kubernetes lays it out: `/api/v1` for the
    /// core group, `/apis/{group}/{version}` for the others.
    public var restPrefix: String { group.isEmpty ? "/api/\(versions[0])" : "/apis/\(group)/\(versions[0])" }

    /// The lower-case plural used in REST paths (`virtualservices`).
    public var plural: String {
        switch self {
        case .serviceEntry: "serviceentries"
        case .workloadEntry: "workloadentries"
        case .workloadGroup: "workloadgroups"
        case .virtualService: "virtualservices"
        case .destinationRule: "destinationrules"
        case .sidecar: "sidecars"
        case .gateway: "gateways"
        case .peerAuthentication: "peerauthentications"
        case .authorizationPolicy: "authorizationpolicies"
        case .requestAuthentication: "requestauthentications"
        case .telemetry: "telemetries"
        case .secret: "secrets"
        }
    }

    /// Whether `apiVersion` is one under which Istio serves this kind.
    public func accepts(apiVersion: String) -> Bool {
        apiVersions.contains(apiVersion)
    }

    /// The kind for a REST plural, if any.
    public init?(plural: String) {
        guard let kind = ResourceKind.allCases.first(where: { $0.plural == plural }) else { return nil }
        self = kind
    }

    public static func < (lhs: ResourceKind, rhs: ResourceKind) -> Bool {
        lhs.rawValue < rhs.rawValue
    }
}
