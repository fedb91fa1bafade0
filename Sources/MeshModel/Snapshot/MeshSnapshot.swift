/// One immutable, revisioned view of the whole mesh configuration: what translation reads.
public struct MeshSnapshot: Sendable {
    /// Increases with every accepted change.
    public let revision: UInt64
    /// Increases with every step of an mTLS rollout (``MTLSStaging``); 0 for a snapshot as loaded.
    public private(set) var rolloutStep: UInt64 = 0
    /// The mTLS modes served otherwise than configured while a change is rolled out in order.
    public private(set) var mtlsStaging = MTLSStaging()
    /// Workloads gone from the configuration whose proxies are still served as if they were there
    /// (by their last WorkloadEntry), until every other proxy stopped sending to them.
    public private(set) var retiring: [ServiceRegistry.WorkloadID: WorkloadInstance] = [:]
    /// Mesh-wide settings.
    public let settings: MeshSettings
    /// The mesh's telemetry settings (`mesh.yaml`).
    public let mesh: MeshTelemetry
    /// Every resource, by key.
    public let resources: [ResourceKey: MeshResource]
    /// The service registry derived from ServiceEntries and WorkloadEntries.
    public let registry: ServiceRegistry

    /// ServiceEntries, sorted by key.
    public let serviceEntries: [Configured<ServiceEntry>]
    /// WorkloadEntries, sorted by key.
    public let workloadEntries: [Configured<WorkloadEntry>]
    /// WorkloadGroups, by namespace and name.
    public let workloadGroups: [ServiceRegistry.WorkloadID: Configured<WorkloadGroup>]
    /// What the proxies of auto-registered workloads last reported of their probes.
    public let health: [ServiceRegistry.WorkloadID: WorkloadHealth]
    /// VirtualServices, sorted by key.
    public let virtualServices: [Configured<VirtualService>]
    /// DestinationRules, sorted by key.
    public let destinationRules: [Configured<DestinationRule>]
    /// DestinationRules by namespace, each list sorted by key.
    public let destinationRulesByNamespace: [String: [Configured<DestinationRule>]]
    /// Sidecars, sorted by key.
    public let sidecars: [Configured<Sidecar>]
    /// Gateways, sorted by key.
    public let gateways: [Configured<Gateway>]
    /// PeerAuthentications, sorted by key.
    public let peerAuthentications: [Configured<PeerAuthentication>]
    /// AuthorizationPolicies, sorted by key.
    public let authorizationPolicies: [Configured<AuthorizationPolicy>]
    /// Telemetry resources, sorted by key.
    public let telemetries: [Configured<Telemetry>]
    /// RequestAuthentications, sorted by key.
    public let requestAuthentications: [Configured<RequestAuthentication>]
    /// The JSON Web Key Sets meshd fetched for the `jwksUri`s of RequestAuthentications, by URI
    /// (the last good copy of each; a URI not fetched yet has none).
    public let jwks: [String: String]

    /// Builds a snapshot of `resources` (later duplicates of a key replace earlier ones).
    /// `health`: the probe reports of auto-registered workloads (see ``isReady(_:)``).
    public init(
        revision: UInt64, settings: MeshSettings = MeshSettings(), mesh: MeshTelemetry = .default, resources: [MeshResource], jwks: [String: String] = [:],
        health: [ServiceRegistry.WorkloadID: WorkloadHealth] = [:]
    ) {
        self.revision = revision
        self.jwks = jwks
        self.health = health
        self.settings = settings
        self.mesh = mesh
        var byKey: [ResourceKey: MeshResource] = [:]
        for resource in resources { byKey[resource.key] = resource }
        self.resources = byKey
        let sorted = byKey.keys.sorted().map { byKey[$0]! }
        var serviceEntries: [Configured<ServiceEntry>] = []
        var workloadEntries: [Configured<WorkloadEntry>] = []
        var workloadGroups: [ServiceRegistry.WorkloadID: Configured<WorkloadGroup>] = [:]
        var virtualServices: [Configured<VirtualService>] = []
        var destinationRules: [Configured<DestinationRule>] = []
        var sidecars: [Configured<Sidecar>] = []
        var gateways: [Configured<Gateway>] = []
        var peerAuthentications: [Configured<PeerAuthentication>] = []
        var authorizationPolicies: [Configured<AuthorizationPolicy>] = []
        var telemetries: [Configured<Telemetry>] = []
        var requestAuthentications: [Configured<RequestAuthentication>] = []
        for resource in sorted {
            let meta = resource.metadata
            switch resource.spec {
            case .serviceEntry(let spec): serviceEntries.append(Configured(metadata: meta, spec: spec, kind: .serviceEntry))
            case .workloadEntry(let spec): workloadEntries.append(Configured(metadata: meta, spec: spec, kind: .workloadEntry))
            case .workloadGroup(let spec):
                workloadGroups[ServiceRegistry.WorkloadID(namespace: meta.namespace, name: meta.name)] = Configured(metadata: meta, spec: spec, kind: .workloadGroup)
            case .virtualService(let spec): virtualServices.append(Configured(metadata: meta, spec: spec, kind: .virtualService))
            case .destinationRule(let spec): destinationRules.append(Configured(metadata: meta, spec: spec, kind: .destinationRule))
            case .sidecar(let spec): sidecars.append(Configured(metadata: meta, spec: spec, kind: .sidecar))
            case .gateway(let spec): gateways.append(Configured(metadata: meta, spec: spec, kind: .gateway))
            case .peerAuthentication(let spec): peerAuthentications.append(Configured(metadata: meta, spec: spec, kind: .peerAuthentication))
            case .authorizationPolicy(let spec): authorizationPolicies.append(Configured(metadata: meta, spec: spec, kind: .authorizationPolicy))
            case .telemetry(let spec): telemetries.append(Configured(metadata: meta, spec: spec, kind: .telemetry))
            case .requestAuthentication(let spec): requestAuthentications.append(Configured(metadata: meta, spec: spec, kind: .requestAuthentication))
            case .secret: break
            }
        }
        self.serviceEntries = serviceEntries
        self.workloadEntries = workloadEntries
        self.workloadGroups = workloadGroups
        self.virtualServices = virtualServices
        self.destinationRules = destinationRules
        destinationRulesByNamespace = Dictionary(grouping: destinationRules, by: \.metadata.namespace)
        self.sidecars = sidecars
        self.gateways = gateways
        self.peerAuthentications = peerAuthentications
        self.authorizationPolicies = authorizationPolicies
        self.telemetries = telemetries
        self.requestAuthentications = requestAuthentications
        let unready = Set(workloadEntries.compactMap { entry -> ServiceRegistry.WorkloadID? in
            let id = ServiceRegistry.WorkloadID(namespace: entry.metadata.namespace, name: entry.metadata.name)
            return Self.isReady(entry.metadata, report: health[id], groups: workloadGroups) ? nil : id
        })
        self.registry = ServiceRegistry(serviceEntries: serviceEntries, workloadEntries: workloadEntries, unready: unready, domainSuffix: settings.domainSuffix)
    }

