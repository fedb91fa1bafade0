import CertificateAuthority
import ControlPlane
import Crypto
import EnvoyAPI
import Foundation
import Logging
import GRPCCore
import MeshConfig
import MeshModel
import SwiftASN1
import SwiftProtobuf
import Testing
import X509
import XDSTesting

extension EndToEnd {
    /// A caller only ever gets a certificate for its own identity, whatever it asks for.
    @Suite("Only its own identity: SDS, CSR over gRPC and REST")
    struct Identity {
        static let namespace = "ident"
        static var files: [String: String] {
            [
                "resources.yaml": serviceYAML("a", namespace: namespace) + "---\n"
                    + workloadYAML("a-1", namespace: namespace, block: 23, host: 2, labels: ["app": "a"], serviceAccount: "a") + "---\n"
                    + workloadYAML("b-1", namespace: namespace, block: 23, host: 3, labels: ["app": "b"], serviceAccount: "b"),
            ]
        }

        static let identityA = SpiffeID(trustDomain: "cluster.local", namespace: namespace, serviceAccount: "a")
        static let identityB = SpiffeID(trustDomain: "cluster.local", namespace: namespace, serviceAccount: "b")

        static func node(_ name: String, _ host: Int) -> Envoy_Config_Core_V3_Node {
            var node = Envoy_Config_Core_V3_Node()
            node.id = NodeIdentity.nodeID(workload: .init(namespace: namespace, name: name), address: "127.23.0.\(host)")
            return node
        }

        static func csr(_ key: Certificate.PrivateKey, uri: String?) throws -> String {
            var extensions = Certificate.Extensions()
            if let uri { try extensions.append(Certificate.Extension(SubjectAlternativeNames([.uniformResourceIdentifier(uri)]), critical: false)) }
            let attributes = try CertificateSigningRequest.Attributes([.init(ExtensionRequest(extensions: extensions))])
            return try CertificateSigningRequest(version: .v1, subject: DistinguishedName(), privateKey: key, attributes: attributes, signatureAlgorithm: .ecdsaWithSHA256).serializeAsPEM().pemString
        }

        static func sans(_ pem: String) throws -> [String] {
            let certificate = try Certificate(pemEncoded: pem)
            return try (certificate.extensions.subjectAlternativeNames ?? SubjectAlternativeNames()).compactMap {
                if case .uniformResourceIdentifier(let uri) = $0 { return uri } else { return nil }
            }
        }

