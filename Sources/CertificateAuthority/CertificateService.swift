public import X509
internal import SwiftASN1
public import Foundation
public import MeshModel
public import Metrics
public import Logging
internal import Crypto
internal import Synchronization

/// The running CA: signs workload certificates (for SDS and for CSRs), checks CSRs, records every
/// issuance, and reports its state and metrics with Istio's names.
public final class CertificateService: Sendable {
    /// Lifetimes and key type.
    public struct Options: Sendable {
        /// Workload certificate lifetime when the request does not ask for one (24 h).
        public var defaultTTL: TimeInterval
        /// Longest lifetime a request may ask for (90 days); longer requests are refused.
        public var maximumTTL: TimeInterval
        /// Key type of keys meshd makes for proxies.
        public var workloadKeyAlgorithm: KeyAlgorithm
        /// The SPIFFE trust domain.
        public var trustDomain: String
        /// A directory where a PEM copy of every issued chain is kept (`<serial>.pem`, leaf first),
        /// for auditors and for tests that check every certificate; `nil` keeps none.
        public var copiesDirectory: String?
        /// FIPS mode: CSRs must also carry an approved signature (``ApprovedAlgorithms``).
        public var fips: Bool

        /// Istio's defaults.
        public init(
            defaultTTL: TimeInterval = 86400, maximumTTL: TimeInterval = 90 * 86400, workloadKeyAlgorithm: KeyAlgorithm = .ecdsaP256,
            trustDomain: String = "cluster.local", copiesDirectory: String? = nil, fips: Bool = false
        ) {
            self.fips = fips
            self.defaultTTL = defaultTTL
            self.maximumTTL = maximumTTL
            self.workloadKeyAlgorithm = workloadKeyAlgorithm
            self.trustDomain = trustDomain
            self.copiesDirectory = copiesDirectory
        }
    }

    /// What `meshctl ca status` shows.
    public struct Status: Codable, Hashable, Sendable {
        /// One certificate of the CA.
        public struct CertificateInfo: Codable, Hashable, Sendable {
            /// Subject DN.
            public var subject: String
            /// SHA-256 fingerprint of the DER, hex.
            public var fingerprint: String
            /// End of validity.
            public var notAfter: Date
            /// Serial (hex).
            public var serial: String
        }

        /// Self-signed or plugged in.
        public var mode: String
        /// The trust domain.
        public var trustDomain: String
        /// The roots in the trust bundle.
        public var roots: [CertificateInfo]
        /// The certificate that signs leaves (the root itself in self-signed mode).
        public var signer: CertificateInfo
        /// Workload certificate lifetime by default, seconds.
        public var defaultTTLSeconds: Int
        /// Longest lifetime a request may ask for, seconds.
        public var maximumTTLSeconds: Int
        /// The certificates between the signer and its root (plugged-in CAs).
        public var chain: [CertificateInfo] = []
        /// The root rotation in progress, if any.
        public var rotation: CALifecycle.RotationStatus?
    }

    /// Options.
    public let options: Options
    private let authority: Mutex<SigningAuthority>
    private let crossSignedRoots = Mutex<[Certificate]>([])
    /// The issuance ledger.
    public let ledger: IssuanceLedger
    private let clock: @Sendable () -> Date
    private let random: RandomSource
    private let logger: Logger
    private let csrCount: Counter
    private let issued: Counter
    private let refused: CounterFamily
    private let rootExpiry: Gauge
    private let chainExpiry: Gauge

    /// A service signing with `authority`.
    public init(
        authority: SigningAuthority, options: Options, ledger: IssuanceLedger, clock: @escaping @Sendable () -> Date = Date.init, random: RandomSource = .system,
        logger: Logger, metrics: any MetricsFactory
    ) {
        self.random = random
        self.authority = Mutex(authority)
        self.options = options
        self.ledger = ledger
        self.clock = clock
        self.logger = logger
        csrCount = Counter(label: "citadel_server_csr_count", dimensions: [], factory: metrics)
        issued = Counter(label: "citadel_server_success_cert_issuance_count", dimensions: [], factory: metrics)
        refused = CounterFamily(label: "meshd_ca_csr_refused_total", dimension: "reason", factory: metrics)
        rootExpiry = Gauge(label: "citadel_server_root_cert_expiry_timestamp", dimensions: [], factory: metrics)
        chainExpiry = Gauge(label: "citadel_server_cert_chain_expiry_timestamp", dimensions: [], factory: metrics)
        recordExpiry(authority)
    }

