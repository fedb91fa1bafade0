public import XDSServer
public import GRPCCore
public import EnvoyAPI
public import MeshConfig
public import Logging
internal import MeshModel
internal import MeshTranslation
internal import XDSCache
internal import Synchronization

/// Admits sidecars and gives each the translation of the current mesh for its workload, plus the
/// SDS secrets of its own identity.
///
/// A stream must carry a token (`authorization: Bearer <token>`, sent by Envoy as gRPC initial
/// metadata) minted for the workload's namespace and service account; node metadata that
/// disagrees with the token is refused. Only with `allowUnauthenticated` (a development flag) is a
/// stream without a token admitted, with the identity of its WorkloadEntry.
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
    private let tokens: TokenAuthority?
    private let certificates: ProxyCertificates?
    private let allowUnauthenticated: Bool
    private let logger: Logger
    private let sessions = Mutex<[UInt64: Session]>([:])

    /// A provider serving snapshots from `publisher`; without `certificates` no secrets are served.
    public init(
        publisher: SnapshotPublisher, tokens: TokenAuthority?, certificates: ProxyCertificates?, allowUnauthenticated: Bool,
        status: ProxyStatusRegistry = ProxyStatusRegistry(), logger: Logger
    ) {
        self.publisher = publisher
        self.tokens = tokens
        self.certificates = certificates
        self.allowUnauthenticated = allowUnauthenticated
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
        guard let workload = snapshot.registry.workload(identity.workload) else {
            throw RPCError(code: .notFound, message: "no WorkloadEntry \(identity.workload) in the mesh configuration (node \(node.id)); add one or fix the node id")
        }
        let tokenID = try authorize(identity: identity, workload: workload, metadata: metadata)
        let spiffe = workload.identity(trustDomain: snapshot.settings.trustDomain)
        var certificate: ProxyCertificates.Entry? = nil
        if let certificates {
            do {
                certificate = try certificates.certificate(proxy: node.id, identity: spiffe)
            } catch {
                logger.error("cannot issue the proxy's certificate", metadata: ["node": "\(node.id)", "error": "\(error)"])
                throw RPCError(code: .unavailable, message: "meshd cannot issue a certificate right now; retry")
            }
        }
        let connection = status.register(proxyID: node.id, workload: identity.workload.description, peer: peer)
        let session = Session(provider: self, proxyID: node.id, workload: identity.workload, identity: spiffe, tokenID: tokenID, connection: connection, certificate: certificate, snapshot: snapshot)
        sessions.withLock { $0[connection] = session }
        return session
    }

    /// Checks the stream's token against the node; returns the token id (nil when unauthenticated
    /// streams are allowed and none was sent).
    private func authorize(identity: NodeIdentity, workload: WorkloadInstance, metadata: Metadata) throws(RPCError) -> String? {
        let header = metadata[stringValues: "authorization"].first { _ in true }
        guard let token = TokenAuthority.bearer(header) else {
            if allowUnauthenticated { return nil }
            throw RPCError(code: .unauthenticated, message: "no token: send `authorization: Bearer <token>` (meshctl token create, or meshctl bootstrap which embeds one)")
        }
        guard let tokens else { throw RPCError(code: .unauthenticated, message: "tokens are not enabled") }
        let record: TokenAuthority.Record
        switch tokens.authenticate(token) {
        case .success(let found): record = found
        case .failure(.unknown): throw RPCError(code: .unauthenticated, message: "unknown token")
        case .failure(.revoked(let id)): throw RPCError(code: .unauthenticated, message: "token \(id) was revoked")
        case .failure(.expired(let id)): throw RPCError(code: .unauthenticated, message: "token \(id) has expired")
        }
        guard record.namespace == workload.namespace, record.serviceAccount == workload.serviceAccount else {
            throw RPCError(code: .permissionDenied, message: "token \(record.id) is for \(record.namespace)/\(record.serviceAccount), but workload \(identity.workload) runs as \(workload.namespace)/\(workload.serviceAccount)")
        }
        if let claimed = identity.claimedServiceAccount, claimed != record.serviceAccount {
            throw RPCError(code: .permissionDenied, message: "node metadata SERVICE_ACCOUNT \(claimed) disagrees with token \(record.id) (\(record.serviceAccount))")
        }
        return record.id
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

    /// Ends the streams authenticated with a revoked token.
    func revoked(tokenID: String) {
        for session in sessions.withLock({ Array($0.values) }) where session.tokenID == tokenID {
            session.signal.post { $0.closeReason = RPCError(code: .unauthenticated, message: "token \(tokenID) was revoked") }
        }
    }

    /// Asks every stream to re-check its certificate (after a CA change or at rotation time).
    public func refreshCertificates() {
        for session in sessions.withLock({ Array($0.values) }) {
            session.signal.post { $0.refreshCertificate = true }
        }
    }

    fileprivate func forget(_ connection: UInt64) {
        _ = sessions.withLock { $0.removeValue(forKey: connection) }
        status.unregister(connection)
    }

    /// Wakes a stream with what changed for it; bursts collapse into one wake-up.
    final class Signal: Sendable {
        struct Pending: Sendable {
            var snapshot: MeshSnapshot?
            var refreshCertificate = false
            var closeReason: RPCError?
        }

        let state = Mutex(Pending())
        let stream: AsyncStream<Void>
        private let continuation: AsyncStream<Void>.Continuation

        init() {
            (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        }

        func post(_ change: (inout Pending) -> Void) {
            state.withLock { change(&$0) }
            continuation.yield()
        }

        func take() -> Pending {
            state.withLock { state in
                defer { state = Pending() }
                return state
            }
        }

        func finish() { continuation.finish() }
    }

    private final class Session: ProxySession {
        let provider: MeshProxyProvider
        let proxyID: String
        let workload: ServiceRegistry.WorkloadID
        let identity: SpiffeID
        let tokenID: String?
        let connection: UInt64
        let signal = Signal()
        let initialResources: XDSResourceSet
        private let current: Mutex<(snapshot: MeshSnapshot, certificate: ProxyCertificates.Entry?)>
        private let subscription: UInt64

        init(provider: MeshProxyProvider, proxyID: String, workload: ServiceRegistry.WorkloadID, identity: SpiffeID, tokenID: String?, connection: UInt64, certificate: ProxyCertificates.Entry?, snapshot: MeshSnapshot) {
            self.provider = provider
            self.proxyID = proxyID
            self.workload = workload
            self.identity = identity
            self.tokenID = tokenID
            self.connection = connection
            current = Mutex((snapshot, certificate))
            initialResources = Session.compose(provider: provider, workload: workload, snapshot: snapshot, certificate: certificate)
            let signal = self.signal
            subscription = provider.publisher.subscribe { snapshot in
                signal.post { $0.snapshot = snapshot }
            }
        }

        static func compose(provider: MeshProxyProvider, workload: ServiceRegistry.WorkloadID, snapshot: MeshSnapshot, certificate: ProxyCertificates.Entry?) -> XDSResourceSet {
            var resources = provider.resources(for: workload, in: snapshot)
            if let certificate, let secrets = try? provider.certificates?.secrets(for: certificate) {
                for secret in secrets { resources.insert(secret) }
            }
            return resources
        }

        func updates() -> any AsyncSequence<ProxyUpdate, Never> & Sendable {
            signal.stream.map { [self] _ in next() }
        }

        private func next() -> ProxyUpdate {
            let pending = signal.take()
            if let reason = pending.closeReason { return .close(reason) }
            var (snapshot, certificate) = current.withLock { $0 }
            if let newer = pending.snapshot, newer.revision > snapshot.revision { snapshot = newer }
            if pending.refreshCertificate, let certificates = provider.certificates {
                do {
                    certificate = try certificates.certificate(proxy: proxyID, identity: identity)
                } catch {
                    provider.logger.error("certificate renewal failed; the proxy keeps its current certificate", metadata: ["node": "\(proxyID)", "error": "\(error)"])
                }
            }
            current.withLock { $0 = (snapshot, certificate) }
            return .resources(Session.compose(provider: provider, workload: workload, snapshot: snapshot, certificate: certificate))
        }

        func record(_ event: ProxyStreamEvent) {
            provider.status.record(event, connection: connection)
        }

        func close() {
            provider.publisher.unsubscribe(subscription)
            signal.finish()
            provider.forget(connection)
        }
    }
}
