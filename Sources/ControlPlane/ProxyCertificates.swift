public import Foundation
public import MeshModel
public import CertificateAuthority
public import EnvoyAPI
internal import Crypto
internal import Synchronization
internal import SwiftASN1
internal import X509

/// The workload certificates meshd made for proxies over SDS, one per workload (the WorkloadEntry
/// the stream's token and metadata authenticate, never the node id the proxy chose), each with a
/// key meshd made for it.
///
/// A proxy that reconnects — also after a meshd restart — gets the certificate it had as long as
/// it is before its rotation point, so reconnects never cause a burst of issuance. The records live
/// in `<data>/sds/` (0600, written atomically).
public final class ProxyCertificates: Sendable {
    /// One proxy's certificate.
    public struct Entry: Codable, Hashable, Sendable {
        /// The SPIFFE URI in the certificate.
        public var identity: String
        /// PEMs, leaf first, root last.
        public var chainPEM: [String]
        /// The key, PEM.
        public var keyPEM: String
        /// Validity start.
        public var notBefore: Date
        /// Validity end.
        public var notAfter: Date
        /// Serial, hex.
        public var serial: String
        /// Key id of the signer (absent in records made before it was kept: such a record is replaced).
        public var issuerKey: String?
        /// When it is replaced (the rotation point with this certificate's jitter).
        public var rotateAt: Date?

        /// When the certificate should be replaced: `ratio` of its lifetime left (Istio: 0.5).
        public func rotationPoint(remaining ratio: Double) -> Date {
            notAfter.addingTimeInterval(-notAfter.timeIntervalSince(notBefore) * ratio)
        }
    }

    private let directory: String
    private let service: CertificateService
    private let clock: @Sendable () -> Date
    private let random: RandomSource
    private let entries = Mutex<[String: Entry]>([:])
    /// The last trust bundle made into a `ROOTCA` secret, and that secret (most pushes reuse it).
    private let lastRootSecret = Mutex<(roots: [Certificate], resource: XDSResource, fingerprints: Set<String>)?>(nil)
    /// The share of a certificate's lifetime left when it is replaced (Istio: 0.5).
    public let rotationRatio: Double
    /// The most the ratio varies per certificate (±), so that proxies started together do not
    /// all renew in the same second.
    public let rotationJitter: Double

    /// A cache under `<dataDirectory>/sds`.
    public init(
        dataDirectory: String, service: CertificateService, rotationRatio: Double = 0.5, rotationJitter: Double = 0.01,
        clock: @escaping @Sendable () -> Date = Date.init, random: RandomSource = .system
    ) throws {
        directory = dataDirectory + "/sds"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        AtomicFile.removeLeftovers(in: directory)
        self.service = service
        self.rotationRatio = rotationRatio
        self.rotationJitter = rotationJitter
        self.clock = clock
        self.random = random
    }

    /// Whether `entry` must be replaced now: past its rotation point, no longer valid, or not
    /// signed by the signer in use.
    /// `signerKey` is the signer's key id when the caller already has it (checking many proxies).
    public func isDue(_ entry: Entry, now: Date, signerKey: String? = nil) -> Bool {
        now >= (entry.rotateAt ?? entry.rotationPoint(remaining: rotationRatio)) || now >= entry.notAfter
            || entry.issuerKey != (signerKey ?? service.signingAuthority.keyID)
    }

    /// The key id of the signer in use.
    public var signerKey: String { service.signingAuthority.keyID }

    /// The certificate of `workload` (namespace/name) for `identity`: the one it has unless it is
    /// due, else a new one.
    public func certificate(workload proxy: String, identity: SpiffeID) throws -> Entry {
        let now = clock()
        if let existing = lookup(proxy), existing.identity == identity.uri, !isDue(existing, now: now) {
            return existing
        }
        let issued = try service.issueWithNewKey(identity: identity, caller: "proxy:\(proxy)")
        let leaf = issued.certificate.leaf
        // The lifetime counts from now: notBefore is backdated.
        let lifetime = leaf.notValidAfter.timeIntervalSince(min(now, leaf.notValidAfter))
        var generator = random
        let ratio = rotationRatio + (rotationJitter > 0 ? Double.random(in: -rotationJitter...rotationJitter, using: &generator) : 0)
        let entry = Entry(
            identity: identity.uri, chainPEM: try issued.certificate.chainPEM(), keyPEM: issued.keyPEM,
            notBefore: leaf.notValidBefore, notAfter: leaf.notValidAfter, serial: issued.certificate.serialHex,
            issuerKey: issued.certificate.issuerKey, rotateAt: leaf.notValidAfter.addingTimeInterval(-lifetime * ratio))
        try store(entry, proxy: proxy)
        return entry
    }

