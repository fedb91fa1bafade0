public import X509
internal import Foundation

/// What `meshd --fips` lets the CA sign with, certify and trust: ECDSA on P-256 or P-384, RSA of
/// 2048 bits or more, and signatures with SHA-256, SHA-384 or SHA-512 — no Ed25519, no RSA below
/// 2048 bits, no SHA-1 (FIPS 186-5, SP 800-131A). meshd's own key types are all approved; these
/// checks are for what comes from outside: CSRs, plugged-in CAs and gateway credentials.
public enum ApprovedAlgorithms {
    /// The certificate and CSR signature algorithms allowed.
    public static let signatures: Set<Certificate.SignatureAlgorithm> = [
        .ecdsaWithSHA256, .ecdsaWithSHA384, .ecdsaWithSHA512, .sha256WithRSAEncryption, .sha384WithRSAEncryption, .sha512WithRSAEncryption,
    ]

    /// Why `key` is not approved, or `nil` when it is.
    public static func problem(key: Certificate.PublicKey) -> String? {
        switch PublicKeyKind(key) {
        case .ecdsaP256, .ecdsaP384: nil
        case .rsa(let bits) where bits >= 2048: nil
        case .rsa(let bits): "an RSA key of \(bits) bits (at least 2048 are approved)"
        case .unsupported(let description): "a key that is not approved (\(description)); ECDSA P-256/P-384 or RSA >= 2048 are"
        }
    }

    /// Why `algorithm` is not approved, or `nil` when it is.
    public static func problem(signature algorithm: Certificate.SignatureAlgorithm) -> String? {
        signatures.contains(algorithm) ? nil : "a signature with \(name(algorithm)), which is not approved (ECDSA or RSA with SHA-256, SHA-384 or SHA-512 are)"
    }

    /// `RSA with SHA-1`, for messages.
    static func name(_ algorithm: Certificate.SignatureAlgorithm) -> String {
        switch algorithm {
        case .sha1WithRSAEncryption: "RSA with SHA-1"
        case .ed25519: "Ed25519"
        default: "\(algorithm)".replacingOccurrences(of: "SignatureAlgorithm.", with: "")
        }
    }

    /// What is not approved in `certificate`: its key and its signature.
    public static func problems(of certificate: Certificate) -> [String] {
        [problem(key: certificate.publicKey), problem(signature: certificate.signatureAlgorithm)].compactMap { $0 }
    }

    /// Refuses an authority any of whose certificates (signer, chain, roots) has a key or a
    /// signature that is not approved.
    public static func check(_ authority: SigningAuthority, source: String) throws(CAError) {
        let certificates = [("signing certificate", authority.certificate)] + authority.chain.map { ("chain certificate", $0) } + authority.roots.map { ("root", $0) }
        for (role, certificate) in certificates {
            if let problem = problems(of: certificate).first {
                throw CAError(.notApproved, "\(source): the \(role) \(certificate.subject) has \(problem); in FIPS mode (--fips) meshd refuses to use it")
            }
        }
    }
}
