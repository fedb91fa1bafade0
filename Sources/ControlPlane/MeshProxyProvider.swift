public import XDSServer
public import GRPCCore
public import EnvoyAPI
public import MeshConfig
public import Logging
internal import MeshModel
internal import MeshTranslation
internal import XDSCache
internal import Synchronization
internal import SwiftProtobuf
internal import AdminAPI
public import CertificateAuthority
public import Metrics
public import Foundation

/// Serves each admitted sidecar the translation of the current mesh for its workload, plus the
/// SDS secrets of its own identity. Its parts: ``ProxyAdmission`` (rate, identity, token),
/// ``ProxySessions`` (the connected proxies), ``MeshProxySession`` (one proxy's stream),
/// ``SecretAcknowledgements`` (which secrets a proxy holds, pure) and ``CertificateRotator``;
/// this class holds the translation cache and wires them together.
public final class MeshProxyProvider: ProxyConfigProvider {
    /// What the cache shares between proxies: equal keys mean equal configuration.
    struct CacheKey: Hashable, Sendable {
        var revision: UInt64
        var rolloutStep: UInt64
        var workload: ServiceRegistry.WorkloadID
        var upstreamBind: UpstreamBind
        var kind: ProxyKind
    }

    let publisher: SnapshotPublisher
    private let cache = SharedResourceCache<CacheKey>()
    /// Resources shared between workloads and kept across revisions, by their inputs.
    private let memo = TranslationMemo()
    /// Connected proxies and their per-type status.
    public let status: ProxyStatusRegistry
    /// The connected proxies' sessions.
    public let sessions = ProxySessions()
    let certificates: ProxyCertificates?
    let rotator: CertificateRotator?
    private let admission: ProxyAdmission
    private let logger: Logger
    private let clock: @Sendable () -> Date
    private let maximumConnectionAge: Duration?
    private let random: RandomSource
    let pushLimiter: PushLimiter
    /// From publication to responses written.
    let pushTimes: PushTimes
    /// Makes and removes the entries of proxies registering into WorkloadGroups and takes their
    /// probe reports (nil: no proxy registers, reports are ignored).
    let registrar: WorkloadAutoRegistrar?
    /// The verified client certificates of xDS connections (nil: streams authenticate by token only).
    let peers: PeerCertificates?
    /// The report keys of Istio's standard metrics and how long proxies buffer entries (nil: no
    /// Istio metrics).
    let metricsReporting: (keys: MetricsReportKeys, flushMilliseconds: UInt32)?

    /// A provider serving snapshots from `publisher`; without `certificates` no secrets are served.
    public init(
        publisher: SnapshotPublisher, tokens: TokenAuthority?, certificates: ProxyCertificates?, allowUnauthenticated: Bool,
        status: ProxyStatusRegistry = ProxyStatusRegistry(), clock: @escaping @Sendable () -> Date = Date.init, random: RandomSource = .system,
        limits: Limits = Limits(), adminCredential: AdminCredential? = nil, registrar: WorkloadAutoRegistrar? = nil,
        controllerName: String = "meshd", peers: PeerCertificates? = nil,
        metricsReporting: (keys: MetricsReportKeys, flushMilliseconds: UInt32)? = nil, logger: Logger, metrics: any MetricsFactory
    ) {
        self.peers = peers
        self.metricsReporting = metricsReporting
        admission = ProxyAdmission(
            rate: limits.connectionsPerSecond > 0 ? RateLimiter(ratePerSecond: limits.connectionsPerSecond, burst: limits.connectionBurst, clock: clock) : nil,
            tokens: tokens, adminCredential: adminCredential, allowUnauthenticated: allowUnauthenticated, controller: controllerName)
        self.registrar = registrar
        maximumConnectionAge = limits.maximumConnectionAge
        pushLimiter = PushLimiter(limit: limits.pushConcurrency)
        self.publisher = publisher
        self.certificates = certificates
        rotator = certificates.map { CertificateRotator(certificates: $0, clock: clock, logger: logger, metrics: metrics) }
        self.status = status
        self.clock = clock
        self.random = random
        self.logger = logger
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

        /// Limits; the defaults admit 500 new streams per second (bursts of 1,000: a fleet of
        /// 10,000 restarting at once syncs in about 21 s on 2 cores, docs/BENCHMARKS.md), never
        /// age streams, and compute two configurations per core at once.
        public init(connectionsPerSecond: Double = 500, connectionBurst: Int = 1000, maximumConnectionAge: Duration? = nil, pushConcurrency: Int = 2 * ProcessInfo.processInfo.activeProcessorCount) {
            self.connectionsPerSecond = connectionsPerSecond
            self.connectionBurst = connectionBurst
            self.maximumConnectionAge = maximumConnectionAge
            self.pushConcurrency = pushConcurrency
        }
    }