    /// The signer in use.
    public var signingAuthority: SigningAuthority {
        authority.withLock { $0 }
    }

    /// Signs with `next` from now on; `crossSigned` are appended to meshd's own serving chain.
    public func replace(_ next: SigningAuthority, crossSigned: [Certificate]) {
        authority.withLock { $0 = next }
        crossSignedRoots.withLock { $0 = crossSigned }
        recordExpiry(next)
    }

    /// The trust bundle as PEM (every root, concatenated).
    public func trustBundlePEM() throws -> String {
        try signingAuthority.roots.map { try $0.serializeAsPEM().pemString }.joined(separator: "\n") + "\n"
    }

    /// Makes a key and a certificate for a proxy of `identity` (the SDS path).
    public func issueWithNewKey(identity: SpiffeID, caller: String) throws(CAError) -> (certificate: IssuedCertificate, keyPEM: String) {
        let key: Certificate.PrivateKey
        let keyPEM: String
        do {
            var generator = random
            key = try options.workloadKeyAlgorithm.generate(using: &generator)
            keyPEM = try key.serializeAsPEM().pemString
        } catch {
            throw CAError(.keyFailed, "cannot make a workload key: \(error)", cause: error)
        }
        let certificate = try issue(publicKey: key.publicKey, identity: identity, ttl: options.defaultTTL, caller: caller, path: "sds")
        return (certificate, keyPEM)
    }

    /// Checks and signs a CSR for `caller`. `requestedTTL` of zero or less means the default; above
    /// the maximum is refused. Every refusal is counted by reason and logged with the reason; the
    /// caller should get only a generic error.
    public func sign(csrPEM: String, requestedTTL: Int64, caller: SpiffeID, callerDescription: String, path: String) throws(CAError) -> IssuedCertificate {
        csrCount.increment()
        do throws(CAError) {
            let ttl = requestedTTL <= 0 ? options.defaultTTL : TimeInterval(requestedTTL)
            guard ttl <= options.maximumTTL else {
                throw CAError(.ttlTooLong, "requested \(requestedTTL) s; the maximum is \(Int(options.maximumTTL)) s")
            }
            let publicKey = try CSRPolicy.check(pem: csrPEM, caller: caller, fips: options.fips)
            return try issue(publicKey: publicKey, identity: caller, ttl: ttl, caller: callerDescription, path: path)
        } catch {
            refuse(error, caller: callerDescription, path: path)
            throw error
        }
    }

    /// Counts and logs a refusal decided outside the CSR checks (authentication, rate limits).
    public func refuse(_ error: CAError, caller: String, path: String) {
        refused.increment(error.code.rawValue)
        logger.warning("certificate request refused", metadata: [
            "reason": "\(error.code)", "detail": "\(error.message)", "caller": "\(caller)", "path": "\(path)",
        ])
    }

