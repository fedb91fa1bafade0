import CertificateAuthority
import Foundation
import Logging
import MeshModel
import MetricsTestKit
import Testing
import X509
import XDSTesting

@Suite("FIPS mode in the CA: approved algorithms only")
struct FIPSTests {
    func refused(_ fixture: CAFixture, _ pem: String) -> String? {
        do {
            _ = try fixture.service.sign(csrPEM: pem, requestedTTL: 0, caller: governor, callerDescription: "test", path: "test")
            return nil
        } catch {
            return error.code.rawValue
        }
    }

    /// A CSR made by openssl with `arguments` (key and digest).
    func opensslCSR(_ fixture: CAFixture, _ name: String, _ arguments: [String]) async throws -> String {
        let (status, output) = try await openssl(
            ["req", "-new", "-nodes", "-keyout", "\(fixture.directory)/\(name).key", "-subj", "/", "-addext", "subjectAltName=URI:\(governor.uri)", "-out", "\(fixture.directory)/\(name).csr"] + arguments,
            in: fixture.directory)
        #expect(status == 0, "\(output)")
        return try String(contentsOfFile: "\(fixture.directory)/\(name).csr", encoding: .utf8)
    }

    @Test("CSRs with Ed25519 or RSA-1024 keys or a SHA-1 signature are refused and counted; ECDSA P-256/P-384 and RSA-2048 with SHA-2 are signed")
    func csrs() async throws {
        let fixture = try CAFixture(fips: true)
        #expect(refused(fixture, try await opensslCSR(fixture, "ed", ["-newkey", "ed25519"])) == "unsupported_key")
        #expect(refused(fixture, try await opensslCSR(fixture, "weak", ["-newkey", "rsa:1024"])) == "weak_key")
        let sha1 = try await opensslCSR(fixture, "sha1", ["-newkey", "rsa:2048", "-sha1"])
        #expect(refused(fixture, sha1) == "not_approved")
        #expect(fixture.refusals("unsupported_key") == 1 && fixture.refusals("weak_key") == 1 && fixture.refusals("not_approved") == 1)
        #expect(refused(fixture, try await opensslCSR(fixture, "p256", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-sha256"])) == nil)
        #expect(refused(fixture, try await opensslCSR(fixture, "p384", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384", "-sha384"])) == nil)
        #expect(refused(fixture, try await opensslCSR(fixture, "rsa", ["-newkey", "rsa:2048", "-sha256"])) == nil)
        // Without --fips the SHA-1 signature is not what refuses it.
        #expect(refused(try CAFixture(), sha1) != "not_approved")
    }

    @Test("a plugged-in CA whose root is signed with SHA-1 refuses to load in FIPS mode, naming it; without --fips it loads")
    func pluggedIn() async throws {
        let fixture = try CAFixture()
        let plugin = fixture.directory + "/cacerts"
        try FileManager.default.createDirectory(atPath: plugin, withIntermediateDirectories: true)
        let (status, output) = try await openssl([
            "req", "-x509", "-newkey", "rsa:2048", "-sha1", "-nodes", "-days", "30", "-keyout", plugin + "/ca-key.pem", "-out", plugin + "/ca-cert.pem",
            "-subj", "/O=legacy/CN=sha1 root", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        ], in: fixture.directory)
        #expect(status == 0, "\(output)")
        for name in ["root-cert.pem", "cert-chain.pem"] { try FileManager.default.copyItem(atPath: plugin + "/ca-cert.pem", toPath: plugin + "/" + name) }
        func lifecycle(_ data: String, fips: Bool) throws(CAError) -> CALifecycle {
            try CALifecycle(dataDirectory: fixture.directory + "/" + data, source: .pluggedIn(directory: plugin), fips: fips, logger: Logger(label: "test"), metrics: TestMetrics())
        }
        let refusal = #expect(throws: CAError.self) { try lifecycle("fips", fips: true) }
        #expect(refusal?.code == .notApproved && refusal?.message.contains("CN=sha1 root") == true && refusal?.message.contains("RSA with SHA-1") == true, "\(String(describing: refusal))")
        #expect(throws: Never.self) { _ = try lifecycle("plain", fips: false) }

        // Plug-in files that change to such a CA are refused and counted; the CA in use stays.
        let good = fixture.directory + "/good"
        _ = try PluginCA.write(to: good, name: "approved")
        let metrics = TestMetrics()
        let running = try CALifecycle(dataDirectory: fixture.directory + "/running", source: .pluggedIn(directory: good), fips: true, logger: Logger(label: "test"), metrics: metrics)
        let before = running.authority.certificate
        for name in ["ca-cert.pem", "ca-key.pem", "root-cert.pem", "cert-chain.pem"] {
            try FileManager.default.removeItem(atPath: good + "/" + name)
            try FileManager.default.copyItem(atPath: plugin + "/" + name, toPath: good + "/" + name)
        }
        #expect(running.tick { .init(proxies: [], oldLeaves: []) } == nil)
        #expect(running.authority.certificate == before)
        #expect(try metrics.expectCounter("meshd_ca_reload_failures_total").totalValue == 1)
    }

    @Test("what is approved: keys and signature algorithms")
    func approved() throws {
        #expect(ApprovedAlgorithms.problem(signature: .ecdsaWithSHA256) == nil && ApprovedAlgorithms.problem(signature: .sha384WithRSAEncryption) == nil)
        #expect(ApprovedAlgorithms.problem(signature: .sha1WithRSAEncryption) != nil && ApprovedAlgorithms.problem(signature: .ed25519) != nil)
        var generator = SystemRandomNumberGenerator()
        for algorithm in KeyAlgorithm.allCases where !algorithm.isRSA {
            let root = try SigningAuthority.makeSelfSignedRoot(algorithm: algorithm, trustDomain: "cluster.local", now: Date(), generator: &generator)
            #expect(ApprovedAlgorithms.problems(of: root.certificate).isEmpty, "meshd's own \(algorithm) root")
        }
    }
}
