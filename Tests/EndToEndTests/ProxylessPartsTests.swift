@testable import ControlPlane
import EnvoyAPI
import GRPCCore
import MeshConfig
import MeshModel
import MeshTranslation
import SwiftProtobuf
import Testing

@Suite("Proxyless gRPC: who the application is, how it is admitted, its bootstrap")
struct ProxylessPartsTests {
    static let snapshot = MeshSnapshot(revision: 1, resources: try! ResourceDocuments.decode("""
        apiVersion: networking.istio.io/v1
        kind: WorkloadEntry
        metadata: {name: governor, namespace: tai}
        spec: {address: 127.0.0.20, labels: {app: governor}, serviceAccount: governor, locality: r1/z1}
        """, source: "test.yaml").map(\.resource))

    static func node(generator: String? = "grpc", serviceAccount: String? = nil) -> Envoy_Config_Core_V3_Node {
        var node = Envoy_Config_Core_V3_Node()
        node.id = "sidecar~127.0.0.20~governor.tai~tai.svc.cluster.local"
        if let generator { node.metadata.fields[NodeIdentity.generatorKey] = Google_Protobuf_Value(stringValue: generator) }
        if let serviceAccount { node.metadata.fields["SERVICE_ACCOUNT"] = Google_Protobuf_Value(stringValue: serviceAccount) }
        return node
    }

    @Test("GENERATOR: grpc makes a node proxyless; other generators and none leave it a sidecar")
    func kind() throws {
        #expect(try NodeIdentity(node: Self.node()).kind == .proxyless)
        #expect(try NodeIdentity(node: Self.node(generator: nil)).kind == .sidecar)
        #expect(try NodeIdentity(node: Self.node(generator: "envoy")).kind == .sidecar)
    }

    @Test("a stream without a token is admitted by a client certificate naming the workload's identity, and by nothing else")
    func certificateAdmission() throws {
        let admission = ProxyAdmission(rate: nil, tokens: nil, adminCredential: nil, allowUnauthenticated: false)
        let governor = SpiffeID(trustDomain: "cluster.local", namespace: "tai", serviceAccount: "governor")
        let admitted = try admission.admit(node: Self.node(), metadata: Metadata(), snapshot: Self.snapshot, certified: governor)
        #expect(admitted.workload.name == "governor" && admitted.tokenID == nil && admitted.identity.kind == .proxyless)

        func refusal(_ certified: SpiffeID?, node: Envoy_Config_Core_V3_Node = Self.node()) -> RPCError? {
            do {
                _ = try admission.admit(node: node, metadata: Metadata(), snapshot: Self.snapshot, certified: certified)
                return nil
            } catch {
                return error
            }
        }
        let other = refusal(SpiffeID(trustDomain: "cluster.local", namespace: "tai", serviceAccount: "coordinator"))
        #expect(other?.code == .permissionDenied && other?.message.contains("spiffe://cluster.local/ns/tai/sa/coordinator") == true, "\(String(describing: other))")
        let otherNamespace = refusal(SpiffeID(trustDomain: "cluster.local", namespace: "shop", serviceAccount: "governor"))
        #expect(otherNamespace?.code == .permissionDenied)
        let claimed = refusal(governor, node: Self.node(serviceAccount: "admin"))
        #expect(claimed?.code == .permissionDenied && claimed?.message.contains("SERVICE_ACCOUNT admin") == true)
        let nothing = refusal(nil)
        #expect(nothing?.code == .unauthenticated && nothing?.message.contains("certificate") == true)
    }

    @Test("gRPC's bootstrap: meshd over TLS with the workload's certificate files, GENERATOR grpc, the locality, the default certificate provider")
    func bootstrap() throws {
        let workload = try #require(Self.snapshot.registry.workload(.init(namespace: "tai", name: "governor")))
        let bootstrap = ProxylessBootstrap(workload: workload, xdsAddress: HostPort(host: "127.0.0.1", port: 15012), certificateDirectory: "/etc/meshd/certs/governor", tls: true)
        let value = bootstrap.configValue
        let server = try #require(value["xds_servers"]?.arrayValue?.first)
        #expect(server["server_uri"] == .string("127.0.0.1:15012"))
        #expect(server["server_features"] == .array([.string("xds_v3")]))
        let credentials = try #require(server["channel_creds"]?.arrayValue?.first)
        #expect(credentials["type"] == .string("tls"))
        #expect(credentials["config"]?["certificate_file"] == .string("/etc/meshd/certs/governor/cert-chain.pem"))
        #expect(credentials["config"]?["private_key_file"] == .string("/etc/meshd/certs/governor/key.pem"))
        #expect(credentials["config"]?["ca_certificate_file"] == .string("/etc/meshd/certs/governor/root-cert.pem"))
        #expect(value["node"]?["id"] == .string("sidecar~127.0.0.20~governor.tai~tai.svc.cluster.local"))
        #expect(value["node"]?["metadata"]?["GENERATOR"] == .string("grpc"))
        #expect(value["node"]?["locality"]?["zone"] == .string("z1"))
        let provider = try #require(value["certificate_providers"]?[ProxylessTranslator.certificateProvider])
        #expect(provider["plugin_name"] == .string("file_watcher"))
        #expect(provider["config"]?["certificate_file"] == .string("/etc/meshd/certs/governor/cert-chain.pem"))
        let plaintext = ProxylessBootstrap(workload: workload, xdsAddress: HostPort(host: "127.0.0.1", port: 15010), certificateDirectory: "/c", tls: false).configValue
        #expect(plaintext["xds_servers"]?.arrayValue?.first?["channel_creds"] == .array([.object(ConfigObject([("type", .string("insecure"))]))]))
    }
}
