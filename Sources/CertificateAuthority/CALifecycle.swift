public import Foundation
public import X509
public import Logging
public import Metrics
internal import Synchronization
internal import MeshModel

/// The CA over time, a coordinator: loads it at start (resuming a rotation a restart
/// interrupted), rotates the root in phases (the pure ``RootRotation`` steps, stored by
/// ``RotationStore``), renews a self-signed root that nears its end, picks up changed plug-in
/// files (``PluginDirectoryWatch``) and warns of coming expiry (the pure ``ExpiryWarnings``).
///
/// State under `<data>/ca/`: `root-cert.pem`, `root-key.pem` (self-signed), `cross-signed.pem`
/// and, while rotating, `rotation/` (see ``RotationStore``).
public final class CALifecycle: Sendable {
    /// Where the CA comes from.
    public enum Source: Sendable {
        /// meshd's own root in the data directory.
        case selfSigned(algorithm: KeyAlgorithm, trustDomain: String)
        /// Istio's plug-in layout in a directory the operator manages.
        case pluggedIn(directory: String)
    }

    /// A change of what the CA signs with or trusts.
    public struct Update: Sendable {
        /// The authority to sign with from now on (its `roots` are the trust bundle).
        public var authority: SigningAuthority
        /// Whether the signing key changed: every leaf must be re-issued.
        public var signerChanged: Bool
        /// Whether the trust bundle changed: every proxy must get it.
        public var trustChanged: Bool
    }

    /// What `meshctl ca status` shows of a rotation.
    public struct RotationStatus: Codable, Hashable, Sendable {
        /// The phase (`1-distributing-trust`, ...).
        public var phase: String
        /// Why it runs.
        public var reason: String
        /// When it began.
        public var startedAt: Date
        /// When the phase began.
        public var phaseSince: Date
        /// What the phase waits for.
        public var waitingFor: String
    }

    /// A renewal or reload that failed; counted and logged, the CA in use stays.
    public struct Failure: Sendable {
        /// What failed.
        public var error: CAError
    }

    private struct State {
        var authority: SigningAuthority
        var crossSigned: [Certificate]
        var rotation: RootRotation?
        var waitingFor = ""
        /// The old (A) and new (B) authorities while rotating.
        var old: SigningAuthority?
        var new: SigningAuthority?
        var plugin: PluginDirectoryWatch?
        var warnings = ExpiryWarnings()
        var failures = FailureStreak()
    }

    private let directory: String
    private let store: RotationStore
    private let source: Source
    private let fips: Bool
    private let clock: @Sendable () -> Date
    private let random: RandomSource
    private let logger: Logger
    private let state: Mutex<State>
    private let phaseGauge: Gauge
    private let failures: Counter
    /// The share of a self-signed root's life left when it is re-signed (Istio: 20 %).
    public let rootRenewalRatio: Double

