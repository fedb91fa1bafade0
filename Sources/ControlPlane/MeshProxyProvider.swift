public import XDSServer
public import GRPCCore
public import EnvoyAPI
public import MeshConfig
public import Logging
internal import MeshModel
internal import MeshTranslation
internal import XDSCache
internal import Synchronization
internal import AdminAPI
public import CertificateAuthority
public import Metrics
public import Foundation

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
        var rolloutStep: UInt64
        var workload: ServiceRegistry.WorkloadID
        var upstreamBind: UpstreamBind
    }

    private let publisher: SnapshotPublisher
    private let cache = SharedResourceCache<CacheKey>()
    /// Resources shared between workloads and kept across revisions, by their inputs.
    private let memo = TranslationMemo()
    /// Connected proxies and their per-type status.
    public let status: ProxyStatusRegistry
    private let tokens: TokenAuthority?
    /// meshd's admin token, refused on ADS as the other admin-API tokens are (PERMISSION_DENIED).
    private let adminCredential: AdminCredential?
    private let certificates: ProxyCertificates?
    private let allowUnauthenticated: Bool
    private let logger: Logger
    private let clock: @Sendable () -> Date
    private let sessions = Mutex<[UInt64: Session]>([:])
    private let rotations: Counter
    private let rotationFailures: Counter
    private let admission: RateLimiter?
    private let maximumConnectionAge: Duration?
    private let pushLimiter: PushLimiter
    /// From publication to responses written.
    let pushTimes: PushTimes

    /// A provider serving snapshots from `publisher`; without `certificates` no secrets are served.
    public init(
        publisher: SnapshotPublisher, tokens: TokenAuthority?, certificates: ProxyCertificates?, allowUnauthenticated: Bool,
        status: ProxyStatusRegistry = ProxyStatusRegistry(), clock: @escaping @Sendable () -> Date = Date.init,
        limits: Limits = Limits(), adminCredential: AdminCredential? = nil, logger: Logger, metrics: any MetricsFactory
    ) {
        self.adminCredential = adminCredential
        admission = limits.connectionsPerSecond > 0
            ? RateLimiter(ratePerSecond: limits.connectionsPerSecond, burst: limits.connectionBurst, clock: clock) : nil
        maximumConnectionAge = limits.maximumConnectionAge
        pushLimiter = PushLimiter(limit: limits.pushConcurrency)
        self.publisher = publisher
        self.tokens = tokens
        self.certificates = certificates
        self.allowUnauthenticated = allowUnauthenticated
        self.status = status
        self.clock = clock
        self.logger = logger
        rotations = Counter(label: "meshd_workload_cert_rotations_total", dimensions: [], factory: metrics)
        rotationFailures = Counter(label: "meshd_workload_cert_rotation_failures_total", dimensions: [], factory: metrics)
        let pushTimes = PushTimes(metrics: metrics)
        self.pushTimes = pushTimes
        _ = publisher.subscribe { snapshot in pushTimes.published(PushTimes.Key(snapshot)) }
    }

    /// Back-pressure and overload settings.
    public struct Limits: Sendable {
        /// New streams admitted per second (0: no limit); beyond, RESOURCE_EXHAUSTED and Envoy
        /// retries with its back-off.
        public var connectionsPerSecond: Double
        /// New streams admitted at once.
        public var connectionBurst: Int
        /// Streams end (UNAVAILABLE) after this age ±10 %, so proxies spread over replicas.
        public var maximumConnectionAge: Duration?
        /// How many proxies' configurations are computed at once.
        public var pushConcurrency: Int

        /// Limits; the defaults admit 100 new streams per second (bursts of 200), never age
        /// streams, and compute two configurations per core at once.
        public init(connectionsPerSecond: Double = 100, connectionBurst: Int = 200, maximumConnectionAge: Duration? = nil, pushConcurrency: Int = 2 * ProcessInfo.processInfo.activeProcessorCount) {
            self.connectionsPerSecond = connectionsPerSecond
            self.connectionBurst = connectionBurst
            self.maximumConnectionAge = maximumConnectionAge
            self.pushConcurrency = pushConcurrency
        }
    }

    public func connect(node: Envoy_Config_Core_V3_Node, metadata: Metadata, peer: String) async throws(RPCError) -> any ProxySession {
        if let admission, !admission.allow("xds") {
            throw RPCError(code: .resourceExhausted, message: "too many new xDS streams at once; retry with back-off")
        }
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
        if let certificates, identity.certificateDirectory == nil {
            do {
                certificate = try certificates.certificate(workload: identity.workload.description, identity: spiffe)
            } catch {
                logger.error("cannot issue the proxy's certificate", metadata: ["node": "\(node.id)", "error": "\(error)"])
                throw RPCError(code: .unavailable, message: "meshd cannot issue a certificate right now; retry")
            }
        }
        let connection = status.register(proxyID: node.id, workload: identity.workload.description, peer: peer)
        let session = Session(
            provider: self, proxyID: node.id, workload: identity.workload, identity: spiffe, certificateDirectory: identity.certificateDirectory, upstreamBind: identity.upstreamBind,
            tokenID: tokenID, connection: connection, certificate: certificate, snapshot: snapshot)
        sessions.withLock { $0[connection] = session }
        if let age = maximumConnectionAge {
            session.closeAfter(age * Double.random(in: 0.9...1.1))
        }
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
        case .failure(.unknown) where adminCredential?.accepts(token) == true:
            throw RPCError(code: .permissionDenied, message: "the admin token is for the admin API, not a workload token")
        case .failure(.unknown): throw RPCError(code: .unauthenticated, message: "unknown token")
        case .failure(.revoked(let id)): throw RPCError(code: .unauthenticated, message: "token \(id) was revoked")
        case .failure(.expired(let id)): throw RPCError(code: .unauthenticated, message: "token \(id) has expired")
        }
        guard record.isWorkload else {
            throw RPCError(code: .permissionDenied, message: "token \(record.id) is a \(record.effectiveRole) token for the admin API, not a workload token")
        }
        guard record.namespace == workload.namespace, record.serviceAccount == workload.serviceAccount else {
            throw RPCError(code: .permissionDenied, message: "token \(record.id) is for \(record.namespace)/\(record.serviceAccount), but workload \(identity.workload) runs as \(workload.namespace)/\(workload.serviceAccount)")
        }
        if let claimed = identity.claimedServiceAccount, claimed != record.serviceAccount {
            throw RPCError(code: .permissionDenied, message: "node metadata SERVICE_ACCOUNT \(claimed) disagrees with token \(record.id) (\(record.serviceAccount))")
        }
        return record.id
    }

    /// The configuration of `workload` in `snapshot`, shared between proxies of the same workload
    /// (a workload being retired is translated from its last WorkloadEntry).
    func resources(for workload: ServiceRegistry.WorkloadID, upstreamBind: UpstreamBind, in snapshot: MeshSnapshot) -> XDSResourceSet {
        let key = CacheKey(revision: snapshot.revision, rolloutStep: snapshot.rolloutStep, workload: workload, upstreamBind: upstreamBind)
        return cache.resources(for: key, generation: snapshot.revision) {
            guard let instance = snapshot.registry.workload(workload) ?? snapshot.retiring[workload] else {
                logger.warning("workload removed from the configuration while its proxy is connected; serving it no listeners", metadata: ["workload": "\(workload)"])
                return XDSResourceSet()
            }
            let configuration = SidecarTranslator.translate(snapshot, workload: instance, upstreamBind: upstreamBind, memo: memo)
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

    /// Replaces the certificates that are due (rotation point reached, or not from the signer in
    /// use) on their open streams; a proxy whose last attempt failed waits for its back-off.
    public func rotateDue() {
        guard let certificates else { return }
        let now = clock()
        let signerKey = certificates.signerKey
        for session in sessions.withLock({ Array($0.values) }) where session.isDue(certificates, now: now, signerKey: signerKey) {
            session.signal.post { $0.refreshCertificate = true }
        }
    }

    /// The workloads with a proxy connected.
    var connectedWorkloads: Set<ServiceRegistry.WorkloadID> {
        Set(sessions.withLock { $0.values.map(\.workload) })
    }

    /// The proxies that do not yet hold, acknowledged, rollout step `step` or later, among those
    /// `wait` names (node ids, sorted).
    func unsettledProxies(step: UInt64, wait: MTLSRollout.Wait) -> [String] {
        sessions.withLock { Array($0.values) }.filter { session in
            let concerned = wait.servers.contains(session.workload) || wait.clientsOf.contains { $0 != session.workload }
            return concerned && !session.isSettled(atLeast: step)
        }.map(\.proxyID).sorted()
    }

    /// Sends every proxy its secrets again (after the trust bundle changed).
    public func resendSecrets() {
        for session in sessions.withLock({ Array($0.values) }) {
            session.signal.post { $0.resendSecrets = true }
        }
    }

    /// What each connected proxy has acknowledged, as a root rotation sees it.
    public func rotationView(_ rotation: RootRotation) -> [RootRotation.Observation.Proxy] {
        sessions.withLock { Array($0.values) }.map { $0.rotationView(rotation) }
    }

    /// What meshd last composed for the newest stream of `proxyID` (`nil`: not connected).
    public func lastResources(proxyID: String) -> XDSResourceSet? {
        sessions.withLock { sessions in
            sessions.filter { $0.value.proxyID == proxyID }.max { $0.key < $1.key }?.value
        }?.lastResources
    }

    /// Serials of the certificates connected proxies hold (meshd-made ones).
    public var connectedSerials: Set<String> {
        Set(sessions.withLock { Array($0.values) }.compactMap { $0.currentCertificate?.serial })
    }

    /// The earliest end of validity among connected proxies' certificates.
    public var earliestCertificateExpiry: Date? {
        sessions.withLock { Array($0.values) }.compactMap { $0.currentCertificate?.notAfter }.min()
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
            var resendSecrets = false
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

    /// What a proxy was sent of its secrets: used to tell, from an acknowledged version, which
    /// bundle and which signer's leaf the proxy now holds.
    struct SentSecrets: Sendable {
        var certificate: XDSResource?
        var root: XDSResource?
        var roots: Set<String>
        var issuerKey: String?

        /// Whether `version` acknowledges the bundle and/or the certificate.
        func match(_ version: String) -> (root: Bool, certificate: Bool)? {
            let both = [certificate, root].compactMap { $0 }
            if SotWStreamStateMachine.version(of: both) == version { return (root != nil, certificate != nil) }
            if let root, SotWStreamStateMachine.version(of: [root]) == version { return (true, false) }
            if let certificate, SotWStreamStateMachine.version(of: [certificate]) == version { return (false, true) }
            return nil
        }
    }

    private final class Session: ProxySession {
        struct State {
            var snapshot: MeshSnapshot
            var certificate: ProxyCertificates.Entry?
            var failures = 0
            var retryAt = Date.distantPast
            /// Recent compositions, newest last.
            var sent: [SentSecrets] = []
            var acknowledgedRoots: Set<String> = []
            var acknowledgedIssuer: String?
            var lastResources = XDSResourceSet()
        }

        let provider: MeshProxyProvider
        let proxyID: String
        let workload: ServiceRegistry.WorkloadID
        let identity: SpiffeID
        let certificateDirectory: String?
        let upstreamBind: UpstreamBind
        let tokenID: String?
        let connection: UInt64
        let signal = Signal()
        let initialResources: XDSResourceSet
        private let state: Mutex<State>
        private let subscription: UInt64
        private let ageTimer = Mutex<Task<Void, any Error>?>(nil)

        init(
            provider: MeshProxyProvider, proxyID: String, workload: ServiceRegistry.WorkloadID, identity: SpiffeID, certificateDirectory: String?, upstreamBind: UpstreamBind,
            tokenID: String?, connection: UInt64, certificate: ProxyCertificates.Entry?, snapshot: MeshSnapshot
        ) {
            self.provider = provider
            self.proxyID = proxyID
            self.workload = workload
            self.identity = identity
            self.certificateDirectory = certificateDirectory
            self.upstreamBind = upstreamBind
            self.tokenID = tokenID
            self.connection = connection
            progress = Mutex(Progress(handled: snapshot.rolloutStep))
            var initial = State(snapshot: snapshot, certificate: certificate)
            initialResources = Session.compose(provider: provider, workload: workload, upstreamBind: upstreamBind, directory: certificateDirectory, state: &initial)
            initial.lastResources = initialResources
            state = Mutex(initial)
            let signal = self.signal
            subscription = provider.publisher.subscribe { snapshot in
                signal.post { $0.snapshot = snapshot }
            }
            // A configuration published between the admission (which read `snapshot`) and the
            // subscription would otherwise never reach this proxy.
            let latest = provider.publisher.current
            if latest.isNewer(than: snapshot) { signal.post { $0.snapshot = latest } }
        }

        /// How far the stream got: the rollout steps composed and not yet handled by the stream,
        /// the newest handled, and whether every response since was answered.
        struct Progress {
            /// Per composed update: its rollout step, and its configuration when that was new
            /// to the proxy (timed once the stream wrote it).
            var composed: [(step: UInt64, configuration: PushTimes.Key?)] = []
            var handled: UInt64
            var settled = false
            /// Types whose newest response the proxy rejected.
            var rejected: Set<String> = []
        }
        private let progress: Mutex<Progress>

        func processed(update: Bool, settled: Bool) {
            let written = progress.withLock { progress -> PushTimes.Key? in
                progress.settled = settled
                guard update, !progress.composed.isEmpty else { return nil }
                let update = progress.composed.removeFirst()
                progress.handled = max(progress.handled, update.step)
                return update.configuration
            }
            if let written { provider.pushTimes.written(written) }
        }

        /// Whether the proxy holds, acknowledged (not rejected), a configuration of rollout step
        /// `step` or later.
        func isSettled(atLeast step: UInt64) -> Bool {
            progress.withLock { $0.handled >= step && $0.settled && $0.composed.isEmpty && $0.rejected.isEmpty }
        }

        var currentCertificate: ProxyCertificates.Entry? { state.withLock { $0.certificate } }
        var lastResources: XDSResourceSet { state.withLock { $0.lastResources } }

        func isDue(_ certificates: ProxyCertificates, now: Date, signerKey: String) -> Bool {
            state.withLock { state in
                guard let entry = state.certificate, now >= state.retryAt else { return false }
                return certificates.isDue(entry, now: now, signerKey: signerKey)
            }
        }

        func rotationView(_ rotation: RootRotation) -> RootRotation.Observation.Proxy {
            state.withLock { state in
                RootRotation.Observation.Proxy(
                    id: proxyID, trustsNewRoots: Set(rotation.newRoots).isSubset(of: state.acknowledgedRoots),
                    // A proxy with its own certificate files holds CSR-issued leaves, which the
                    // rotation tracks through the ledger.
                    usesNewSigner: certificateDirectory != nil || state.acknowledgedIssuer == rotation.newSignerKey)
            }
        }

        /// The proxy's resources: its workload's translation plus its secrets; remembers the secrets.
        static func compose(
            provider: MeshProxyProvider, workload: ServiceRegistry.WorkloadID, upstreamBind: UpstreamBind, directory: String?, state: inout State
        ) -> XDSResourceSet {
            var resources = provider.resources(for: workload, upstreamBind: upstreamBind, in: state.snapshot)
            guard let certificates = provider.certificates else { return resources }
            var sent = SentSecrets(certificate: nil, root: nil, roots: [], issuerKey: nil)
            if let directory {
                sent.certificate = ProxyCertificates.fileCertificateSecret(directory: directory)
            } else if let entry = state.certificate {
                sent.certificate = certificates.certificateSecret(for: entry)
                sent.issuerKey = entry.issuerKey
            }
            if let root = try? certificates.rootSecret() {
                sent.root = root.resource
                sent.roots = root.roots
            }
            for secret in [sent.certificate, sent.root].compactMap({ $0 }) { resources.insert(secret) }
            // Remember each distinct composition of the secrets (most pushes change none).
            if state.sent.last.map({ $0.certificate != sent.certificate || $0.root != sent.root || $0.roots != sent.roots }) ?? true {
                state.sent.append(sent)
                if state.sent.count > 8 { state.sent.removeFirst(state.sent.count - 8) }
            }
            return resources
        }

        func updates() -> any AsyncSequence<ProxyUpdate, Never> & Sendable {
            signal.stream.map { [self] _ in await provider.pushLimiter.run { next() } }
        }

        /// Ends the stream after `age` (the maximum connection age).
        func closeAfter(_ age: Duration) {
            let signal = signal
            let timer = Task {
                try await Task.sleep(for: age)
                signal.post { $0.closeReason = RPCError(code: .unavailable, message: "maximum connection age reached; reconnect") }
            }
            ageTimer.withLock { $0 = timer }
        }

        private func next() -> ProxyUpdate {
            let pending = signal.take()
            if let reason = pending.closeReason { return .close(reason) }
            var current = state.withLock { $0 }
            var configuration: PushTimes.Key?
            if let newer = pending.snapshot, newer.isNewer(than: current.snapshot) {
                current.snapshot = newer
                configuration = PushTimes.Key(newer)
            }
            if pending.refreshCertificate, certificateDirectory == nil, let certificates = provider.certificates {
                renew(&current, certificates: certificates)
            }
            let resources = Session.compose(provider: provider, workload: workload, upstreamBind: upstreamBind, directory: certificateDirectory, state: &current)
            current.lastResources = resources
            let step = current.snapshot.rolloutStep
            progress.withLock { $0.composed.append((step, configuration)) }
            state.withLock { stored in
                // Acknowledgements recorded meanwhile stay.
                current.acknowledgedRoots = stored.acknowledgedRoots
                current.acknowledgedIssuer = stored.acknowledgedIssuer
                stored = current
            }
            return .resources(resources)
        }

        private func renew(_ current: inout State, certificates: ProxyCertificates) {
            let previous = current.certificate?.serial
            do {
                let entry = try certificates.certificate(workload: workload.description, identity: identity)
                current.certificate = entry
                current.failures = 0
                current.retryAt = .distantPast
                if entry.serial != previous {
                    provider.rotations.increment()
                    provider.logger.info("rotated the proxy's certificate", metadata: [
                        "node": "\(proxyID)", "serial": "\(entry.serial)", "previous_serial": "\(previous ?? "-")",
                        "not_after": "\(ISO8601DateFormatter().string(from: entry.notAfter))",
                    ])
                }
            } catch {
                current.failures += 1
                let delay = min(pow(2, Double(current.failures - 1)), 300)
                current.retryAt = provider.clock().addingTimeInterval(delay)
                provider.rotationFailures.increment()
                provider.logger.error("certificate rotation failed; the proxy keeps its current certificate", metadata: [
                    "node": "\(proxyID)", "error": "\(error)", "attempt": "\(current.failures)", "retry_in_seconds": "\(Int(delay))",
                    "current_not_after": "\(current.certificate.map { ISO8601DateFormatter().string(from: $0.notAfter) } ?? "-")",
                ])
            }
        }

        func record(_ event: ProxyStreamEvent) {
            provider.status.record(event, connection: connection)
            switch event {
            case .rejected(let typeURL, _, _, _): progress.withLock { _ = $0.rejected.insert(typeURL) }
            case .acknowledged(let typeURL, _, _), .unwatched(let typeURL): progress.withLock { _ = $0.rejected.remove(typeURL) }
            case .sent: break
            }
            guard case .acknowledged(let typeURL, let version, _) = event, typeURL == XDSTypeURL.secret else { return }
            state.withLock { state in
                for sent in state.sent.reversed() {
                    guard let matched = sent.match(version) else { continue }
                    if matched.root { state.acknowledgedRoots = sent.roots }
                    if matched.certificate { state.acknowledgedIssuer = sent.issuerKey }
                    return
                }
            }
        }

        func close() {
            ageTimer.withLock { $0?.cancel() }
            provider.publisher.unsubscribe(subscription)
            signal.finish()
            provider.forget(connection)
        }
    }
}
