internal import XDSCache
internal import EnvoyAPI
internal import MeshModel
internal import Synchronization

/// Translated resources kept across proxies and mesh revisions, each keyed by everything it is
/// built from: a resource is encoded once for every proxy whose inputs for it are equal, and
/// built again only when one of its inputs changed. Pass one memo to every translation
/// (``SidecarTranslator/translate(_:workload:memo:)``); it drops what the last two revisions did
/// not use.
///
/// Large inputs (a service, its endpoints, a DestinationRule) enter keys as small identities: the
/// first proxy translated in a view of the mesh looks each one up by value, every later proxy by
/// name within that view. A memo therefore relies on one view — revision and rollout step — always
/// having the same content, which is how snapshots are numbered.
public final class TranslationMemo: Sendable {
    let clusters = GenerationCache<ClusterKey, XDSResource>()
    let loadAssignments = GenerationCache<LoadAssignmentKey, XDSResource>()
    let routeConfigurations = GenerationCache<RouteInputs, XDSResource>()
    let inboundListeners = GenerationCache<InboundInputs, [XDSResource]>()
    let services = Identities<ServiceName, MeshService>()
    let endpoints = Identities<EndpointsName, ClusterInputs.Endpoints>()
    let endpointIdentities = Identities<EndpointsName, ClusterInputs.EndpointIdentities>()
    let rules = Identities<ResourceKey, DestinationRule>()
    let meshTelemetry = Identities<String, MeshTelemetry>()
    /// Key sets of RequestAuthentications by `jwksUri` (or inline text): large, shared by many workloads.
    let keySets = Identities<String, String>()

    /// An empty memo.
    public init() {}

    /// Lookups answered from the memo, lookups that built a resource, and resources held.
    public var statistics: (hits: Int, misses: Int, entries: Int) {
        [clusters.statistics, loadAssignments.statistics, routeConfigurations.statistics, inboundListeners.statistics].reduce((0, 0, 0)) { ($0.0 + $1.hits, $0.1 + $1.misses, $0.2 + $1.entries) }
    }
}

/// A service by name within one view of the mesh.
struct ServiceName: Hashable, Sendable {
    var hostname: String
    var namespace: String
}

/// A service's endpoints on one port, by name within one view of the mesh.
struct EndpointsName: Hashable, Sendable {
    var service: ServiceName
    var port: UInt32
}

/// Exact small identities of values: equal values get the same id while they are in use, and an
/// id is never given to another value. A value is found by its name within one view of the mesh
/// (hashing a few strings), and by value only the first time in each view.
final class Identities<Name: Hashable & Sendable, Value: Hashable & Sendable>: Sendable {
    struct ViewName: Hashable, Sendable {
        var revision: UInt64
        var step: UInt64
        var name: Name
    }

    private let byName = GenerationCache<ViewName, Int>()
    private let byValue = GenerationCache<Value, Int>()
    private let lastID = Atomic<Int>(0)

    /// The id of the value called `name` in `snapshot`; `value` gives it when the view has not
    /// named it before.
    func id(of name: Name, in snapshot: MeshSnapshot, value: () -> Value) -> Int {
        byName.value(for: ViewName(revision: snapshot.revision, step: snapshot.rolloutStep, name: name), generation: snapshot.revision) {
            byValue.value(for: value(), generation: snapshot.revision) { lastID.add(1, ordering: .relaxed).newValue }
        }
    }
}

/// The identities a cluster is keyed by (`endpoints`: of ``ClusterInputs/EndpointIdentities`` when the
/// cluster has a load assignment of its own, else of its endpoints).
struct ClusterKey: Hashable, Sendable {
    var service: Int
    var port: UInt32
    var subset: String?
    var rule: Int?
    var bind: UpstreamBind.ClusterBind
    var metrics: Bool
    var trustDomain: String
    var fips: Bool
    var endpoints: Int
    /// The client's ``LocalityView``, for clusters that carry their endpoints.
    var locality: LocalityView?
}

/// The identities a load assignment is keyed by (of the client, only its ``LocalityView``, so
/// proxies share it).
struct LoadAssignmentKey: Hashable, Sendable {
    var service: Int
    var port: UInt32
    var subset: String?
    var subsetLabels: [String: String]?
    var endpoints: Int
    var locality: LocalityView?
}
