internal import CertificateAuthority
internal import Foundation
internal import Logging
internal import Metrics
internal import ServiceLifecycle
internal import X509
internal import SwiftASN1
internal import Synchronization

/// The periodic certificate job: advances a root rotation, renews the CA root when due, picks up
/// changed plug-in files, rotates proxies' certificates at their rotation point, renews meshd's
/// own serving certificate, and keeps the expiry metrics current. One ``check()`` per interval.
final class CertificateMaintenance: Sendable {
    let lifecycle: CALifecycle
    let service: CertificateService
    let provider: MeshProxyProvider
    let proxyCertificates: ProxyCertificates
    let serving: XDSServingCertificate?
    let tls: TLSContextHolder?
    let clock: @Sendable () -> Date
    let logger: Logger
    private let workloadExpiry: Gauge
    private let servingExpiry: Gauge

    init(
        lifecycle: CALifecycle, service: CertificateService, provider: MeshProxyProvider, proxyCertificates: ProxyCertificates,
        serving: XDSServingCertificate?, tls: TLSContextHolder?, clock: @escaping @Sendable () -> Date, logger: Logger, metrics: any MetricsFactory
    ) {
        self.lifecycle = lifecycle
        self.service = service
        self.provider = provider
        self.proxyCertificates = proxyCertificates
        self.serving = serving
        self.tls = tls
        self.clock = clock
        self.logger = logger
        workloadExpiry = Gauge(label: "meshd_workload_cert_earliest_expiry_timestamp", dimensions: [], factory: metrics)
        servingExpiry = Gauge(label: "meshd_xds_server_cert_expiry_timestamp", dimensions: [], factory: metrics)
    }

    /// One round of checks.
    func check() {
        if let update = lifecycle.tick(observe: observe) {
            service.replace(update.authority, crossSigned: lifecycle.crossSigned)
            if update.trustChanged { provider.sessions.resendSecrets() }
        }
        provider.rotateDue()
        refreshServingCertificate()
        if let earliest = provider.sessions.earliestCertificateExpiry { workloadExpiry.record(earliest.timeIntervalSince1970) }
    }

    /// What a rotation waits on: connected proxies' acknowledgements, and leaves from the old
    /// signer held elsewhere — CSR-issued ones (ledger) and disconnected proxies' (SDS records).
    func observe() -> RootRotation.Observation {
        guard let rotation = lifecycle.currentRotation else { return .init(proxies: [], oldLeaves: []) }
        let proxies = provider.sessions.rotationView(rotation)
        guard rotation.phase == .issuingFromNewRoot else { return .init(proxies: proxies, oldLeaves: []) }
        let now = clock()
        let connected = provider.sessions.connectedSerials
        var leaves: [RootRotation.Observation.Leaf] = []
        for entry in service.ledger.entries() where entry.path.hasSuffix("csr") && entry.notAfter > now {
            // Entries written before issuers were recorded may be from the old signer.
            if entry.issuerKey == nil || entry.issuerKey == rotation.oldSignerKey {
                leaves.append(.init(serial: entry.serial, identity: entry.identity, notAfter: entry.notAfter, holder: entry.path))
            }
        }
        for entry in proxyCertificates.allEntries() where entry.notAfter > now && !connected.contains(entry.serial) {
            if entry.issuerKey == nil || entry.issuerKey == rotation.oldSignerKey {
                leaves.append(.init(serial: entry.serial, identity: entry.identity, notAfter: entry.notAfter, holder: "disconnected proxy"))
            }
        }
        return .init(proxies: proxies, oldLeaves: leaves)
    }

    /// Renews meshd's xDS serving certificate when it is due or its issuer is no longer trusted,
    /// and keeps the listener's trust bundle (for client certificates) current.
    func refreshServingCertificate() {
        guard let serving, let tls else { return }
        do {
            let current = try serving.current()
            try tls.replaceIfChanged(chainPEM: current.chainPEM, keyPEM: current.keyPEM, trustBundlePEM: try service.trustBundlePEM())
            servingExpiry.record(current.notAfter.timeIntervalSince1970)
        } catch {
            logger.error("cannot renew meshd's xDS serving certificate; the current one stays", metadata: ["error": "\(error)"])
        }
    }
}

/// Runs ``CertificateMaintenance`` every `interval` until shutdown.
struct CertificateMaintenanceService: Service {
    let maintenance: CertificateMaintenance
    let interval: Duration

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                if Task.isCancelled { break }
                maintenance.check()
            }
        }
    }
}

/// meshd's own TLS certificate for the xDS port, kept in `<data>/ca/xds-server.json` (0600) so
/// that restarts reuse it; replaced at half its life or when its issuer leaves the trust bundle.
final class XDSServingCertificate: Sendable {
    struct Stored: Codable, Hashable, Sendable {
        var chainPEM: String
        var keyPEM: String
        var notBefore: Date
        var notAfter: Date
        var issuerKey: String
        var dnsNames: [String]
        var ipAddresses: [String]
    }

    let path: String
    let service: CertificateService
    let dnsNames: [String]
    let ipAddresses: [String]
    let ttl: TimeInterval
    let clock: @Sendable () -> Date
    private let cached = Mutex<Stored?>(nil)

    init(dataDirectory: String, service: CertificateService, dnsNames: [String], ipAddresses: [String], ttl: TimeInterval, clock: @escaping @Sendable () -> Date) {
        path = dataDirectory + "/ca/xds-server.json"
        self.service = service
        self.dnsNames = dnsNames
        self.ipAddresses = ipAddresses
        self.ttl = ttl
        self.clock = clock
    }

    /// The certificate to serve: the stored one while usable, else a new one (stored).
    func current() throws -> Stored {
        if let stored = cached.withLock({ $0 }) ?? load(), usable(stored) {
            cached.withLock { $0 = stored }
            return stored
        }
        let issued = try service.serverCertificate(dnsNames: dnsNames, ipAddresses: ipAddresses, ttl: ttl)
        let leaf = try Certificate(pemDocument: try PEMDocument.parseMultiple(pemString: issued.chainPEM)[0])
        let signer = service.signingAuthority
        let stored = Stored(
            chainPEM: issued.chainPEM, keyPEM: issued.keyPEM, notBefore: leaf.notValidBefore, notAfter: leaf.notValidAfter,
            issuerKey: signer.keyID, dnsNames: dnsNames, ipAddresses: ipAddresses)
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        try AtomicFile.write(Array(try encoder.encode(stored)), to: path, mode: 0o600)
        cached.withLock { $0 = stored }
        return stored
    }

    private func usable(_ stored: Stored) -> Bool {
        let authority = service.signingAuthority
        let trustedKeys = Set(([authority.certificate] + authority.chain + authority.roots).map { SigningAuthority.keyID($0.publicKey) })
        let halfLife = stored.notAfter.addingTimeInterval(-stored.notAfter.timeIntervalSince(stored.notBefore) / 2)
        return clock() < halfLife && trustedKeys.contains(stored.issuerKey) && stored.dnsNames == dnsNames && stored.ipAddresses == ipAddresses
    }

    private func load() -> Stored? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try? decoder.decode(Stored.self, from: data)
    }
}