    /// Whether the workload of a WorkloadEntry takes traffic: an auto-registered entry whose
    /// group has a probe is ready once its proxy reported the probe passing, and not while it
    /// reports it failing (Istio's agent and istiod); any other entry is always ready.
    private static func isReady(
        _ metadata: ObjectMeta, report: WorkloadHealth?, groups: [ServiceRegistry.WorkloadID: Configured<WorkloadGroup>]
    ) -> Bool {
        guard let group = metadata.annotations[AutoRegistration.groupAnnotation], !group.isEmpty else { return true }
        if let report { return report.healthy }
        return groups[ServiceRegistry.WorkloadID(namespace: metadata.namespace, name: group)]?.spec.probe == nil
    }

    /// The readiness of `workload` as Istio shows it on a WorkloadEntry (its `Healthy`
    /// condition): `nil` for a workload whose group has no probe and that sent no report.
    public func healthCondition(of workload: ServiceRegistry.WorkloadID) -> (status: String, message: String?)? {
        let key = ResourceKey(kind: .workloadEntry, namespace: workload.namespace, name: workload.name)
        guard let group = resources[key]?.autoRegistrationGroup else { return nil }
        if let report = health[workload] { return (report.healthy ? "True" : "False", report.message) }
        guard workloadGroups[ServiceRegistry.WorkloadID(namespace: workload.namespace, name: group)]?.spec.probe != nil else { return nil }
        return ("Unknown", "no probe result yet: the workload takes no traffic until its proxy reports the probe passing")
    }

    /// Whether `workload` takes traffic (see ``MeshSnapshot/init(revision:settings:mesh:resources:jwks:health:)``).
    public func isReady(_ workload: ServiceRegistry.WorkloadID) -> Bool {
        !registry.unready.contains(workload)
    }

    /// The Secret `name` of `namespace`, if there is one.
    public func credential(_ name: String, in namespace: String) -> CredentialSecret? {
        guard case .secret(let secret)? = resources[ResourceKey(kind: .secret, namespace: namespace, name: name)]?.spec else { return nil }
        return secret
    }

    /// An empty mesh.
    public static let empty = MeshSnapshot(revision: 0, resources: [])

    /// This configuration served with `staging` and `retiring` at rollout step `step`.
    public func staged(_ staging: MTLSStaging, retiring: [ServiceRegistry.WorkloadID: WorkloadInstance] = [:], step: UInt64) -> MeshSnapshot {
        var copy = self
        copy.mtlsStaging = staging
        copy.retiring = retiring
        copy.rolloutStep = step
        return copy
    }

    /// Whether this is a later view than `other`: a newer revision, or a later rollout step.
    public func isNewer(than other: MeshSnapshot) -> Bool {
        (revision, rolloutStep) > (other.revision, other.rolloutStep)
    }

    /// All resources, sorted by key.
    public var allResources: [MeshResource] {
        resources.keys.sorted().map { resources[$0]! }
    }

    /// This configuration with `candidates` added (replacing resources of the same kind,
    /// namespace and name), nothing else changed: the next revision of it, never served (what a
    /// dry run, `analyze -f` or a suggested Sidecar is judged on).
    public func adding(_ candidates: [MeshResource]) -> MeshSnapshot {
        var byKey = Dictionary(allResources.map { ($0.key, $0) }, uniquingKeysWith: { $1 })
        for resource in candidates { byKey[resource.key] = resource }
        return MeshSnapshot(revision: revision + 1, settings: settings, mesh: mesh, resources: byKey.values.sorted { $0.key < $1.key }, jwks: jwks, health: health)
    }
}