    /// Every stored certificate, by proxy id hash (for a rotation's view of disconnected proxies).
    public func allEntries() -> [Entry] {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasSuffix(".json") }.compactMap { name in
            FileManager.default.contents(atPath: directory + "/" + name).flatMap { try? decoder.decode(Entry.self, from: $0) }
        }
    }

    /// The certificate a workload holds, without issuing.
    public func lookup(_ proxy: String) -> Entry? {
        if let cached = entries.withLock({ $0[proxy] }) { return cached }
        guard let data = FileManager.default.contents(atPath: path(proxy)) else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        guard let entry = try? decoder.decode(Entry.self, from: data) else { return nil }
        entries.withLock { $0[proxy] = entry }
        return entry
    }

    /// The SDS secret `default` of a certificate meshd made: chain (without the root) and key.
    public func certificateSecret(for entry: Entry) -> XDSResource {
        var pair = Envoy_Extensions_TransportSockets_Tls_V3_TlsCertificate()
        pair.certificateChain = Self.inline(entry.chainPEM.dropLast(entry.chainPEM.count > 1 ? 1 : 0).joined(separator: "\n"))
        pair.privateKey = Self.inline(entry.keyPEM)
        var secret = Envoy_Extensions_TransportSockets_Tls_V3_Secret()
        secret.name = "default"
        secret.tlsCertificate = pair
        return XDSResource(name: "default", message: secret)
    }

    /// The SDS secret `default` of a proxy whose renewal job keeps its certificate in `directory`
    /// (``RenewalDirectory``): references to the files, re-read by Envoy whenever the directory's
    /// `..data` link moves. The key never leaves the workload's machine.
    public static func fileCertificateSecret(directory: String) -> XDSResource {
        var pair = Envoy_Extensions_TransportSockets_Tls_V3_TlsCertificate()
        pair.certificateChain = file(directory + "/" + RenewalDirectory.chainFile)
        pair.privateKey = file(directory + "/" + RenewalDirectory.keyFile)
        var watched = Envoy_Config_Core_V3_WatchedDirectory()
        watched.path = directory
        pair.watchedDirectory = watched
        var secret = Envoy_Extensions_TransportSockets_Tls_V3_Secret()
        secret.name = "default"
        secret.tlsCertificate = pair
        return XDSResource(name: "default", message: secret)
    }

    /// The SDS secret `ROOTCA` (the trust bundle) and the SHA-256 fingerprints of its roots.
    public func rootSecret() throws -> (resource: XDSResource, roots: Set<String>) {
        let roots = service.signingAuthority.roots
        if let last = lastRootSecret.withLock({ $0 }), last.roots == roots { return (last.resource, last.fingerprints) }
        var validation = Envoy_Extensions_TransportSockets_Tls_V3_CertificateValidationContext()
        validation.trustedCa = Self.inline(try roots.map { try $0.serializeAsPEM().pemString }.joined(separator: "\n") + "\n")
        var secret = Envoy_Extensions_TransportSockets_Tls_V3_Secret()
        secret.name = "ROOTCA"
        secret.validationContext = validation
        let made = (roots: roots, resource: XDSResource(name: "ROOTCA", message: secret), fingerprints: Set(roots.map(CALifecycle.fingerprint)))
        lastRootSecret.withLock { $0 = made }
        return (made.resource, made.fingerprints)
    }

    private static func inline(_ text: String) -> Envoy_Config_Core_V3_DataSource {
        var source = Envoy_Config_Core_V3_DataSource()
        source.inlineString = text
        return source
    }

    private static func file(_ path: String) -> Envoy_Config_Core_V3_DataSource {
        var source = Envoy_Config_Core_V3_DataSource()
        source.filename = path
        return source
    }

    private func store(_ entry: Entry, proxy: String) throws {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        // Not durable: only a machine crash (not a crash of meshd: the page cache survives it) can
        // lose a record, and that only means a new certificate when the proxy reconnects; two
        // fsyncs per connecting proxy bounded fleet restarts.
        try AtomicFile.write(Array(try encoder.encode(entry)), to: path(proxy), mode: 0o600, durable: false)
        entries.withLock { $0[proxy] = entry }
    }

    private func path(_ proxy: String) -> String {
        directory + "/" + SHA256.hash(data: Data(proxy.utf8)).prefix(16).map { String(format: "%02x", $0) }.joined() + ".json"
    }
}
