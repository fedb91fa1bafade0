public import X509
public import MeshModel
internal import SwiftASN1

/// The checks every certificate signing request gets before meshd signs it. The certificate's
/// identity is always the caller's; the CSR may only confirm it.
public enum CSRPolicy {
    /// The largest PEM accepted, checked before any parsing.
    public static let maximumPEMBytes = 64 * 1024

    /// The public key to certify, or why the CSR is refused (the error code is the counter label).
    /// In FIPS mode (`fips`) the CSR's signature must also be an approved one (no SHA-1).
    public static func check(pem: String, caller: SpiffeID, fips: Bool = false) throws(CAError) -> Certificate.PublicKey {
        guard pem.utf8.count <= maximumPEMBytes else {
            throw CAError(.tooLarge, "CSR PEM of \(pem.utf8.count) bytes is over the \(maximumPEMBytes)-byte limit")
        }
        let request: CertificateSigningRequest
        do {
            let document = try LenientPEM(pem)
            guard document.discriminator == "CERTIFICATE REQUEST" || document.discriminator == "NEW CERTIFICATE REQUEST" else {
                throw CAError(.badPEM, "PEM block is \(document.discriminator), not CERTIFICATE REQUEST")
            }
            request = try CertificateSigningRequest(derEncoded: document.derBytes)
        } catch let error as CAError {
            throw error
        } catch {
            // swift-crypto will not even load RSA keys below 2048 bits; name that case precisely.
            if let bits = weakRSABits(pem) {
                throw CAError(.weakKey, "RSA key of \(bits) bits; at least 2048 are required")
            }
            throw CAError(.badPEM, "not a PEM certificate signing request: \(error)", cause: error)
        }
        // FIPS mode refuses an unapproved signature on an approved key before verifying it (a key
        // that is not approved is refused below, with its own reason, as without --fips).
        if fips, ApprovedAlgorithms.problem(key: request.publicKey) == nil, let problem = ApprovedAlgorithms.problem(signature: request.signatureAlgorithm) {
            throw CAError(.notApproved, "the CSR carries \(problem); FIPS mode (--fips) refuses it")
        }
        guard request.publicKey.isValidSignature(request.signature, for: request) else {
            throw CAError(.badSignature, "the CSR's signature does not verify with its own public key")
        }
        switch PublicKeyKind(request.publicKey) {
        case .ecdsaP256, .ecdsaP384:
            break
        case .rsa(let bits) where bits >= 2048:
            break
        case .rsa(let bits):
            throw CAError(.weakKey, "RSA key of \(bits) bits; at least 2048 are required")
        case .unsupported(let description):
            throw CAError(.unsupportedKey, "unsupported key \(description); use ECDSA P-256/P-384 or RSA >= 2048")
        }
        let extensions: Certificate.Extensions
        do {
            extensions = try request.attributes.extensionRequest?.extensions ?? Certificate.Extensions()
        } catch {
            throw CAError(.badPEM, "unreadable extension request: \(error)", cause: error)
        }
        do {
            if let constraints = try extensions.basicConstraints, case .isCertificateAuthority = constraints {
                throw CAError(.caRequested, "the CSR asks for CA:true")
            }
            if let names = try extensions.subjectAlternativeNames {
                var uris: [String] = []
                for name in names {
                    switch name {
                    case .uniformResourceIdentifier(let uri): uris.append(uri)
                    default: throw CAError(.forbiddenSAN, "the CSR asks for a non-URI SAN (\(name)); only the caller's SPIFFE ID is allowed")
                    }
                }
                if uris.count > 1 { throw CAError(.multipleURISANs, "the CSR asks for \(uris.count) URI SANs: \(uris.joined(separator: ", "))") }
                if let uri = uris.first, uri != caller.uri {
                    throw CAError(.identityMismatch, "the CSR asks for \(uri) but the caller is \(caller.uri)")
                }
            }
        } catch let error as CAError {
            throw error
        } catch {
            throw CAError(.badPEM, "unreadable CSR extension: \(error)", cause: error)
        }
        return request.publicKey
    }

    /// The modulus size of a CSR's RSA key when it is below 2048 bits, read from the raw DER.
    static func weakRSABits(_ pem: String) -> Int? {
        guard let document = try? LenientPEM(pem), let root = try? DER.parse(document.derBytes),
              case .constructed(let request) = root.content, let info = request.first(where: { _ in true }),
              case .constructed(let fields) = info.content
        else { return nil }
        let nodes = Array(fields)
        guard nodes.count >= 3, let bits = PublicKeyKind.rsaModulusBits(Array(nodes[2].encodedBytes)), bits < 2048 else { return nil }
        return bits
    }
}

/// Makes the CSR a workload sends: empty subject, its SPIFFE ID as the only (URI) SAN.
public enum WorkloadCSR {
    /// The CSR as PEM.
    public static func make(privateKey: Certificate.PrivateKey, identity: SpiffeID) throws -> String {
        var extensions = Certificate.Extensions()
        try extensions.append(Certificate.Extension(SubjectAlternativeNames([.uniformResourceIdentifier(identity.uri)]), critical: true))
        let attributes = try CertificateSigningRequest.Attributes([.init(ExtensionRequest(extensions: extensions))])
        return try CertificateSigningRequest(
            version: .v1, subject: DistinguishedName(), privateKey: privateKey, attributes: attributes,
            signatureAlgorithm: PublicKeyKind(privateKey.publicKey).signatureAlgorithm
        ).serializeAsPEM().pemString
    }
}
