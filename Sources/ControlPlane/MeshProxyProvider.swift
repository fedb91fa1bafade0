public import XDSServer
public import GRPCCore
public import EnvoyAPI
internal import MeshModel
public import MeshConfig
internal import MeshTranslation
internal import XDSCache
public import Logging

/// Admits sidecars and gives each the translation of the current mesh for its workload.
public final class MeshProxyProvider: ProxyConfigProvider {
    /// What the cache shares between proxies: equal keys mean equal configuration.
    struct CacheKey: Hashable, Sendable {
        var revision: UInt64
        var workload: ServiceRegistry.WorkloadID
    }

    private let publisher: SnapshotPublisher
    private let cache = SharedResourceCache<CacheKey>()
    /// Connected proxies and their per-type status.
    public let status: ProxyStatusRegistry
    private let logger: Logger

    /// A provider serving snapshots from `publisher`.
    public init(publisher: SnapshotPublisher, status: ProxyStatusRegistry = ProxyStatusRegistry(), logger: Logger) {
        self.publisher = publisher
        self.status = status
        self.logger = logger
    }

    public func connect(node: Envoy_Config_Core_V3_Node, metadata: Metadata, peer: String) async throws(RPCError) -> any ProxySession {
        let identity: NodeIdentity
        do {
            identity = try NodeIdentity(node: node)
        } catch {
            throw RPCError(code: .invalidArgument, message: error.message)
        }
        let snapshot = publisher.current
        guard snapshot.registry.workload(identity.workload) != nil else {
            throw RPCError(code: .notFound, message: "no WorkloadEntry \(identity.workload) in the mesh configuration (node \(node.id)); add one or fix the node id")
        }
        let initial = resources(for: identity.workload, in: snapshot)
        let connection = status.register(proxyID: node.id, workload: identity.workload.description, peer: peer)
        return Session(
            proxyID: node.id, workload: identity.workload, initialRevision: snapshot.revision, initialResources: initial,
            provider: self, connection: connection)
    }

    /// The configuration of `workload` in `snapshot`, shared between proxies of the same workload.
    func resources(for workload: ServiceRegistry.WorkloadID, in snapshot: MeshSnapshot) -> XDSResourceSet {
        cache.resources(for: CacheKey(revision: snapshot.revision, workload: workload), generation: snapshot.revision) {
            guard let instance = snapshot.registry.workload(workload) else {
                logger.warning("workload removed from the configuration while its proxy is connected; serving it no listeners", metadata: ["workload": "\(workload)"])
                return XDSResourceSet()
            }
            let configuration = SidecarTranslator.translate(snapshot, workload: instance)
            for warning in configuration.warnings {
                logger.warning("\(warning)", metadata: ["workload": "\(workload)", "revision": "\(snapshot.revision)"])
            }
            return configuration.resources
        }
    }

    fileprivate func updates(for workload: ServiceRegistry.WorkloadID, after revision: UInt64) -> some AsyncSequence<XDSResourceSet, Never> & Sendable {
        publisher.updates()
            .filter { $0.revision > revision }
            .map { [self] snapshot in resources(for: workload, in: snapshot) }
    }

    private struct Session: ProxySession {
        let proxyID: String
        let workload: ServiceRegistry.WorkloadID
        let initialRevision: UInt64
        let initialResources: XDSResourceSet
        let provider: MeshProxyProvider
        let connection: UInt64

        func updates() -> any AsyncSequence<XDSResourceSet, Never> & Sendable {
            provider.updates(for: workload, after: initialRevision)
        }

        func record(_ event: ProxyStreamEvent) {
            provider.status.record(event, connection: connection)
        }

        func close() {
            provider.status.unregister(connection)
        }
    }
}