    /// The workload (`namespace/name`) of a proxy opening its load report stream, admitted as
    /// its xDS stream is (node, WorkloadEntry, token).
    func admitReporter(node: Envoy_Config_Core_V3_Node, metadata: Metadata) throws(RPCError) -> String {
        let admitted = try admission.admit(node: node, metadata: metadata, snapshot: publisher.current, rated: false, now: clock())
        guard admitted.registration == nil else {
            throw RPCError(code: .unavailable, message: "workload \(admitted.identity.workload) is not registered yet; its xDS stream registers it, retry")
        }
        return admitted.identity.workload.description
    }

    /// Admits the proxy; one registering into a WorkloadGroup first has its entry written, and is
    /// admitted once the entry is served. The work is in synchronous helpers: only the node,
    /// metadata and peer live across the wait, which keeps this function's async frame (held by
    /// every stream's task for as long as the stream lasts) small.
    public func connect(node: Envoy_Config_Core_V3_Node, metadata: Metadata, peer: String) async throws(RPCError) -> any ProxySession {
        switch try registerIfNeeded(node: node, metadata: metadata) {
        case .notRegistering:
            return try open(node: node, metadata: metadata, peer: peer, rated: true)
        case .registered:
            return try open(node: node, metadata: metadata, peer: peer, rated: false)
        case .written(let revision):
            await waitUntilServed(revision)
            return try open(node: node, metadata: metadata, peer: peer, rated: false)
        }
    }

    /// What ``registerIfNeeded(node:metadata:)`` found; the last two counted against the
    /// admission rate.
    private enum Registration {
        case notRegistering
        case registered
        case written(revision: UInt64)
    }

    /// Writes the entry of a proxy registering into a WorkloadGroup that has none yet.
    private func registerIfNeeded(node: Envoy_Config_Core_V3_Node, metadata: Metadata) throws(RPCError) -> Registration {
        guard node.metadata.fields[AutoRegistration.nodeMetadataKey] != nil, node.metadata.fields[NodeIdentity.healthReporterKey] == nil else { return .notRegistering }
        let admitted = try admission.admit(node: node, metadata: metadata, snapshot: publisher.current, now: clock())
        guard let entry = admitted.registration else { return .registered }
        guard let registrar else {
            throw RPCError(code: .notFound, message: "no WorkloadEntry \(admitted.identity.workload), and this meshd does not auto-register workloads")
        }
        return .written(revision: try registrar.register(entry))
    }

