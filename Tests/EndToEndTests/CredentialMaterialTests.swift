import ControlPlane
import Foundation
import MeshConfig
import MeshModel
import Testing
import XDSTesting

@Suite("Gateway credentials checked with cryptography; in FIPS mode, approved algorithms only")
struct CredentialMaterialTests {
    /// A self-signed certificate and key made by openssl with `arguments`, as a Secret.
    static func secret(_ arguments: [String], in directory: String) async throws -> CredentialSecret {
        let process = try ProcessHandle(
            executable: "/usr/bin/openssl",
            arguments: ["req", "-x509", "-nodes", "-days", "2", "-subj", "/CN=shop.example.com", "-keyout", directory + "/k.pem", "-out", directory + "/c.pem"] + arguments,
            logPath: directory + "/openssl.log")
        _ = await process.waitForExit(timeout: .seconds(30))
        #expect(process.terminationStatus == 0, "\(process.log)")
        func indented(_ file: String) throws -> String {
            try String(contentsOfFile: directory + "/" + file, encoding: .utf8).split(separator: "\n").map { "    " + $0 }.joined(separator: "\n")
        }
        let yaml = "apiVersion: v1\nkind: Secret\nmetadata: {name: cred, namespace: istio-system}\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: |\n\(try indented("c.pem"))\n  tls.key: |\n\(try indented("k.pem"))\n"
        guard case .secret(let secret) = try ResourceDocuments.decode(yaml, source: "t")[0].resource.spec else { throw HTTPProbe.Failure(description: "not a Secret") }
        return secret
    }

    @Test("a certificate signed with SHA-1 is refused in FIPS mode only, naming the field; ECDSA P-256 with SHA-256 passes both")
    func fips() async throws {
        let directory = try TestTools.temporaryDirectory("credential-material")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let legacy = try await Self.secret(["-newkey", "rsa:2048", "-sha1"], in: directory)
        #expect(CredentialMaterial.problems(of: legacy).isEmpty)
        #expect(CredentialMaterial.problems(of: legacy, fips: true).map(\.description) == [
            #"data["tls.crt"]: CN=shop.example.com has a signature with RSA with SHA-1, which is not approved (ECDSA or RSA with SHA-256, SHA-384 or SHA-512 are); FIPS mode (meshd --fips) refuses it"#,
        ])
        let modern = try await Self.secret(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-sha256"], in: directory)
        #expect(CredentialMaterial.problems(of: modern, fips: true).isEmpty)
    }
}