        @Test("a proxy with a token for sa/a gets sa/a's certificate and nothing of sa/b's, whatever it asks for")
        func sds() async throws {
            try await MeshHarness("identity-sds", files: Self.files).run { mesh in
                let tokenA = try mesh.token(Self.namespace, "a")
                let metadata: Metadata = ["authorization": "Bearer \(tokenA)"]
                // As b's workload: refused.
                let asB = try await ADSTestClient.withStream(to: mesh.xdsAddress, security: mesh.security, metadata: metadata) { conversation -> RPCError? in
                    conversation.request(XDSTypeURL.secret, names: ["default"], node: Self.node("b-1", 3))
                    do { _ = try await conversation.receive(); return nil } catch let error as RPCError { return error }
                }
                #expect(asB?.code == .permissionDenied)
                // As its own workload, asking for b's secrets by every name it can think of.
                let names = try await ADSTestClient.withStream(to: mesh.xdsAddress, security: mesh.security, metadata: metadata) { conversation -> [String: String] in
                    conversation.request(XDSTypeURL.secret, names: ["default", "ROOTCA", "b", Self.identityB.uri, "ident/b", "*"], node: Self.node("a-1", 2))
                    let response = try await conversation.receive()
                    var found: [String: String] = [:]
                    for resource in response.resources {
                        let secret = try Envoy_Extensions_TransportSockets_Tls_V3_Secret(unpackingAny: resource)
                        found[secret.name] = secret.tlsCertificate.certificateChain.inlineString
                    }
                    #expect(await conversation.receivesNothing(within: .milliseconds(300)))
                    return found
                }
                #expect(Set(names.keys) == ["default", "ROOTCA"])
                #expect(try Self.sans(names["default"] ?? "") == [Self.identityA.uri])

                // A reconnect within the certificate's life gets the same certificate, not a new one.
                let again = try await ADSTestClient.withStream(to: mesh.xdsAddress, security: mesh.security, metadata: metadata) { conversation -> String in
                    conversation.request(XDSTypeURL.secret, names: ["default"], node: Self.node("a-1", 2))
                    let secret = try Envoy_Extensions_TransportSockets_Tls_V3_Secret(unpackingAny: try await conversation.receive().resources[0])
                    return secret.tlsCertificate.certificateChain.inlineString
                }
                #expect(again == names["default"])
                #expect(mesh.controlPlane.certificates.ledger.entries().filter { $0.path == "sds" }.count == 1)

                // Metadata that names a-1 under a node id that names b-1: a-1's certificate, kept
                // under a-1 (not the node id), so neither workload's next connect reissues.
                var otherID = Self.node("b-1", 3)
                otherID.metadata.fields["NAMESPACE"] = Google_Protobuf_Value(stringValue: Self.namespace)
                otherID.metadata.fields["NAME"] = Google_Protobuf_Value(stringValue: "a-1")
                let mixed = otherID
                let viaOtherID = try await ADSTestClient.withStream(to: mesh.xdsAddress, security: mesh.security, metadata: metadata) { conversation -> String in
                    conversation.request(XDSTypeURL.secret, names: ["default"], node: mixed)
                    let secret = try Envoy_Extensions_TransportSockets_Tls_V3_Secret(unpackingAny: try await conversation.receive().resources[0])
                    return secret.tlsCertificate.certificateChain.inlineString
                }
                #expect(viaOtherID == names["default"])
                #expect(mesh.controlPlane.certificates.ledger.entries().filter { $0.path == "sds" }.count == 1)
                #expect(mesh.controlPlane.proxyCertificates.lookup("\(Self.namespace)/b-1") == nil)
                #expect(mesh.controlPlane.proxyCertificates.lookup("\(Self.namespace)/a-1")?.identity == Self.identityA.uri)
            }
        }

        @Test("after a restart of meshd, a proxy's certificate is reused from the data directory")
        func reuseAcrossRestarts() async throws {
            let directory = try TestTools.temporaryDirectory("restart-reuse")
            try FileManager.default.createDirectory(atPath: directory + "/config", withIntermediateDirectories: true)
            for (name, text) in Self.files { try text.write(toFile: directory + "/config/" + name, atomically: true, encoding: .utf8) }
            let options = ControlPlaneOptions(configDirectory: directory + "/config", dataDirectory: directory + "/data", xdsAddress: HostPort(host: "127.0.0.1", port: 0), adminAddress: HostPort(host: "127.0.0.1", port: 0))
            let node = Self.node("a-1", 2).id
            let first = try ControlPlane(options: options, logger: .init(label: "t")).proxyCertificates.certificate(workload: node, identity: Self.identityA)
            let second = try ControlPlane(options: options, logger: .init(label: "t")).proxyCertificates.certificate(workload: node, identity: Self.identityA)
            #expect(first.serial == second.serial)
            try? FileManager.default.removeItem(atPath: directory)
        }

