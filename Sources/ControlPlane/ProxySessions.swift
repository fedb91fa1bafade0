public import CertificateAuthority
public import EnvoyAPI
public import Foundation
internal import MeshModel
internal import GRPCCore
internal import MeshConfig
internal import MeshTranslation
internal import Synchronization
internal import XDSServer

/// The connected proxies' sessions, by connection, and what the rest of meshd asks about them
/// (certificate rotation, the mTLS rollout, root rotation, `meshctl proxy-config`).
public final class ProxySessions: Sendable {
    private let sessions = Mutex<[UInt64: MeshProxySession]>([:])

    init() {}

    func add(_ session: MeshProxySession) {
        sessions.withLock { $0[session.connection] = session }
    }

    func remove(connection: UInt64) {
        _ = sessions.withLock { $0.removeValue(forKey: connection) }
    }

    /// Every session, in no particular order.
    var all: [MeshProxySession] { sessions.withLock { Array($0.values) } }

    /// Ends the streams authenticated with a revoked token.
    public func revoked(tokenID: String) {
        for session in all where session.tokenID == tokenID {
            session.signal.post { $0.closeReason = RPCError(code: .unauthenticated, message: "token \(tokenID) was revoked") }
        }
    }

    /// Replaces the certificates that are due (rotation point reached, or not from the signer in
    /// use) on their open streams; a proxy whose last attempt failed waits for its back-off.
    public func rotateDue(_ certificates: ProxyCertificates, now: Date) {
        let signerKey = certificates.signerKey
        for session in all where session.isDue(certificates, now: now, signerKey: signerKey) {
            session.signal.post { $0.refreshCertificate = true }
        }
    }

    /// Sends every proxy its secrets again (after the trust bundle changed).
    public func resendSecrets() {
        for session in all {
            session.signal.post { $0.resendSecrets = true }
        }
    }

    /// The workloads with a proxy connected.
    var connectedWorkloads: Set<ServiceRegistry.WorkloadID> {
        Set(all.map(\.workload))
    }

    /// The proxies that do not yet hold, acknowledged, rollout step `step` or later, among those
    /// `wait` names (node ids, sorted).
    func unsettledProxies(step: UInt64, wait: MTLSRollout.Wait) -> [String] {
        all.filter { session in
            let concerned = wait.servers.contains(session.workload) || wait.clientsOf.contains { $0 != session.workload }
            return concerned && !session.isSettled(atLeast: step)
        }.map(\.proxyID).sorted()
    }

    /// What each connected proxy has acknowledged, as a root rotation sees it.
    public func rotationView(_ rotation: RootRotation) -> [RootRotation.Observation.Proxy] {
        all.map { $0.rotationView(rotation) }
    }

    /// What meshd last composed for the newest stream of `proxyID` (`nil`: not connected).
    public func lastResources(proxyID: String) -> XDSResourceSet? {
        sessions.withLock { sessions in
            sessions.filter { $0.value.proxyID == proxyID }.max { $0.key < $1.key }?.value
        }?.lastResources
    }

    /// Serials of the certificates connected proxies hold (meshd-made ones).
    public var connectedSerials: Set<String> {
        Set(all.compactMap { $0.currentCertificate?.serial })
    }

    /// The earliest end of validity among connected proxies' certificates.
    public var earliestCertificateExpiry: Date? {
        all.compactMap { $0.currentCertificate?.notAfter }.min()
    }
}
