public import X509
public import Foundation
public import MeshModel
internal import SwiftASN1
internal import Crypto

/// The key and certificate that sign workload certificates, with the chain up to the trusted root.
///
/// Every certificate starts ``backdating`` before the moment it is signed: validity is written in
/// whole seconds and peers check it at once, often on another clock.
///
/// Self-signed mode: the signing certificate is the root. Plug-in mode (Istio's `cacerts` layout):
/// the signing certificate is an intermediate and `chain` holds the certificates above it.
public struct SigningAuthority: Sendable {
    /// How the CA was set up.
    public enum Mode: String, Sendable, Codable {
        case selfSigned = "self-signed"
        case pluggedIn = "plugged-in"
    }

    /// The certificate whose key signs leaves.
    public let certificate: Certificate
    let privateKey: Certificate.PrivateKey
    /// The certificates from the signer's issuer up to and including the root (empty when the
    /// signer is the root).
    public let chain: [Certificate]
    /// The trusted roots (the trust bundle proxies get as `ROOTCA`).
    public let roots: [Certificate]
    /// Self-signed or plugged in.
    public let mode: Mode

    /// A signing authority from its parts; checks that the key matches the certificate.
    public init(certificate: Certificate, privateKey: Certificate.PrivateKey, chain: [Certificate], roots: [Certificate], mode: Mode) throws(CAError) {
        guard privateKey.publicKey == certificate.publicKey else {
            throw CAError(.keyMismatch, "the CA private key does not belong to the CA certificate \(certificate.subject)")
        }
        self.init(unchecked: certificate, privateKey: privateKey, chain: chain, roots: roots, mode: mode)
    }

    /// How far before "now" certificates start to be valid.
    public static let backdating: TimeInterval = 60

    /// The root the signer chains to.
    public var root: Certificate { chain.last ?? certificate }

    /// Identifies the signing key (hex SHA-256 of its public key bits): a root re-signed with
    /// the same key keeps it, a new CA gets a new one.
    public let keyID: String
    /// The signer's subject key identifier (the leaves' authority key identifier).
    private let issuerKeyIdentifier: ArraySlice<UInt8>

    /// The key id of `publicKey`.
    public static func keyID(_ publicKey: Certificate.PublicKey) -> String {
        hex(SHA256.hash(data: Array(publicKey.subjectPublicKeyInfoBytes)))
    }

    /// Lower-case hex of `bytes`.
    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The same signer with another trust bundle (during a root rotation, the union of old and new).
    public func trusting(_ roots: [Certificate]) -> SigningAuthority {
        SigningAuthority(unchecked: certificate, privateKey: privateKey, chain: chain, roots: roots, mode: mode)
    }

    /// The same signer with a re-signed certificate (root renewal with the same key).
    func replacingCertificate(_ renewed: Certificate, roots: [Certificate]) -> SigningAuthority {
        SigningAuthority(unchecked: renewed, privateKey: privateKey, chain: chain, roots: roots, mode: mode)
    }

    private init(unchecked certificate: Certificate, privateKey: Certificate.PrivateKey, chain: [Certificate], roots: [Certificate], mode: Mode) {
        self.certificate = certificate
        self.privateKey = privateKey
        self.chain = chain
        self.roots = roots
        self.mode = mode
        keyID = Self.keyID(certificate.publicKey)
        issuerKeyIdentifier = (try? certificate.extensions.subjectKeyIdentifier?.keyIdentifier) ?? SubjectKeyIdentifier(hash: certificate.publicKey).keyIdentifier
    }

    /// The private key as PEM (for persisting a rotation's state; written 0600).
    func privateKeyPEM() throws -> String {
        try privateKey.serializeAsPEM().pemString + "\n"
    }

