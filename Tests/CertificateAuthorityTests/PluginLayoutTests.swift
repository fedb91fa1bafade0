import CertificateAuthority
import Foundation
import MeshModel
import SwiftASN1
import Testing
import X509

@Suite("Istio's plug-in layout")
struct PluginLayoutTests {
    @Test("a root alone (Istio's self-signed istio-ca-secret as docs/MIGRATION.md plugs it in: the root as ca-cert, root-cert and cert-chain) loads and signs leaves that chain to it")
    func rootAsSigner() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("plugin-root-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var generator = SystemRandomNumberGenerator()
        let now = Date()
        let root = try SigningAuthority.makeSelfSignedRoot(algorithm: .ecdsaP256, trustDomain: "cluster.local", now: now, name: "istio self-signed root", generator: &generator)
        for name in ["ca-cert.pem", "root-cert.pem", "cert-chain.pem"] { try CAStore.writeCertificates([root.certificate], to: "\(directory)/\(name)") }
        try root.key.serializeAsPEM().pemString.write(toFile: directory + "/ca-key.pem", atomically: true, encoding: .utf8)
        let authority = try CAStore.loadPluggedIn(directory: directory)
        #expect(authority.roots == [root.certificate] && authority.certificate == root.certificate)
        let key = try KeyAlgorithm.ecdsaP256.generate()
        let issued = try authority.issueWorkloadCertificate(
            publicKey: key.publicKey, identity: SpiffeID(trustDomain: "cluster.local", namespace: "shop", serviceAccount: "web"), ttl: 3600, now: now, generator: &generator)
        #expect(issued.leaf.issuer == root.certificate.subject)
        #expect(root.certificate.publicKey.isValidSignature(issued.leaf.signature, for: issued.leaf))
    }
}
