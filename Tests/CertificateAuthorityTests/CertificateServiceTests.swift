import CertificateAuthority
import Crypto
import Foundation
import Logging
import MetricsTestKit
import MeshModel
import SwiftASN1
import Testing
import X509
import XDSTesting
import _CryptoExtras

@Suite("The certificate authority")
struct CertificateServiceTests {
    @Test("first start makes a root (key 0600, written atomically); later starts reuse it")
    func rootLifecycle() throws {
        let fixture = try CAFixture()
        let layout = CAStore.SelfSignedLayout(dataDirectory: fixture.directory)
        #expect(permissions(layout.keyPath) == 0o600)
        #expect(permissions(layout.certificatePath) == 0o644)
        var generator = SystemRandomNumberGenerator()
        let again = try CAStore.loadOrCreateSelfSigned(layout, algorithm: .ecdsaP256, trustDomain: "cluster.local", now: Date(), generator: &generator)
        #expect(!again.created)
        #expect(again.authority.certificate == fixture.authority.certificate)
        let root = fixture.authority.certificate
        #expect(root.subject.description.contains("O=cluster.local"))
        #expect(try root.extensions.basicConstraints == .isCertificateAuthority(maxPathLength: nil))
        #expect(abs(root.notValidAfter.timeIntervalSince(root.notValidBefore) - 10 * 365.25 * 86400 - SigningAuthority.backdating) < 2)
        let files = try FileManager.default.contentsOfDirectory(atPath: layout.directory)
        #expect(files.sorted() == ["root-cert.pem", "root-key.pem"], "no temporary files left: \(files)")
    }