    /// `root` (another CA certificate) signed by this CA: same subject and key as `root`, issued
    /// by this signer. Clients that trust only this CA can then verify chains that end in `root`
    /// (used for meshd's own serving certificate across a root rotation).
    public func crossSign(_ root: Certificate, now: Date, generator: inout some RandomNumberGenerator) throws -> Certificate {
        let issuerKeyID = try certificate.extensions.subjectKeyIdentifier?.keyIdentifier ?? SubjectKeyIdentifier(hash: certificate.publicKey).keyIdentifier
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
            Critical(KeyUsage(digitalSignature: true, keyCertSign: true, cRLSign: true))
            SubjectKeyIdentifier(hash: root.publicKey)
            AuthorityKeyIdentifier(keyIdentifier: issuerKeyID)
        }
        return try Certificate(
            version: .v3, serialNumber: SerialNumbers.random(using: &generator), publicKey: root.publicKey,
            notValidBefore: now.addingTimeInterval(-Self.backdating), notValidAfter: min(root.notValidAfter, certificate.notValidAfter),
            issuer: certificate.subject, subject: root.subject, signatureAlgorithm: PublicKeyKind(certificate.publicKey).signatureAlgorithm,
            extensions: extensions, issuerPrivateKey: privateKey)
    }

    /// Makes a new self-signed root: `O=<trust domain>`, 10 years, CA:true, keyCertSign and cRLSign.
    /// `name` is the common name; a rotation's new root gets one with its creation date, so
    /// that two roots of one mesh never share a subject.
    public static func makeSelfSignedRoot(
        algorithm: KeyAlgorithm, trustDomain: String, now: Date, validity: TimeInterval = 10 * 365.25 * 86400,
        name commonName: String = "meshd root CA", generator: inout some RandomNumberGenerator
    ) throws -> (certificate: Certificate, key: Certificate.PrivateKey) {
        let key = try algorithm.generate(using: &generator)
        let name = try DistinguishedName {
            OrganizationName(trustDomain)
            CommonName(commonName)
        }
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
            Critical(KeyUsage(digitalSignature: true, keyCertSign: true, cRLSign: true))
            SubjectKeyIdentifier(hash: key.publicKey)
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: SerialNumbers.random(using: &generator), publicKey: key.publicKey,
            notValidBefore: now.addingTimeInterval(-backdating), notValidAfter: now.addingTimeInterval(validity),
            issuer: name, subject: name, signatureAlgorithm: PublicKeyKind(key.publicKey).signatureAlgorithm,
            extensions: extensions, issuerPrivateKey: key)
        return (certificate, key)
    }

    /// Re-signs a self-signed root with its own key and a new validity, keeping subject and key
    /// (Istio's root renewal): leaves it signed stay valid under the renewed root.
    public func renewedRoot(now: Date, validity: TimeInterval = 10 * 365.25 * 86400, generator: inout some RandomNumberGenerator) throws -> Certificate {
        try Certificate(
            version: .v3, serialNumber: SerialNumbers.random(using: &generator), publicKey: certificate.publicKey,
            notValidBefore: now.addingTimeInterval(-Self.backdating), notValidAfter: now.addingTimeInterval(validity),
            issuer: certificate.subject, subject: certificate.subject, signatureAlgorithm: certificate.signatureAlgorithm,
            extensions: certificate.extensions, issuerPrivateKey: privateKey)
    }

    /// Signs a workload certificate for `identity` over `publicKey`.
    ///
    /// The certificate has an empty subject and the SPIFFE URI as its only, critical, SAN; EKU
    /// server and client auth; digitalSignature (plus keyEncipherment for RSA keys only); SKI and
    /// AKI; a 128-bit random serial. It never outlives the signer.
    public func issueWorkloadCertificate(
        publicKey: Certificate.PublicKey, identity: SpiffeID, ttl: TimeInterval, now: Date,
        generator: inout some RandomNumberGenerator
    ) throws(CAError) -> IssuedCertificate {
        let notAfter = min(now.addingTimeInterval(ttl), certificate.notValidAfter)
        guard notAfter > now else {
            throw CAError(.issuerExpired, "the signing certificate \(certificate.subject) is not valid after \(certificate.notValidAfter)")
        }
        let isRSA = PublicKeyKind(publicKey).isRSA
        do {
            let issuerKeyID = issuerKeyIdentifier
            let extensions = try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true, keyEncipherment: isRSA))
                try ExtendedKeyUsage([.serverAuth, .clientAuth])
                AuthorityKeyIdentifier(keyIdentifier: issuerKeyID)
                SubjectKeyIdentifier(hash: publicKey)
                Critical(SubjectAlternativeNames([.uniformResourceIdentifier(identity.uri)]))
            }
            let leaf = try Certificate(
                version: .v3, serialNumber: SerialNumbers.random(using: &generator), publicKey: publicKey,
                notValidBefore: now.addingTimeInterval(-Self.backdating), notValidAfter: notAfter, issuer: certificate.subject, subject: DistinguishedName(),
                signatureAlgorithm: PublicKeyKind(certificate.publicKey).signatureAlgorithm, extensions: extensions,
                issuerPrivateKey: privateKey)
            let fullChain = [leaf] + (mode == .selfSigned ? [] : [certificate]) + chain
            return try IssuedCertificate(leaf: leaf, chain: fullChain.count == 1 ? [leaf, certificate] : fullChain, identity: identity, issuerKey: keyID)
        } catch let error as CAError {
            throw error
        } catch {
            throw CAError(.signFailed, "signing a certificate for \(identity) failed: \(error)", cause: error)
        }
    }

    /// Signs a server certificate for meshd's own endpoints (xDS over TLS).
    public func issueServerCertificate(
        publicKey: Certificate.PublicKey, dnsNames: [String], ipAddresses: [String], ttl: TimeInterval, now: Date,
        generator: inout some RandomNumberGenerator
    ) throws -> Certificate {
        var names: [GeneralName] = dnsNames.map { .dnsName($0) }
        for address in ipAddresses {
            switch IPAddress(address) {
            case .v4(let bits)?: names.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice([24, 16, 8, 0].map { UInt8((bits >> UInt32($0)) & 0xff) }))))
            case .v6(let groups)?: names.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(groups.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xff)] }))))
            case nil: continue
            }
        }
        let issuerKeyID = try certificate.extensions.subjectKeyIdentifier?.keyIdentifier ?? SubjectKeyIdentifier(hash: certificate.publicKey).keyIdentifier
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true, keyEncipherment: PublicKeyKind(publicKey).isRSA))
            try ExtendedKeyUsage([.serverAuth, .clientAuth])
            AuthorityKeyIdentifier(keyIdentifier: issuerKeyID)
            SubjectKeyIdentifier(hash: publicKey)
            SubjectAlternativeNames(names)
        }
        return try Certificate(
            version: .v3, serialNumber: SerialNumbers.random(using: &generator), publicKey: publicKey,
            notValidBefore: now.addingTimeInterval(-Self.backdating), notValidAfter: min(now.addingTimeInterval(ttl), certificate.notValidAfter),
            issuer: certificate.subject, subject: try DistinguishedName { CommonName("meshd") }, signatureAlgorithm: PublicKeyKind(certificate.publicKey).signatureAlgorithm,
            extensions: extensions, issuerPrivateKey: privateKey)
    }
}

