public import MeshModel
internal import X509
internal import SwiftASN1
internal import CertificateAuthority

/// The checks of a gateway credential that need cryptography: every PEM block parses, and the
/// private key is the one of the first certificate. Messages name the key of `data` and never
/// carry the material.
public enum CredentialMaterial {
    /// The problems of `secret`, by field path (`data["tls.key"]`); in FIPS mode (`fips`) also
    /// every certificate whose key or signature is not approved (``ApprovedAlgorithms``).
    @Sendable public static func problems(of secret: CredentialSecret, fips: Bool = false) -> [SchemaError] {
        func path(_ key: String) -> FieldPath { FieldPath().appending("data").appending(key) }
        func present(_ keys: [String]) -> String? { keys.first { secret.data[$0] != nil } }
        var out: [SchemaError] = []
        var leaf: Certificate? = nil
        for (keys, role) in [(CredentialSecret.certificateKeys, "certificate chain"), (CredentialSecret.caKeys, "CA certificates")] {
            guard let key = present(keys) else { continue }
            guard let chain = try? PEMDocument.parseMultiple(pemString: String(decoding: secret.data[key]!, as: UTF8.self)).map({ try Certificate(pemDocument: $0) }),
                  !chain.isEmpty
            else {
                out.append(SchemaError(path: path(key), reason: "the \(role) is not a list of PEM certificates that parse"))
                continue
            }
            if keys == CredentialSecret.certificateKeys { leaf = chain[0] }
            if fips, let (certificate, problem) = chain.lazy.compactMap({ certificate in ApprovedAlgorithms.problems(of: certificate).first.map { (certificate, $0) } }).first {
                out.append(SchemaError(path: path(key), reason: "\(certificate.subject) has \(problem); FIPS mode (meshd --fips) refuses it"))
            }
        }
        if let key = present(CredentialSecret.privateKeyKeys) {
            if let privateKey = try? Certificate.PrivateKey(pemEncoded: String(decoding: secret.data[key]!, as: UTF8.self)) {
                if let leaf, privateKey.publicKey != leaf.publicKey {
                    out.append(SchemaError(path: path(key), reason: "this key does not match the certificate in \(present(CredentialSecret.certificateKeys)!) (\(leaf.subject))"))
                }
            } else {
                out.append(SchemaError(path: path(key), reason: "not a PEM private key that parses (PKCS#8, SEC1 EC or PKCS#1 RSA)"))
            }
        }
        return out
    }
}
