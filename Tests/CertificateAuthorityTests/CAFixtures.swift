import CertificateAuthority
import Crypto
import Foundation
import Logging
import MeshModel
import Metrics
import MetricsTestKit
import SwiftASN1
import X509
import XDSTesting
import _CryptoExtras

let governor = SpiffeID(trustDomain: "cluster.local", namespace: "tai-system", serviceAccount: "governor")

/// A self-signed CA in a fresh directory, with a service and a test metrics backend.
struct CAFixture {
    let directory: String
    let authority: SigningAuthority
    let service: CertificateService
    let metrics: TestMetrics

    init(algorithm: KeyAlgorithm = .ecdsaP256, now: Date = Date(), defaultTTL: TimeInterval = 86400, fips: Bool = false) throws {
        directory = try TestTools.temporaryDirectory("ca")
        var generator = SystemRandomNumberGenerator()
        authority = try CAStore.loadOrCreateSelfSigned(.init(dataDirectory: directory), algorithm: algorithm, trustDomain: "cluster.local", now: now, generator: &generator).authority
        metrics = TestMetrics()
        service = CertificateService(
            authority: authority, options: .init(defaultTTL: defaultTTL, fips: fips), ledger: IssuanceLedger(path: directory + "/issued.jsonl"),
            clock: { now }, logger: Logger(label: "test"), metrics: metrics)
    }

    func refusals(_ reason: String) -> Int64 {
        (try? metrics.expectCounter("meshd_ca_csr_refused_total", [("reason", reason)]).totalValue) ?? 0
    }
}

/// A PEM CSR signed by `key` with the given SANs and extensions.
func csr(key: Certificate.PrivateKey, sans: [GeneralName] = [], certificateAuthority: Bool = false, subject: DistinguishedName = DistinguishedName()) throws -> String {
    var extensions = Certificate.Extensions()
    if !sans.isEmpty { try extensions.append(Certificate.Extension(SubjectAlternativeNames(sans), critical: false)) }
    if certificateAuthority { try extensions.append(Certificate.Extension(BasicConstraints.isCertificateAuthority(maxPathLength: nil), critical: true)) }
    let attributes = try CertificateSigningRequest.Attributes([.init(ExtensionRequest(extensions: extensions))])
    let request = try CertificateSigningRequest(version: .v1, subject: subject, privateKey: key, attributes: attributes, signatureAlgorithm: PublicKeyKind(key.publicKey).signatureAlgorithm)
    return try request.serializeAsPEM().pemString
}

/// Runs openssl with arguments; returns (status, output).
func openssl(_ arguments: [String], in directory: String) async throws -> (Int32, String) {
    let process = try ProcessHandle(executable: "/usr/bin/openssl", arguments: arguments, logPath: directory + "/openssl-\(UUID().uuidString.prefix(6)).log")
    _ = await process.waitForExit(timeout: .seconds(30))
    return (process.terminationStatus ?? -1, process.log)
}

/// A file's permission bits.
func permissions(_ path: String) -> Int? {
    (try? FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue
}
