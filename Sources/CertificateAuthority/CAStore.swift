public import X509
public import Foundation
internal import SwiftASN1

/// Where the CA's key material lives, and how it is loaded or made on first start.
public enum CAStore {
    /// The self-signed CA's files under the data directory.
    public struct SelfSignedLayout: Sendable {
        /// `<data>/ca`.
        public let directory: String
        /// The root certificate (0644).
        public var certificatePath: String { directory + "/root-cert.pem" }
        /// The root key (0600).
        public var keyPath: String { directory + "/root-key.pem" }

        /// The layout under `dataDirectory`.
        public init(dataDirectory: String) {
            directory = dataDirectory + "/ca"
        }
    }

    /// Loads the self-signed root from `layout`, or makes one (key first, then certificate, each
    /// written atomically) when none exists yet.
    ///
    /// A certificate without its key, or a key that does not match the certificate, is an error:
    /// meshd never silently replaces a CA that may have issued certificates.
    public static func loadOrCreateSelfSigned(
        _ layout: SelfSignedLayout, algorithm: KeyAlgorithm, trustDomain: String, now: Date,
        generator: inout some RandomNumberGenerator
    ) throws(CAError) -> (authority: SigningAuthority, created: Bool) {
        let manager = FileManager.default
        do {
            try manager.createDirectory(atPath: layout.directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw CAError(.storage, "cannot create \(layout.directory): \(error.localizedDescription)", cause: error)
        }
        AtomicFile.removeLeftovers(in: layout.directory)
        let hasCertificate = manager.fileExists(atPath: layout.certificatePath)
        let hasKey = manager.fileExists(atPath: layout.keyPath)
        if hasCertificate {
            guard hasKey else {
                throw CAError(.storage, "\(layout.certificatePath) exists but its key \(layout.keyPath) is missing; restore the key or move the CA directory away to start a new CA")
            }
            let certificate = try readCertificates(layout.certificatePath).first!
            let key = try readKey(layout.keyPath)
            try checkKeyPermissions(layout.keyPath)
            return (try SigningAuthority(certificate: certificate, privateKey: key, chain: [], roots: [certificate], mode: .selfSigned), false)
        }
        // First start (or a start interrupted before the certificate was written): make a new root.
        let made: (certificate: Certificate, key: Certificate.PrivateKey)
        do {
            made = try SigningAuthority.makeSelfSignedRoot(algorithm: algorithm, trustDomain: trustDomain, now: now, generator: &generator)
            try AtomicFile.write(try made.key.serializeAsPEM().pemString + "\n", to: layout.keyPath, mode: 0o600)
            try AtomicFile.write(try made.certificate.serializeAsPEM().pemString + "\n", to: layout.certificatePath, mode: 0o644)
        } catch let error as AtomicFile.WriteError {
            throw CAError(.storage, error.description)
        } catch {
            throw CAError(.createFailed, "cannot make the root CA: \(error)", cause: error)
        }
        return (try SigningAuthority(certificate: made.certificate, privateKey: made.key, chain: [], roots: [made.certificate], mode: .selfSigned), true)
    }

    /// Loads a plugged-in CA in Istio's layout: `ca-cert.pem` (signs leaves), `ca-key.pem`,
    /// `root-cert.pem` (trusted roots), `cert-chain.pem` (ca-cert up to the root).
    /// `mode` is `.pluggedIn` unless the files are meshd's own (a rotation's new self-signed root).
    public static func loadPluggedIn(directory: String, mode: SigningAuthority.Mode = .pluggedIn) throws(CAError) -> SigningAuthority {
        let signer = try readCertificates(directory + "/ca-cert.pem")[0]
        let key = try readKey(directory + "/ca-key.pem")
        let roots = try readCertificates(directory + "/root-cert.pem")
        var chain = try readCertificates(directory + "/cert-chain.pem")
        if chain.first == signer { chain.removeFirst() }
        if let top = chain.last ?? Optional(signer), !roots.contains(top) {
            guard let root = roots.first(where: { $0.subject == top.issuer && $0.publicKey.isValidSignature(top.signature, for: top) }) else {
                throw CAError(.chain, "\(directory): cert-chain.pem does not lead to a certificate in root-cert.pem")
            }
            chain.append(root)
        }
        var child = signer
        for parent in chain {
            guard parent.subject == child.issuer, parent.publicKey.isValidSignature(child.signature, for: child) else {
                throw CAError(.chain, "\(directory): \(child.subject) is not signed by \(parent.subject) in cert-chain.pem")
            }
            child = parent
        }
        return try SigningAuthority(certificate: signer, privateKey: key, chain: chain, roots: roots, mode: mode)
    }

    /// Writes `authority` in Istio's layout into `directory` (made 0700): the key 0600, each file
    /// atomically.
    public static func writeIstioLayout(_ authority: SigningAuthority, to directory: String) throws(CAError) {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            func pem(_ certificates: [Certificate]) throws -> String {
                try certificates.map { try $0.serializeAsPEM().pemString + "\n" }.joined()
            }
            try AtomicFile.write(try authority.privateKeyPEM(), to: directory + "/ca-key.pem", mode: 0o600)
            try AtomicFile.write(try pem([authority.certificate]), to: directory + "/ca-cert.pem", mode: 0o644)
            try AtomicFile.write(try pem([authority.certificate] + authority.chain), to: directory + "/cert-chain.pem", mode: 0o644)
            try AtomicFile.write(try pem(authority.roots), to: directory + "/root-cert.pem", mode: 0o644)
        } catch let error as AtomicFile.WriteError {
            throw CAError(.storage, error.description)
        } catch {
            throw CAError(.storage, "cannot write the CA to \(directory): \(error)", cause: error)
        }
    }

    /// Writes certificates as one PEM file, atomically.
    public static func writeCertificates(_ certificates: [Certificate], to path: String) throws(CAError) {
        do {
            try AtomicFile.write(try certificates.map { try $0.serializeAsPEM().pemString + "\n" }.joined(), to: path, mode: 0o644)
        } catch let error as AtomicFile.WriteError {
            throw CAError(.storage, error.description)
        } catch {
            throw CAError(.storage, "cannot write \(path): \(error)", cause: error)
        }
    }

    /// Every certificate in a PEM file.
    public static func readCertificates(_ path: String) throws(CAError) -> [Certificate] {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw CAError(.storage, "cannot read \(path): \(error.localizedDescription)", cause: error)
        }
        do {
            let certificates = try PEMDocument.parseMultiple(pemString: text).map { try Certificate(pemDocument: $0) }
            guard !certificates.isEmpty else { throw CAError(.storage, "\(path) holds no certificate") }
            return certificates
        } catch let error as CAError {
            throw error
        } catch {
            throw CAError(.storage, "\(path) is not a PEM certificate file: \(error)", cause: error)
        }
    }

    static func readKey(_ path: String) throws(CAError) -> Certificate.PrivateKey {
        do {
            return try Certificate.PrivateKey(pemEncoded: try String(contentsOfFile: path, encoding: .utf8))
        } catch {
            throw CAError(.storage, "cannot read the CA key \(path): \(error)", cause: error)
        }
    }

    static func checkKeyPermissions(_ path: String) throws(CAError) {
        guard let mode = (try? FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue else { return }
        if mode & 0o077 != 0 {
            throw CAError(.storage, "\(path) is readable by other users (mode \(String(mode & 0o777, radix: 8))); chmod 600 it")
        }
    }
}
