public import Foundation
public import MeshModel
public import CertificateAuthority
public import EnvoyAPI
internal import Crypto
internal import Synchronization
internal import SwiftASN1
internal import X509

/// The workload certificates meshd made for proxies over SDS, one per proxy (node id), each with
/// a key meshd made for that proxy.
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

        /// When the certificate should be replaced: `ratio` of its lifetime left (Istio: 0.5).
        public func rotationPoint(remaining ratio: Double) -> Date {
            notAfter.addingTimeInterval(-notAfter.timeIntervalSince(notBefore) * ratio)
        }
    }

    private let directory: String
    private let service: CertificateService
    private let clock: @Sendable () -> Date
    private let entries = Mutex<[String: Entry]>([:])
    /// The share of a certificate's lifetime left when it is replaced.
    public let rotationRatio: Double

    /// A cache under `<dataDirectory>/sds`.
    public init(dataDirectory: String, service: CertificateService, rotationRatio: Double = 0.5, clock: @escaping @Sendable () -> Date = Date.init) throws {
        directory = dataDirectory + "/sds"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        AtomicFile.removeLeftovers(in: directory)
        self.service = service
        self.rotationRatio = rotationRatio
        self.clock = clock
    }

    /// The certificate of `proxy` for `identity`: the one it has if still before its rotation
    /// point and chaining to a current root, else a new one.
    public func certificate(proxy: String, identity: SpiffeID) throws -> Entry {
        let now = clock()
        if let existing = lookup(proxy), existing.identity == identity.uri, now < existing.rotationPoint(remaining: rotationRatio), isCurrent(existing) {
            return existing
        }
        let issued = try service.issueWithNewKey(identity: identity, caller: "proxy:\(proxy)")
        let entry = Entry(
            identity: identity.uri, chainPEM: try issued.certificate.chainPEM(), keyPEM: issued.keyPEM,
            notBefore: issued.certificate.leaf.notValidBefore, notAfter: issued.certificate.leaf.notValidAfter,
            serial: issued.certificate.serialHex)
        try store(entry, proxy: proxy)
        return entry
    }

    /// The certificate a proxy holds, without issuing.
    public func lookup(_ proxy: String) -> Entry? {
        if let cached = entries.withLock({ $0[proxy] }) { return cached }
        guard let data = FileManager.default.contents(atPath: path(proxy)) else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        guard let entry = try? decoder.decode(Entry.self, from: data) else { return nil }
        entries.withLock { $0[proxy] = entry }
        return entry
    }

    /// The SDS secrets of a certificate: `default` (chain and key) and `ROOTCA` (trust bundle).
    public func secrets(for entry: Entry) throws -> [XDSResource] {
        var certificate = Envoy_Extensions_TransportSockets_Tls_V3_Secret()
        certificate.name = "default"
        var pair = Envoy_Extensions_TransportSockets_Tls_V3_TlsCertificate()
        var chain = Envoy_Config_Core_V3_DataSource()
        chain.inlineString = entry.chainPEM.dropLast(entry.chainPEM.count > 1 ? 1 : 0).joined(separator: "\n")
        var key = Envoy_Config_Core_V3_DataSource()
        key.inlineString = entry.keyPEM
        pair.certificateChain = chain
        pair.privateKey = key
        certificate.tlsCertificate = pair
        var root = Envoy_Extensions_TransportSockets_Tls_V3_Secret()
        root.name = "ROOTCA"
        var validation = Envoy_Extensions_TransportSockets_Tls_V3_CertificateValidationContext()
        var bundle = Envoy_Config_Core_V3_DataSource()
        bundle.inlineString = try service.trustBundlePEM()
        validation.trustedCa = bundle
        root.validationContext = validation
        return [XDSResource(name: "default", message: certificate), XDSResource(name: "ROOTCA", message: root)]
    }

    private func isCurrent(_ entry: Entry) -> Bool {
        guard let rootPEM = entry.chainPEM.last else { return false }
        let roots = (try? service.signingAuthority.roots.map { try $0.serializeAsPEM().pemString }) ?? []
        return roots.contains { $0.trimmingCharacters(in: .whitespacesAndNewlines) == rootPEM.trimmingCharacters(in: .whitespacesAndNewlines) }
    }

    private func store(_ entry: Entry, proxy: String) throws {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        try AtomicFile.write(Array(try encoder.encode(entry)), to: path(proxy), mode: 0o600)
        entries.withLock { $0[proxy] = entry }
    }

    private func path(_ proxy: String) -> String {
        directory + "/" + SHA256.hash(data: Data(proxy.utf8)).prefix(16).map { String(format: "%02x", $0) }.joined() + ".json"
    }
}