    @Test("a root whose key is missing, replaced or readable by others is refused, never silently remade")
    func brokenRoot() throws {
        let fixture = try CAFixture()
        let layout = CAStore.SelfSignedLayout(dataDirectory: fixture.directory)
        var generator = SystemRandomNumberGenerator()
        chmod(layout.keyPath, 0o644)
        #expect(throws: CAError.self) { try CAStore.loadOrCreateSelfSigned(layout, algorithm: .ecdsaP256, trustDomain: "cluster.local", now: Date(), generator: &generator) }
        try AtomicFile.write(try P256.Signing.PrivateKey().pemRepresentation, to: layout.keyPath)
        #expect { try CAStore.loadOrCreateSelfSigned(layout, algorithm: .ecdsaP256, trustDomain: "cluster.local", now: Date(), generator: &generator) } throws: { error in
            (error as? CAError)?.code == .keyMismatch
        }
        try FileManager.default.removeItem(atPath: layout.keyPath)
        #expect { try CAStore.loadOrCreateSelfSigned(layout, algorithm: .ecdsaP256, trustDomain: "cluster.local", now: Date(), generator: &generator) } throws: { error in
            (error as? CAError)?.message.contains("is missing") == true
        }
    }

    @Test("a workload certificate: SPIFFE URI SAN (critical, subject empty), EKU server+client, no keyEncipherment on EC keys, SKI/AKI, 128-bit serial, 24 h")
    func workloadCertificate() async throws {
        let now = Date()
        let fixture = try CAFixture(now: now)
        let issued = try fixture.service.issueWithNewKey(identity: governor, caller: "test")
        let leaf = issued.certificate.leaf
        #expect(leaf.subject == DistinguishedName())
        let san = try #require(leaf.extensions[oid: .X509ExtensionID.subjectAlternativeName])
        #expect(san.critical)
        #expect(try leaf.extensions.subjectAlternativeNames == SubjectAlternativeNames([.uniformResourceIdentifier(governor.uri)]))
        #expect(try leaf.extensions.extendedKeyUsage == ExtendedKeyUsage([.serverAuth, .clientAuth]))
        let usage = try #require(try leaf.extensions.keyUsage)
        #expect(usage.digitalSignature && !usage.keyEncipherment)
        #expect(try leaf.extensions.subjectKeyIdentifier != nil)
        #expect(try leaf.extensions.authorityKeyIdentifier?.keyIdentifier == fixture.authority.certificate.extensions.subjectKeyIdentifier?.keyIdentifier)
        #expect((15...17).contains(leaf.serialNumber.bytes.count))
        #expect(abs(leaf.notValidAfter.timeIntervalSince(now) - 86400) < 2)
        #expect(issued.certificate.chain.count == 2)
        let problems = try await CertificateChecks.check(chain: try issued.certificate.chainPEM(), in: fixture.directory)
        #expect(problems == [])
        #expect(fixture.service.ledger.entries().map(\.serial) == [issued.certificate.serialHex])
        #expect(fixture.service.ledger.entries().first?.identity == governor.uri)
    }

    @Test("RSA keys get keyEncipherment; RSA and P-384 roots sign verifiable chains", arguments: [KeyAlgorithm.rsa2048, .ecdsaP384, .rsa3072])
    func otherAlgorithms(algorithm: KeyAlgorithm) async throws {
        let fixture = try CAFixture(algorithm: algorithm)
        let key = try algorithm.generate()
        let issued = try fixture.service.sign(csrPEM: try csr(key: key), requestedTTL: 3600, caller: governor, callerDescription: "test", path: "test")
        #expect(try issued.leaf.extensions.keyUsage?.keyEncipherment == algorithm.isRSA)
        #expect(try await CertificateChecks.check(chain: try issued.chainPEM(), in: fixture.directory) == [])
    }

    @Test("no leaf outlives its issuer; requests above the maximum are refused, zero or less means the default")
    func lifetimes() throws {
        let now = Date()
        let fixture = try CAFixture(now: now)
        let key = Certificate.PrivateKey(P256.Signing.PrivateKey())
        let defaulted = try fixture.service.sign(csrPEM: try csr(key: key), requestedTTL: 0, caller: governor, callerDescription: "t", path: "t")
        #expect(abs(defaulted.leaf.notValidAfter.timeIntervalSince(now) - 86400) < 2)
        #expect { try fixture.service.sign(csrPEM: try csr(key: key), requestedTTL: 91 * 86400, caller: governor, callerDescription: "t", path: "t") } throws: { error in
            (error as? CAError)?.code == .ttlTooLong
        }
        #expect(fixture.refusals("ttl_too_long") == 1)
        // A root near its end: the leaf is clamped to the root's validity.
        let late = try CAFixture(now: now)
        let lateService = CertificateService(authority: late.authority, options: .init(), ledger: IssuanceLedger(path: late.directory + "/l.jsonl"),
                                             clock: { late.authority.certificate.notValidAfter.addingTimeInterval(-3600) }, logger: .init(label: "t"), metrics: late.metrics)
        let clamped = try lateService.sign(csrPEM: try csr(key: key), requestedTTL: 0, caller: governor, callerDescription: "t", path: "t")
        #expect(clamped.leaf.notValidAfter == late.authority.certificate.notValidAfter)
    }

    @Test("a plugged-in intermediate signs leaves and serves the full chain, leaf first, root last")
    func pluggedIn() async throws {
        let directory = try TestTools.temporaryDirectory("plugin-ca")
        let script = try ProcessHandle(executable: "/bin/bash", arguments: [TestTools.packageRoot + "/certs-dev/make-plugin-ca.sh", directory], logPath: directory + "/make.log")
        #expect(await script.waitForExit(timeout: .seconds(30)))
        #expect(script.terminationStatus == 0, "\(script.log)")
        let authority = try CAStore.loadPluggedIn(directory: directory)
        #expect(authority.mode == .pluggedIn)
        var generator = SystemRandomNumberGenerator()
        let key = Certificate.PrivateKey(P256.Signing.PrivateKey())
        let issued = try authority.issueWorkloadCertificate(publicKey: key.publicKey, identity: governor, ttl: 3600, now: Date(), generator: &generator)
        #expect(issued.chain.count == 3)
        #expect(issued.chain[1] == authority.certificate)
        #expect(issued.chain[2] == authority.root)
        #expect(try await CertificateChecks.check(chain: try issued.chainPEM(), in: directory) == [])
    }

    @Test("the certificate checks are not hollow: pkilint flags keyEncipherment on an EC key")
    func checksCatchProblems() async throws {
        let fixture = try CAFixture()
        let key = Certificate.PrivateKey(P256.Signing.PrivateKey())
        let signerKey = try Certificate.PrivateKey(pemEncoded: try String(contentsOfFile: fixture.directory + "/ca/root-key.pem", encoding: .utf8))
        let bad = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: key.publicKey, notValidBefore: Date(), notValidAfter: Date().addingTimeInterval(3600),
            issuer: fixture.authority.certificate.subject, subject: DistinguishedName(), signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(KeyUsage(digitalSignature: true, keyEncipherment: true))
                Critical(SubjectAlternativeNames([.uniformResourceIdentifier(governor.uri)]))
            }, issuerPrivateKey: signerKey)
        let problems = try await CertificateChecks.check(chain: [try bad.serializeAsPEM().pemString, try fixture.authority.certificate.serializeAsPEM().pemString], in: fixture.directory)
        #expect(problems.contains { $0.contains("key_usage") || $0.contains("keyEncipherment") || $0.contains("authority_key_identifier") }, "\(problems)")
    }
}
