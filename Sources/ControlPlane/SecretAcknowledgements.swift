internal import EnvoyAPI
internal import XDSServer

/// Which trust bundle and which signer's certificate a proxy holds, told from the SDS versions it
/// acknowledges: a record of the secrets recently sent, each matched against acknowledgements.
/// Pure: no clock, no I/O.
struct SecretAcknowledgements: Sendable {
    /// One composition of the secrets sent to the proxy.
    struct Sent: Sendable, Equatable {
        /// The `default` secret (the workload certificate), if sent.
        var certificate: XDSResource?
        /// The `ROOTCA` secret, if sent.
        var root: XDSResource?
        /// The roots the `ROOTCA` secret carries (fingerprints).
        var roots: Set<String>
        /// The signer key of the certificate, when meshd made it.
        var issuerKey: String?

        /// A composition.
        init(certificate: XDSResource? = nil, root: XDSResource? = nil, roots: Set<String> = [], issuerKey: String? = nil) {
            self.certificate = certificate
            self.root = root
            self.roots = roots
            self.issuerKey = issuerKey
        }

        /// Whether `version` acknowledges the bundle and/or the certificate: the version of a
        /// response carrying both, or either alone.
        func match(_ version: String) -> (root: Bool, certificate: Bool)? {
            let both = [certificate, root].compactMap { $0 }
            if SotWStreamStateMachine.version(of: both) == version { return (root != nil, certificate != nil) }
            if let root, SotWStreamStateMachine.version(of: [root]) == version { return (true, false) }
            if let certificate, SotWStreamStateMachine.version(of: [certificate]) == version { return (false, true) }
            return nil
        }
    }

    /// How many distinct compositions are remembered (most pushes change none).
    static let remembered = 8

    /// Recent distinct compositions, newest last.
    private(set) var sent: [Sent] = []
    /// The roots of the newest bundle the proxy acknowledged.
    private(set) var acknowledgedRoots: Set<String> = []
    /// The signer of the newest meshd-made certificate the proxy acknowledged.
    private(set) var acknowledgedIssuer: String?

    /// Nothing sent, nothing acknowledged.
    init() {}

    /// Remembers `composition`, unless it is the one sent last.
    mutating func composed(_ composition: Sent) {
        guard sent.last != composition else { return }
        sent.append(composition)
        if sent.count > Self.remembered { sent.removeFirst(sent.count - Self.remembered) }
    }

    /// The proxy acknowledged SDS `version`: what it names (newest composition first) is now held.
    mutating func acknowledged(version: String) {
        for composition in sent.reversed() {
            guard let matched = composition.match(version) else { continue }
            if matched.root { acknowledgedRoots = composition.roots }
            if matched.certificate { acknowledgedIssuer = composition.issuerKey }
            return
        }
    }

    /// Takes what `other` says was acknowledged, keeping this record's compositions (a
    /// composition made while acknowledgements arrived keeps them).
    mutating func keepAcknowledgements(of other: SecretAcknowledgements) {
        acknowledgedRoots = other.acknowledgedRoots
        acknowledgedIssuer = other.acknowledgedIssuer
    }
}
