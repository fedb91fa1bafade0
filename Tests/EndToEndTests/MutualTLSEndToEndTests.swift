import CertificateAuthority
import ControlPlane
import Foundation
import MeshConfig
import MeshModel
import Testing
import SwiftASN1
import X509
import XDSTesting

extension EndToEnd {
    /// mTLS between real Envoys with certificates from meshd's CA, as PeerAuthentication decides.
    @Suite("mTLS by default, as PeerAuthentication says")
    struct MutualTLS {
        static let namespace = "mtls"
        static let serverInbound = HostPort(host: "127.22.0.3", port: 8080)
        static let clientEgress = HostPort(host: "127.22.1.2", port: 8080)

        static var files: [String: String] {
            [
                "service.yaml": serviceYAML("server", namespace: namespace),
                "client.yaml": workloadYAML("client", namespace: namespace, block: 22, host: 2, labels: ["app": "client"], serviceAccount: "client"),
                "server.yaml": workloadYAML("server", namespace: namespace, block: 22, host: 3, labels: ["app": "server"], serviceAccount: "server"),
            ]
        }

        static func peerAuthentication(_ mode: String) -> String {
            """
            apiVersion: security.istio.io/v1beta1
            kind: PeerAuthentication
            metadata: {name: default, namespace: \(namespace)}
            spec:
              mtls: {mode: \(mode)}
            """
        }

        /// A request straight to the server's sidecar (no client sidecar): plaintext, or TLS with a certificate.
        static func direct(_ tls: HTTPProbe.TLS?) async -> Int? {
            try? await HTTPProbe.request(serverInbound, authority: "server", timeout: .seconds(2), tls: tls).status
        }

        @Test("STRICT refuses plaintext and foreign certificates; PERMISSIVE takes both; DISABLE is plaintext only; the app sees the caller in XFCC")
        func modes() async throws {
            try await MeshHarness("mtls", files: Self.files).run { mesh in
                let app = try await mesh.startApp("server", host: "127.22.2.3", port: 8080)
                try await mesh.startSidecar(Self.namespace, "client")
                let server = try await mesh.startSidecar(Self.namespace, "server")
                let trust = try mesh.controlPlane.certificates.trustBundlePEM()

                // A certificate of this mesh for a tester, and one of the same identity from another CA.
                let tester = SpiffeID(trustDomain: "cluster.local", namespace: Self.namespace, serviceAccount: "tester")
                let issued = try mesh.controlPlane.certificates.issueWithNewKey(identity: tester, caller: "test")
                let meshTLS = HTTPProbe.TLS(chainPEM: try issued.certificate.chainPEM().dropLast().joined(separator: "\n"), keyPEM: issued.keyPEM, trustPEM: trust)
                var generator = SystemRandomNumberGenerator()
                let foreignRoot = try SigningAuthority.makeSelfSignedRoot(algorithm: .ecdsaP256, trustDomain: "cluster.local", now: Date(), generator: &generator)
                let foreign = try SigningAuthority(certificate: foreignRoot.certificate, privateKey: foreignRoot.key, chain: [], roots: [foreignRoot.certificate], mode: .selfSigned)
                let foreignKey = try KeyAlgorithm.ecdsaP256.generate()
                let foreignLeaf = try foreign.issueWorkloadCertificate(publicKey: foreignKey.publicKey, identity: tester, ttl: 3600, now: Date(), generator: &generator)
                let foreignTLS = HTTPProbe.TLS(chainPEM: try foreignLeaf.leaf.serializeAsPEM().pemString, keyPEM: try foreignKey.serializeAsPEM().pemString, trustPEM: trust)

                // STRICT.
                try mesh.writeConfig("pa.yaml", Self.peerAuthentication("STRICT"))
                try await Eventually.wait(timeout: .seconds(5), what: "STRICT to refuse plaintext") { await Self.direct(nil) == nil }
                #expect(await Self.direct(meshTLS) == 200, "a client certificate from meshd's CA is accepted")
                #expect(await Self.direct(foreignTLS) == nil, "a client certificate from another CA is refused")
                app.resetRequests()
                let viaSidecar = try await HTTPProbe.request(Self.clientEgress, authority: "server")
                #expect(viaSidecar.status == 200 && viaSidecar.body == "server\n")
                let xfcc = app.requests.last?.headers["x-forwarded-client-cert"] ?? ""
                #expect(xfcc.contains("URI=spiffe://cluster.local/ns/mtls/sa/client"), "XFCC: \(xfcc)")
                #expect(xfcc.contains("By=spiffe://cluster.local/ns/mtls/sa/server"), "XFCC: \(xfcc)")

                // PERMISSIVE.
                try mesh.writeConfig("pa.yaml", Self.peerAuthentication("PERMISSIVE"))
                try await Eventually.wait(timeout: .seconds(5), what: "PERMISSIVE to take plaintext") { await Self.direct(nil) == 200 }
                #expect(await Self.direct(meshTLS) == 200)
                #expect(try await HTTPProbe.request(Self.clientEgress, authority: "server").status == 200)
                #expect(app.requests.last?.headers["x-forwarded-client-cert"]?.contains("sa/client") == true, "sidecars still use mTLS")

                // DISABLE: plaintext only; the client's sidecar follows (auto mTLS).
                try mesh.writeConfig("pa.yaml", Self.peerAuthentication("DISABLE"))
                try await Eventually.wait(timeout: .seconds(5), what: "DISABLE to refuse TLS") { await Self.direct(meshTLS) == nil }
                #expect(await Self.direct(nil) == 200)
                try await Eventually.wait(timeout: .seconds(5), what: "the client sidecar to send plaintext") {
                    (try? await HTTPProbe.request(Self.clientEgress, authority: "server"))?.status == 200
                }
                #expect(app.requests.last?.headers["x-forwarded-client-cert"] == nil, "no client certificate over plaintext")

                // Envoy's /certs shows the certificate meshd issued for it.
                let entry = try #require(mesh.controlPlane.proxyCertificates.lookup("\(Self.namespace)/server"))
                let certs = try await server.admin("/certs").body
                #expect(certs.contains(entry.serial), "/certs shows serial \(entry.serial)")
                #expect(certs.contains("spiffe://cluster.local/ns/mtls/sa/server"))
                #expect(mesh.controlPlane.certificates.ledger.entries().contains { $0.serial == entry.serial && $0.path == "sds" })
                #expect(try await mesh.envoyHealthProblems() == [])
            }
        }
    }
}