    /// Loads the CA (making a self-signed root on first start) and resumes an interrupted rotation.
    /// In FIPS mode (`fips`) a CA any of whose certificates has a key or signature that is not
    /// approved (``ApprovedAlgorithms``) is refused, at start and when plug-in files change.
    public init(
        dataDirectory: String, source: Source, rootRenewalRatio: Double = 0.2, clock: @escaping @Sendable () -> Date = Date.init,
        random: RandomSource = .system, fips: Bool = false, logger: Logger, metrics: any MetricsFactory
    ) throws(CAError) {
        directory = dataDirectory + "/ca"
        store = RotationStore(directory: directory)
        self.source = source
        self.clock = clock
        self.random = random
        self.logger = logger
        self.rootRenewalRatio = rootRenewalRatio
        phaseGauge = Gauge(label: "meshd_ca_root_rotation_phase", dimensions: [], factory: metrics)
        failures = Counter(label: "meshd_ca_reload_failures_total", dimensions: [], factory: metrics)
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw CAError(.storage, "cannot create \(directory): \(error.localizedDescription)", cause: error)
        }
        self.fips = fips
        let loaded = try Self.load(store: store, source: source, now: clock(), random: random, logger: logger)
        if fips {
            for authority in [loaded.authority, loaded.old, loaded.new].compactMap({ $0 }) {
                try ApprovedAlgorithms.check(authority, source: Self.describe(source))
            }
        }
        state = Mutex(loaded)
        let current = state.withLock { $0 }
        phaseGauge.record(Self.phaseNumber(current.rotation))
        if let rotation = current.rotation {
            logger.notice("resuming the root rotation", metadata: ["phase": "\(rotation.phase.rawValue)", "reason": "\(rotation.reason)"])
        }
    }

    /// The authority to sign with (its `roots` are the trust bundle to distribute).
    public var authority: SigningAuthority { state.withLock { $0.authority } }

    /// Former roots' successors signed by them, newest first: appended to meshd's own serving
    /// chain so that bootstraps made before a rotation still verify meshd.
    public var crossSigned: [Certificate] { state.withLock { $0.crossSigned } }

    /// The rotation in progress, if any.
    public var rotation: RotationStatus? {
        state.withLock { state in
            state.rotation.map {
                RotationStatus(phase: $0.phase.rawValue, reason: $0.reason, startedAt: $0.startedAt, phaseSince: $0.phaseSince, waitingFor: state.waitingFor)
            }
        }
    }

    /// The rotation in progress (for observers that need the key ids).
    public var currentRotation: RootRotation? { state.withLock { $0.rotation } }

    // MARK: Start

    private static func load(store: RotationStore, source: Source, now: Date, random: RandomSource, logger: Logger) throws(CAError) -> State {
        var rotation = try store.read()
        switch source {
        case .selfSigned(let algorithm, let trustDomain):
            if rotation?.phase == .droppingOldRoot {
                try store.finishSelfSigned()
                rotation = nil
            } else if rotation == nil {
                // A rotation that crashed before its state was written never took effect.
                store.discard()
            }
            var generator = random
            let loaded = try CAStore.loadOrCreateSelfSigned(
                .init(dataDirectory: (store.directory as NSString).deletingLastPathComponent), algorithm: algorithm, trustDomain: trustDomain,
                now: now, generator: &generator)
            if loaded.created { logger.notice("created a self-signed root CA (\(algorithm.rawValue)) in \(store.directory)") }
            let crossSigned = store.crossSigned()
            guard let rotation else { return State(authority: loaded.authority, crossSigned: crossSigned) }
            let next = try store.loadNext()
            return rotating(old: loaded.authority, new: next.authority, rotation: rotation, crossSigned: next.crossSigned + crossSigned)
        case .pluggedIn(let pluginDirectory):
            let current = try CAStore.loadPluggedIn(directory: pluginDirectory)
            var state = State(authority: current, crossSigned: [])
            if let rotation, rotation.phase != .droppingOldRoot {
                state = rotating(old: try store.loadPrevious(), new: current, rotation: rotation, crossSigned: [])
            } else {
                store.discard()
            }
            state.plugin = PluginDirectoryWatch(directory: pluginDirectory)
            return state
        }
    }

    private static func rotating(old: SigningAuthority, new: SigningAuthority, rotation: RootRotation, crossSigned: [Certificate]) -> State {
        let bundle = union(old.roots, new.roots)
        let signer = rotation.phase == .distributingTrust ? old : new
        var state = State(authority: signer.trusting(bundle), crossSigned: crossSigned, rotation: rotation)
        state.old = old
        state.new = new
        return state
    }

    private static func union(_ a: [Certificate], _ b: [Certificate]) -> [Certificate] {
        a + b.filter { !a.contains($0) }
    }

    // MARK: Rotation

    /// Starts replacing the self-signed root with a new one (phase 1). A plugged-in CA rotates when
    /// its files change instead.
    public func startRootRotation(reason: String = "meshctl ca rotate-root") throws(CAError) -> Update {
        guard case .selfSigned(let algorithm, let trustDomain) = source else {
            throw CAError(.pluggedIn, "the CA is plugged in: put the new CA's files in the --ca-dir directory and meshd rotates to them in the same phases")
        }
        return try state.withLock { state throws(CAError) -> Update in
            if let rotation = state.rotation {
                throw CAError(.inProgress, "a root rotation is already in progress (phase \(rotation.phase.rawValue), since \(ISO8601DateFormatter().string(from: rotation.startedAt)))")
            }
            let now = clock()
            let old = state.authority
            let new: SigningAuthority
            let cross: Certificate
            do {
                var generator = random
                let made = try SigningAuthority.makeSelfSignedRoot(
                    algorithm: algorithm, trustDomain: trustDomain, now: now,
                    name: "meshd root CA \(ISO8601DateFormatter().string(from: now))", generator: &generator)
                new = try SigningAuthority(certificate: made.certificate, privateKey: made.key, chain: [], roots: [made.certificate], mode: .selfSigned)
                cross = try old.crossSign(made.certificate, now: now, generator: &generator)
            } catch {
                throw CAError(.createFailed, "cannot make the new root: \(error)", cause: error)
            }
            try store.stageNext(new, crossSigned: cross)
            let rotation = RootRotation(
                reason: reason, oldSignerKey: old.keyID, newSignerKey: new.keyID, newRoots: new.roots.map(Self.fingerprint), now: now)
            try store.write(rotation)
            state = Self.rotating(old: old, new: new, rotation: rotation, crossSigned: [cross] + state.crossSigned)
            state.waitingFor = "the first check"
            phaseGauge.record(1)
            logger.notice("root rotation started: phase 1, distributing the trust bundle with the new root", metadata: [
                "new_root": "\(new.certificate.subject)", "reason": "\(reason)",
            ])
            return Update(authority: state.authority, signerChanged: false, trustChanged: true)
        }
    }

    /// One check: advances a rotation, renews a self-signed root near its end, picks up changed
    /// plug-in files, warns of coming expiry. Returns what changed, if anything.
    /// A failed step is retried with back-off (1 s doubling to 5 min).
    public func tick(observe: () -> RootRotation.Observation) -> Update? {
        let now = clock()
        warnOfExpiry(now: now)
        guard state.withLock({ $0.failures.allows(now) }) else { return nil }
        if currentRotation != nil {
            return advanceRotation(observation: observe(), now: now)
        }
        switch source {
        case .selfSigned: return renewRootIfDue(now: now)
        case .pluggedIn: return reloadPlugin(now: now)
        }
    }

    private func advanceRotation(observation: RootRotation.Observation, now: Date) -> Update? {
        do throws(CAError) {
            let update = try state.withLock { state throws(CAError) -> Update? in
                guard var rotation = state.rotation, let old = state.old, let new = state.new else { return nil }
                switch rotation.step(observation, now: now) {
                case .wait(let text):
                    state.waitingFor = text
                    return nil
                case .advance(.issuingFromNewRoot):
                    rotation.phase = .issuingFromNewRoot
                    rotation.phaseSince = now
                    try store.write(rotation)
                    state.rotation = rotation
                    state.authority = new.trusting(state.authority.roots)
                    state.waitingFor = "every proxy to get a certificate from the new root"
                    phaseGauge.record(2)
                    logger.notice("root rotation: phase 2, issuing certificates from the new root")
                    return Update(authority: state.authority, signerChanged: true, trustChanged: false)
                case .advance(_):
                    rotation.phase = .droppingOldRoot
                    rotation.phaseSince = now
                    try store.write(rotation)
                    switch source {
                    case .selfSigned:
                        try store.finishSelfSigned()
                        let crossSigned = store.crossSigned()
                        if !crossSigned.isEmpty { state.crossSigned = crossSigned }
                    case .pluggedIn:
                        store.discard()
                    }
                    state.rotation = nil
                    state.old = nil
                    state.new = nil
                    state.waitingFor = ""
                    state.authority = new
                    phaseGauge.record(0)
                    logger.notice("root rotation complete: the old root is no longer trusted", metadata: [
                        "old_root": "\(old.root.subject)", "root": "\(new.root.subject)",
                    ])
                    return Update(authority: new, signerChanged: false, trustChanged: true)
                }
            }
            succeeded()
            return update
        } catch {
            fail(error, "the root rotation cannot advance; it stays in its phase and is retried")
            return nil
        }
    }

    private func renewRootIfDue(now: Date) -> Update? {
        let authority = self.authority
        let root = authority.certificate
        let lifetime = root.notValidAfter.timeIntervalSince(root.notValidBefore)
        guard authority.mode == .selfSigned, now >= root.notValidAfter.addingTimeInterval(-lifetime * rootRenewalRatio) else { return nil }
        do {
            var generator = random
            let renewed = try authority.renewedRoot(now: now, validity: lifetime, generator: &generator)
            try CAStore.writeCertificates([renewed], to: directory + "/root-cert.pem")
            let next = authority.replacingCertificate(renewed, roots: [renewed])
            state.withLock { $0.authority = next }
            succeeded()
            logger.notice("renewed the self-signed root with the same key", metadata: [
                "not_after": "\(renewed.notValidAfter)", "previous_not_after": "\(root.notValidAfter)",
            ])
            return Update(authority: next, signerChanged: false, trustChanged: true)
        } catch let error as CAError {
            fail(error, "cannot renew the root; retrying at the next check")
        } catch {
            fail(CAError(.renewFailed, "\(error)", cause: error), "cannot renew the root; retrying at the next check")
        }
        return nil
    }

    private func reloadPlugin(now: Date) -> Update? {
        guard let watch = state.withLock({ $0.plugin }), let fingerprint = watch.change() else { return nil }
        let pluginDirectory = watch.directory
        let loaded: SigningAuthority
        do throws(CAError) {
            loaded = try CAStore.loadPluggedIn(directory: pluginDirectory)
            if fips { try ApprovedAlgorithms.check(loaded, source: pluginDirectory) }
        } catch {
            fail(error, "the plug-in CA files changed but cannot be used; the CA in use stays until they are fixed")
            return nil
        }
        do throws(CAError) {
            let update = try state.withLock { state throws(CAError) -> Update? in
                let current = state.authority
                if Set(loaded.roots.map(Self.fingerprint)) == Set(current.roots.map(Self.fingerprint)) {
                    state.authority = loaded
                    state.plugin?.accept(fingerprint)
                    logger.notice("picked up a new plug-in signing certificate under the same root", metadata: ["signer": "\(loaded.certificate.subject)"])
                    return Update(authority: loaded, signerChanged: loaded.keyID != current.keyID || loaded.certificate != current.certificate, trustChanged: false)
                }
                // A new root: keep the old CA until every proxy trusts the new one.
                try store.stagePrevious(current)
                let rotation = RootRotation(
                    reason: "the plug-in CA files in \(pluginDirectory) changed to a new root", oldSignerKey: current.keyID,
                    newSignerKey: loaded.keyID, newRoots: loaded.roots.map(Self.fingerprint), now: now)
                try store.write(rotation)
                let watch = state.plugin
                state = Self.rotating(old: current, new: loaded, rotation: rotation, crossSigned: [])
                state.plugin = watch
                state.plugin?.accept(fingerprint)
                state.waitingFor = "the first check"
                phaseGauge.record(1)
                logger.notice("plug-in CA files changed to a new root: rotating in phases, phase 1", metadata: ["root": "\(loaded.root.subject)"])
                return Update(authority: state.authority, signerChanged: false, trustChanged: true)
            }
            succeeded()
            return update
        } catch {
            fail(error, "cannot start the rotation to the new plug-in root; the CA in use stays")
            return nil
        }
    }

    private func fail(_ error: CAError, _ message: String) {
        failures.increment()
        let now = clock()
        let delay = state.withLock { $0.failures.failed(at: now) }
        logger.error("\(message)", metadata: ["error": "\(error)", "retry_in_seconds": "\(Int(delay))"])
    }

    private func succeeded() {
        state.withLock { $0.failures.succeeded() }
    }

    // MARK: Expiry

    private func warnOfExpiry(now: Date) {
        let authority = self.authority
        for warning in state.withLock({ $0.warnings.due(for: authority, now: now) }) {
            logger.warning("a CA certificate expires within \(warning.days) days", metadata: [
                "role": "\(warning.role)", "subject": "\(warning.certificate.subject)",
                "not_after": "\(ISO8601DateFormatter().string(from: warning.certificate.notValidAfter))",
            ])
        }
    }

    // MARK: Helpers

    /// Where the CA comes from, for messages.
    private static func describe(_ source: Source) -> String {
        switch source {
        case .selfSigned: "the self-signed root"
        case .pluggedIn(let directory): directory
        }
    }

    /// SHA-256 of a certificate's DER, hex.
    public static func fingerprint(_ certificate: Certificate) -> String {
        CertificateService.info(certificate).fingerprint
    }

    private static func phaseNumber(_ rotation: RootRotation?) -> Double {
        switch rotation?.phase {
        case nil: 0
        case .distributingTrust?: 1
        case .issuingFromNewRoot?: 2
        case .droppingOldRoot?: 3
        }
    }
}