/// A signed workload certificate and the chain to serve with it.
public struct IssuedCertificate: Sendable {
    /// The leaf.
    public let leaf: Certificate
    /// Leaf first, root last.
    public let chain: [Certificate]
    /// The identity in the leaf's SAN.
    public let identity: SpiffeID
    /// The key id (``SigningAuthority/keyID``) of the certificate that signed the leaf.
    public let issuerKey: String

    /// A certificate and its chain.
    public init(leaf: Certificate, chain: [Certificate], identity: SpiffeID, issuerKey: String? = nil) throws {
        self.leaf = leaf
        self.chain = chain
        self.identity = identity
        self.issuerKey = issuerKey ?? (chain.count > 1 ? SigningAuthority.keyID(chain[1].publicKey) : "")
    }

    /// The serial number in hex.
    public var serialHex: String { SerialNumbers.hex(leaf.serialNumber) }

    /// Each certificate of the chain as PEM, leaf first.
    public func chainPEM() throws -> [String] {
        try chain.map { try $0.serializeAsPEM().pemString }
    }
}

/// Serial numbers: 128 random bits.
public enum SerialNumbers {
    /// A positive 128-bit random serial, as Istio makes them (DER adds a zero byte when the top
    /// bit is set).
    public static func random(using generator: inout some RandomNumberGenerator) -> Certificate.SerialNumber {
        var bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        if bytes.allSatisfy({ $0 == 0 }) { bytes[15] = 1 }
        return Certificate.SerialNumber(bytes: bytes)
    }

    /// Lower-case hex of a serial, without DER's sign padding.
    public static func hex(_ serial: Certificate.SerialNumber) -> String {
        SigningAuthority.hex(serial.bytes.drop(while: { $0 == 0 }))
    }
}