    /// A TLS server certificate for meshd's own endpoints, with a fresh key.
    public func serverCertificate(dnsNames: [String], ipAddresses: [String], ttl: TimeInterval) throws -> (chainPEM: String, keyPEM: String) {
        var generator = random
        let key = try KeyAlgorithm.ecdsaP256.generate(using: &generator)
        let signer = signingAuthority
        let certificate = try signer.issueServerCertificate(
            publicKey: key.publicKey, dnsNames: dnsNames, ipAddresses: ipAddresses, ttl: ttl, now: clock(), generator: &generator)
        // Below the signer: its intermediates, then each former root's successor signed by it, so
        // a client that trusts only an older root still finds a path.
        let intermediates = ([signer.certificate] + signer.chain).filter { !signer.roots.contains($0) }
        let chain = [certificate] + intermediates + crossSignedRoots.withLock { $0 }
        try ledger.append(.init(
            serial: SerialNumbers.hex(certificate.serialNumber), identity: dnsNames.joined(separator: ","),
            notBefore: certificate.notValidBefore, notAfter: certificate.notValidAfter, caller: "meshd", path: "server", issuerKey: signer.keyID))
        keepCopy([certificate] + intermediates + [signer.root], serial: SerialNumbers.hex(certificate.serialNumber))
        return (try chain.map { try $0.serializeAsPEM().pemString }.joined(separator: "\n") + "\n", try key.serializeAsPEM().pemString + "\n")
    }

    private func keepCopy(_ chain: [Certificate], serial: String) {
        guard let directory = options.copiesDirectory else { return }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let text = try chain.map { try $0.serializeAsPEM().pemString + "\n" }.joined()
            try AtomicFile.write(text, to: "\(directory)/\(serial).pem", mode: 0o644)
        } catch {
            logger.warning("cannot keep a copy of an issued certificate", metadata: ["serial": "\(serial)", "error": "\(error)"])
        }
    }

    /// The CA's state.
    public var status: Status {
        let signer = signingAuthority
        return Status(
            mode: signer.mode.rawValue, trustDomain: options.trustDomain, roots: signer.roots.map(Self.info),
            signer: Self.info(signer.certificate), defaultTTLSeconds: Int(options.defaultTTL), maximumTTLSeconds: Int(options.maximumTTL),
            chain: signer.chain.filter { !signer.roots.contains($0) }.map(Self.info))
    }

    private func issue(publicKey: Certificate.PublicKey, identity: SpiffeID, ttl: TimeInterval, caller: String, path: String) throws(CAError) -> IssuedCertificate {
        var generator = random
        let signer = signingAuthority
        let certificate = try signer.issueWorkloadCertificate(publicKey: publicKey, identity: identity, ttl: ttl, now: clock(), generator: &generator)
        do {
            try ledger.append(.init(
                serial: certificate.serialHex, identity: identity.uri, notBefore: certificate.leaf.notValidBefore,
                notAfter: certificate.leaf.notValidAfter, caller: caller, path: path, issuerKey: signer.keyID))
        } catch {
            throw CAError(.ledger, "cannot record the issuance in \(ledger.path): \(error)", cause: error)
        }
        issued.increment()
        keepCopy(certificate.chain, serial: certificate.serialHex)
        logger.debug("certificate issued", metadata: ["serial": "\(certificate.serialHex)", "identity": "\(identity)", "path": "\(path)"])
        return certificate
    }

    private func recordExpiry(_ authority: SigningAuthority) {
        rootExpiry.record(authority.roots.map(\.notValidAfter.timeIntervalSince1970).min() ?? 0)
        chainExpiry.record(([authority.certificate] + authority.chain).map(\.notValidAfter.timeIntervalSince1970).min() ?? 0)
    }

    static func info(_ certificate: Certificate) -> Status.CertificateInfo {
        let digest = SHA256.hash(data: certificate.derBytes).map { String(format: "%02x", $0) }.joined()
        return .init(subject: certificate.subject.description, fingerprint: digest, notAfter: certificate.notValidAfter, serial: SerialNumbers.hex(certificate.serialNumber))
    }
}

/// Counters of one metric, one per value of a label, made on first use.
final class CounterFamily: Sendable {
    private let label: String
    private let dimension: String
    private let factory: any MetricsFactory
    private let counters = Mutex<[String: Counter]>([:])

    init(label: String, dimension: String, factory: any MetricsFactory) {
        self.label = label
        self.dimension = dimension
        self.factory = factory
    }

    func increment(_ value: String) {
        counters.withLock { counters in
            if counters[value] == nil {
                counters[value] = Counter(label: label, dimensions: [(dimension, value)], factory: factory)
            }
            return counters[value]!
        }.increment()
    }
}