        @Test("CSRs over gRPC (token or client certificate) and REST are signed for the caller only; refusals are generic and counted")
        func csr() async throws {
            try await MeshHarness("identity-csr", files: Self.files).run { mesh in
                let tokenA = try mesh.token(Self.namespace, "a")
                let key = Certificate.PrivateKey(P256.Signing.PrivateKey())

                // gRPC with a token: no SAN asked -> a's identity.
                let chain = try await CertificateServiceClient.createCertificate(at: mesh.xdsAddress, security: mesh.security, token: tokenA, csrPEM: try Self.csr(key, uri: nil), ttlSeconds: 3600)
                #expect(try Self.sans(chain[0]) == [Self.identityA.uri])
                #expect(try chain.count == 2 && Certificate(pemEncoded: chain[1]) == mesh.controlPlane.certificates.signingAuthority.root)

                // gRPC with a token, asking for b: refused with a generic message, counted by reason.
                do {
                    _ = try await CertificateServiceClient.createCertificate(at: mesh.xdsAddress, security: mesh.security, token: tokenA, csrPEM: try Self.csr(key, uri: Self.identityB.uri))
                    Issue.record("a CSR for b with a's token was signed")
                } catch let error as RPCError {
                    #expect(error.code == .invalidArgument)
                    #expect(error.message == "certificate request refused")
                }
                let metrics = try await mesh.admin("/metrics").body
                #expect(metrics.contains(#"meshd_ca_csr_refused_total{reason="identity_mismatch"} 1"#))
                #expect(metrics.contains("citadel_server_csr_count 2"), "\(metrics)")
                #expect(metrics.contains("citadel_server_success_cert_issuance_count"))
                let rootExpiry = mesh.controlPlane.certificates.signingAuthority.root.notValidAfter.timeIntervalSince1970
                #expect(metrics.contains("citadel_server_root_cert_expiry_timestamp \(rootExpiry)") || metrics.contains("citadel_server_root_cert_expiry_timestamp \(Int(rootExpiry))"), "\(metrics)")
                #expect(metrics.contains("citadel_server_cert_chain_expiry_timestamp"))

                // gRPC without a token, with the client certificate just issued: a's identity again.
                let byCertificate = try await CertificateServiceClient.createCertificate(
                    at: mesh.xdsAddress,
                    security: .tls(trustBundlePEM: try mesh.controlPlane.certificates.trustBundlePEM(), clientChainPEM: chain[0], clientKeyPEM: try key.serializeAsPEM().pemString),
                    token: nil, csrPEM: try Self.csr(Certificate.PrivateKey(P256.Signing.PrivateKey()), uri: nil))
                #expect(try Self.sans(byCertificate[0]) == [Self.identityA.uri])
                #expect(mesh.controlPlane.certificates.ledger.entries().contains { $0.caller == "certificate:\(Self.identityA.uri)" })

                // Neither: unauthenticated.
                do {
                    _ = try await CertificateServiceClient.createCertificate(at: mesh.xdsAddress, security: mesh.security, token: nil, csrPEM: try Self.csr(key, uri: nil))
                    Issue.record("an anonymous CSR was signed")
                } catch let error as RPCError {
                    #expect(error.code == .unauthenticated)
                }

                // REST on the admin address.
                let body = try JSONSerialization.data(withJSONObject: ["csr": try Self.csr(key, uri: nil), "ttlSeconds": 600])
                let rest = try await HTTPProbe.request(mesh.adminAddress, authority: "meshd", path: "/v1/certificates", method: "POST",
                                                       headers: [("authorization", "Bearer \(tokenA)"), ("content-type", "application/json")], body: String(decoding: body, as: UTF8.self))
                #expect(rest.status == 200)
                let restChain = (try JSONSerialization.jsonObject(with: Data(rest.body.utf8)) as? [String: [String]])?["certChain"] ?? []
                #expect(try Self.sans(restChain.first ?? "") == [Self.identityA.uri])
                let anonymous = try await HTTPProbe.request(mesh.adminAddress, authority: "meshd", path: "/v1/certificates", method: "POST",
                                                            headers: [("content-type", "application/json")], body: String(decoding: body, as: UTF8.self))
                #expect(anonymous.status == 401)
                #expect(!anonymous.body.contains("token"), "the refusal does not say why: \(anonymous.body)")
            }
        }
    }
}
