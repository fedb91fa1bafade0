internal import CertificateAuthority
internal import EnvoyAPI
internal import Foundation
internal import GRPCCore
internal import MeshModel
internal import MeshTranslation
internal import Synchronization
internal import XDSCache
internal import MeshConfig
internal import XDSServer

/// Wakes a stream with what changed for it; bursts collapse into one wake-up.
final class SessionSignal: Sendable {
    struct Pending: Sendable {
        var snapshot: MeshSnapshot?
        var refreshCertificate = false
        var resendSecrets = false
        var closeReason: RPCError?
    }

    private let state = Mutex(Pending())
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

/// One connected proxy: composes its resources (its workload's translation plus its own
/// secrets) whenever the mesh, its certificate or the trust bundle changes, and follows what it
/// acknowledges.
final class MeshProxySession: ProxySession {
    struct State {
        var snapshot: MeshSnapshot
        var holding: CertificateHolding
        var secrets = SecretAcknowledgements()
        var lastResources = XDSResourceSet()
    }

    let provider: MeshProxyProvider
    let proxyID: String
    let node: NodeIdentity
    /// The SPIFFE identity of the workload.
    let identity: SpiffeID
    let tokenID: String?
    let connection: UInt64
    let signal = SessionSignal()
    let initialResources: XDSResourceSet
    /// Whether the workload's entry was auto-registered: its closing counts for the grace period.
    let autoRegistered: Bool
    private let state: Mutex<State>
    private let subscription: UInt64
    private let ageTimer = Mutex<Task<Void, any Error>?>(nil)

    var workload: ServiceRegistry.WorkloadID { node.workload }

    init(
        provider: MeshProxyProvider, proxyID: String, node: NodeIdentity, identity: SpiffeID, tokenID: String?, connection: UInt64,
        certificate: ProxyCertificates.Entry?, snapshot: MeshSnapshot, autoRegistered: Bool = false
    ) {
        self.provider = provider
        self.autoRegistered = autoRegistered
        self.proxyID = proxyID
        self.node = node
        self.identity = identity
        self.tokenID = tokenID
        self.connection = connection
        progress = Mutex(Progress(handled: snapshot.rolloutStep))
        var initial = State(snapshot: snapshot, holding: CertificateHolding(certificate: certificate))
        initialResources = Self.compose(provider: provider, node: node, state: &initial)
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

    var currentCertificate: ProxyCertificates.Entry? { state.withLock { $0.holding.certificate } }
    var lastResources: XDSResourceSet { state.withLock { $0.lastResources } }

    func isDue(_ certificates: ProxyCertificates, now: Date, signerKey: String) -> Bool {
        state.withLock { $0.holding.isDue(certificates, now: now, signerKey: signerKey) }
    }

    func rotationView(_ rotation: RootRotation) -> RootRotation.Observation.Proxy {
        state.withLock { state in
            RootRotation.Observation.Proxy(
                id: proxyID, trustsNewRoots: Set(rotation.newRoots).isSubset(of: state.secrets.acknowledgedRoots),
                // A proxy with its own certificate files holds CSR-issued leaves, which the
                // rotation tracks through the ledger.
                usesNewSigner: node.certificateDirectory != nil || state.secrets.acknowledgedIssuer == rotation.newSignerKey)
        }
    }

    /// The proxy's resources: its workload's translation plus its secrets; remembers the secrets.
    static func compose(provider: MeshProxyProvider, node: NodeIdentity, state: inout State) -> XDSResourceSet {
        var resources = provider.resources(for: node.workload, kind: node.kind, upstreamBind: node.upstreamBind, in: state.snapshot)
        guard let certificates = provider.certificates else { return resources }
        var sent = SecretAcknowledgements.Sent()
        if let directory = node.certificateDirectory {
            sent.certificate = ProxyCertificates.fileCertificateSecret(directory: directory)
        } else if let entry = state.holding.certificate {
            sent.certificate = certificates.certificateSecret(for: entry)
            sent.issuerKey = entry.issuerKey
        }
        if let root = try? certificates.rootSecret() {
            sent.root = root.resource
            sent.roots = root.roots
        }
        for secret in [sent.certificate, sent.root].compactMap({ $0 }) { resources.insert(secret) }
        state.secrets.composed(sent)
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
        if pending.refreshCertificate, node.certificateDirectory == nil, let rotator = provider.rotator {
            rotator.renew(&current.holding, workload: workload.description, identity: identity, proxyID: proxyID)
        }
        let resources = Self.compose(provider: provider, node: node, state: &current)
        current.lastResources = resources
        let step = current.snapshot.rolloutStep
        progress.withLock { $0.composed.append((step, configuration)) }
        state.withLock { stored in
            // Acknowledgements recorded meanwhile stay.
            current.secrets.keepAcknowledgements(of: stored.secrets)
            stored = current
        }
        return .resources(resources)
    }

    func record(_ event: ProxyStreamEvent) {
        provider.status.record(event, connection: connection)
        switch event {
        case .rejected(let typeURL, _, _, _): progress.withLock { _ = $0.rejected.insert(typeURL) }
        case .acknowledged(let typeURL, _, _), .unwatched(let typeURL): progress.withLock { _ = $0.rejected.remove(typeURL) }
        case .sent: break
        case .health(let healthy, let message):
            // An agent in front of Envoy (Istio's) reports on the proxy's own stream.
            provider.reportHealth(workload, healthy: healthy, message: message)
            return
        }
        guard case .acknowledged(let typeURL, let version, _) = event, typeURL == XDSTypeURL.secret else { return }
        state.withLock { $0.secrets.acknowledged(version: version) }
    }

    func close() {
        ageTimer.withLock { $0?.cancel() }
        provider.publisher.unsubscribe(subscription)
        signal.finish()
        provider.forget(connection)
        if autoRegistered { provider.registrar?.disconnected(workload) }
    }
}

/// The stream of a proxy's agent that only reports its workload's probe results
/// (`meshctl proxy run` for a WorkloadGroup with a probe): served nothing.
final class HealthReportSession: ProxySession {
    let provider: MeshProxyProvider
    let proxyID: String
    let workload: ServiceRegistry.WorkloadID
    let initialResources = XDSResourceSet()
    private let closing: AsyncStream<ProxyUpdate>
    private let revocation: (tokens: TokenAuthority, handle: UUID)?

    /// A reporter authenticated with `tokenID`: revoking that token ends its stream, as it ends
    /// the proxy's own.
    init(provider: MeshProxyProvider, proxyID: String, workload: ServiceRegistry.WorkloadID, tokenID: String?, tokens: TokenAuthority?) {
        self.provider = provider
        self.proxyID = proxyID
        self.workload = workload
        let (stream, continuation) = AsyncStream.makeStream(of: ProxyUpdate.self)
        closing = stream
        if let tokenID, let tokens {
            revocation = (tokens, tokens.onRevocation { revoked in
                guard revoked == tokenID else { return }
                continuation.yield(.close(RPCError(code: .unauthenticated, message: "token \(tokenID) was revoked")))
            })
        } else {
            revocation = nil
        }
    }

    func updates() -> any AsyncSequence<ProxyUpdate, Never> & Sendable {
        closing
    }

    func record(_ event: ProxyStreamEvent) {
        if case .health(let healthy, let message) = event {
            provider.reportHealth(workload, healthy: healthy, message: message)
        }
    }

    func close() {
        if let revocation { revocation.tokens.cancelRevocationHandler(revocation.handle) }
    }
}
