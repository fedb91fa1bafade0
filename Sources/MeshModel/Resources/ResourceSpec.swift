/// The `spec` of a resource, typed by its kind.
public enum ResourceSpec: Hashable, Sendable {
    case serviceEntry(ServiceEntry)
    case workloadEntry(WorkloadEntry)
    case workloadGroup(WorkloadGroup)
    case virtualService(VirtualService)
    case destinationRule(DestinationRule)
    case sidecar(Sidecar)
    case gateway(Gateway)
    case peerAuthentication(PeerAuthentication)
    case authorizationPolicy(AuthorizationPolicy)
    case requestAuthentication(RequestAuthentication)
    case telemetry(Telemetry)
    /// A Secret's body (it has no `spec`: `type`, `data` and `stringData` sit beside `metadata`).
    case secret(CredentialSecret)

    /// The kind this spec belongs to.
    public var kind: ResourceKind {
        switch self {
        case .serviceEntry: .serviceEntry
        case .workloadEntry: .workloadEntry
        case .workloadGroup: .workloadGroup
        case .virtualService: .virtualService
        case .destinationRule: .destinationRule
        case .sidecar: .sidecar
        case .gateway: .gateway
        case .peerAuthentication: .peerAuthentication
        case .authorizationPolicy: .authorizationPolicy
        case .requestAuthentication: .requestAuthentication
        case .telemetry: .telemetry
        case .secret: .secret
        }
    }

    /// Decodes the spec of `kind` strictly.
    public init(kind: ResourceKind, config source: ConfigValue, at path: FieldPath) throws(SchemaError) {
        switch kind {
        case .serviceEntry: self = .serviceEntry(try ServiceEntry(config: source, at: path))
        case .workloadEntry: self = .workloadEntry(try WorkloadEntry(config: source, at: path))
        case .workloadGroup: self = .workloadGroup(try WorkloadGroup(config: source, at: path))
        case .virtualService: self = .virtualService(try VirtualService(config: source, at: path))
        case .destinationRule: self = .destinationRule(try DestinationRule(config: source, at: path))
        case .sidecar: self = .sidecar(try Sidecar(config: source, at: path))
        case .gateway: self = .gateway(try Gateway(config: source, at: path))
        case .peerAuthentication: self = .peerAuthentication(try PeerAuthentication(config: source, at: path))
        case .authorizationPolicy: self = .authorizationPolicy(try AuthorizationPolicy(config: source, at: path))
        case .requestAuthentication: self = .requestAuthentication(try RequestAuthentication(config: source, at: path))
        case .telemetry: self = .telemetry(try Telemetry(config: source, at: path))
        case .secret: self = .secret(try CredentialSecret(config: source, at: path))
        }
    }

    /// The spec in its YAML/JSON shape.
    public var configValue: ConfigValue {
        switch self {
        case .serviceEntry(let spec): spec.configValue
        case .workloadEntry(let spec): spec.configValue
        case .workloadGroup(let spec): spec.configValue
        case .virtualService(let spec): spec.configValue
        case .destinationRule(let spec): spec.configValue
        case .sidecar(let spec): spec.configValue
        case .gateway(let spec): spec.configValue
        case .peerAuthentication(let spec): spec.configValue
        case .authorizationPolicy(let spec): spec.configValue
        case .requestAuthentication(let spec): spec.configValue
        case .telemetry(let spec): spec.configValue
        case .secret(let secret): secret.configValue
        }
    }
}
