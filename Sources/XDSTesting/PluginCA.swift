public import CertificateAuthority
public import X509
internal import Foundation

/// A root and an intermediate under it in Istio's plug-in layout (`ca-cert.pem`, `ca-key.pem`,
/// `root-cert.pem`, `cert-chain.pem`), as an operator's PKI would make them.
public enum PluginCA {
    /// A root with its key.
    public typealias Root = (certificate: Certificate, key: Certificate.PrivateKey)

    /// Writes an intermediate signed by `root` (a new root named after `name` when `nil`) into
    /// `directory`; returns the root and the intermediate as a signing authority.
    public static func write(to directory: String, root: Root? = nil, name: String) throws -> (root: Root, signer: SigningAuthority) {
        var generator = SystemRandomNumberGenerator()
        let root = try root ?? SigningAuthority.makeSelfSignedRoot(
            algorithm: .ecdsaP256, trustDomain: "cluster.local", now: Date(), name: "\(name) root", generator: &generator)
        let rootAuthority = try SigningAuthority(certificate: root.certificate, privateKey: root.key, chain: [], roots: [root.certificate], mode: .selfSigned)
        let intermediate = try SigningAuthority.makeSelfSignedRoot(
            algorithm: .ecdsaP256, trustDomain: "cluster.local", now: Date(), validity: 365 * 86400, name: "\(name) intermediate", generator: &generator)
        // Signing the intermediate's key and subject with the root makes it the root's subordinate.
        let signed = try rootAuthority.crossSign(intermediate.certificate, now: Date(), generator: &generator)
        let signer = try SigningAuthority(certificate: signed, privateKey: intermediate.key, chain: [root.certificate], roots: [root.certificate], mode: .pluggedIn)
        try CAStore.writeIstioLayout(signer, to: directory)
        return (root, signer)
    }
}