    /// Admits the proxy against the served snapshot and opens its session.
    private func open(node: Envoy_Config_Core_V3_Node, metadata: Metadata, peer: String, rated: Bool) throws(RPCError) -> any ProxySession {
        let snapshot = publisher.current
        let certified = peers?.certificate(peer: peer).flatMap { CertificateRequests.identity(of: $0, trustDomain: snapshot.settings.trustDomain, now: clock()) }
        let admitted = try admission.admit(
            node: node, metadata: metadata, snapshot: snapshot, certified: certified,
            rated: rated && node.metadata.fields[NodeIdentity.healthReporterKey] == nil, now: clock())
        if admitted.identity.isHealthReporter {
            guard admitted.registration == nil else {
                throw RPCError(code: .unavailable, message: "workload \(admitted.identity.workload) is not registered yet; its proxy's xDS stream registers it, retry")
            }
            guard admitted.autoRegistered else {
                throw RPCError(code: .failedPrecondition, message: "workload \(admitted.identity.workload) was not registered from a WorkloadGroup; only those take probe reports")
            }
            return HealthReportSession(provider: self, proxyID: node.id, workload: admitted.identity.workload, tokenID: admitted.tokenID, tokens: admission.tokens)
        }
        guard admitted.registration == nil else {
            // Its entry is written but not served yet (a push held back by the debounce).
            throw RPCError(code: .unavailable, message: "the WorkloadEntry of \(admitted.identity.workload) is not served yet; retry")
        }
        let spiffe = admitted.workload.identity(trustDomain: snapshot.settings.trustDomain)
        var certificate: ProxyCertificates.Entry? = nil
        if let certificates, admitted.identity.certificateDirectory == nil {
            do {
                certificate = try certificates.certificate(workload: admitted.identity.workload.description, identity: spiffe)
            } catch {
                logger.error("cannot issue the proxy's certificate", metadata: ["node": "\(node.id)", "error": "\(error)"])
                throw RPCError(code: .unavailable, message: "meshd cannot issue a certificate right now; retry")
            }
        }
        let connection = status.register(proxyID: node.id, workload: admitted.identity.workload.description, peer: peer)
        if admitted.autoRegistered { registrar?.connected(admitted.identity.workload) }
        let session = MeshProxySession(
            provider: self, proxyID: node.id, node: admitted.identity, identity: spiffe, tokenID: admitted.tokenID, connection: connection,
            certificate: certificate, snapshot: snapshot, autoRegistered: admitted.autoRegistered && registrar != nil)
        sessions.add(session)
        if let age = maximumConnectionAge {
            var generator = random
            session.closeAfter(age * Double.random(in: 0.9...1.1, using: &generator))
        }
        return session
    }

    /// The configuration of `workload` in `snapshot`, shared between proxies of the same workload
    /// (a workload being retired is translated from its last WorkloadEntry).
    func resources(for workload: ServiceRegistry.WorkloadID, kind: ProxyKind = .sidecar, upstreamBind: UpstreamBind, in snapshot: MeshSnapshot) -> XDSResourceSet {
        let key = CacheKey(revision: snapshot.revision, rolloutStep: snapshot.rolloutStep, workload: workload, upstreamBind: upstreamBind, kind: kind)
        return cache.resources(for: key, generation: snapshot.revision) {
            guard let instance = snapshot.registry.workload(workload) ?? snapshot.retiring[workload] else {
                logger.warning("workload removed from the configuration while its proxy is connected; serving it no listeners", metadata: ["workload": "\(workload)"])
                return XDSResourceSet()
            }
            let reporting = metricsReporting.map { MetricsReporting(key: $0.keys.key(for: workload), flushIntervalMilliseconds: $0.flushMilliseconds) }
            let configuration = switch kind {
            case .router: GatewayTranslator.translate(snapshot, workload: instance, upstreamBind: upstreamBind, memo: memo, reporting: reporting)
            case .sidecar: SidecarTranslator.translate(snapshot, workload: instance, upstreamBind: upstreamBind, memo: memo, reporting: reporting)
            case .proxyless: ProxylessTranslator.translate(snapshot, workload: instance, memo: memo)
            }
            for warning in configuration.warnings {
                logger.warning("\(warning)", metadata: ["workload": "\(workload)", "revision": "\(snapshot.revision)"])
            }
            return configuration.resources
        }
    }

    /// Replaces the certificates that are due (rotation point reached, or not from the signer in
    /// use) on their open streams; a proxy whose last attempt failed waits for its back-off.
    public func rotateDue() {
        guard let certificates else { return }
        sessions.rotateDue(certificates, now: clock())
    }

    /// Waits until the served snapshot reached `revision` of the store (an entry just registered),
    /// at most 15 s.
    private func waitUntilServed(_ revision: UInt64) async {
        for _ in 0..<1500 where publisher.current.revision < revision {
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Records a probe report of `workload`'s agent: only auto-registered workloads take them.
    func reportHealth(_ workload: ServiceRegistry.WorkloadID, healthy: Bool, message: String?) {
        if registrar?.report(workload, WorkloadHealth(healthy: healthy, message: message)) != true {
            logger.warning("probe report ignored: the workload was not registered from a WorkloadGroup", metadata: ["workload": "\(workload)"])
        }
    }

    func forget(_ connection: UInt64) {
        sessions.remove(connection: connection)
        status.unregister(connection)
    }
}
