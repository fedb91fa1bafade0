import ControlPlane
import EnvoyAPI
import MeshModel
import MeshTranslation
import SwiftProtobuf
import Testing

@Suite("Node identity: who a connecting Envoy is, from its node id and metadata")
struct NodeIdentityTests {
    static func node(_ id: String, _ metadata: [String: String] = [:]) -> Envoy_Config_Core_V3_Node {
        var node = Envoy_Config_Core_V3_Node()
        node.id = id
        for (key, value) in metadata { node.metadata.fields[key] = Google_Protobuf_Value(stringValue: value) }
        return node
    }

    static let id = "sidecar~127.0.0.5~api-1.shop~shop.svc.cluster.local"

    @Test("Istio's node id names the workload and address; NAMESPACE and NAME metadata win; MESHD_UPSTREAM_BIND is the bootstrap's bind")
    func parsed() throws {
        let plain = try NodeIdentity(node: Self.node(Self.id))
        #expect(plain.workload.description == "shop/api-1")
        #expect(plain.address == "127.0.0.5")
        #expect(plain.upstreamBind.bootstrapAddress == nil)
        let named = try NodeIdentity(node: Self.node(Self.id, ["NAMESPACE": "web", "NAME": "client", NodeIdentity.upstreamBindKey: "127.0.0.5"]))
        #expect(named.workload.description == "web/client")
        #expect(named.upstreamBind.bootstrapAddress == "127.0.0.5")
    }

    @Test("bad metadata is refused with the key and the value", arguments: [
        (NodeIdentity.upstreamBindKey, "not-an-address", "must be an IP address"),
        (NodeIdentity.certificateDirectoryKey, "relative/dir", "must be an absolute path"),
    ])
    func refused(key: String, value: String, reason: String) {
        #expect {
            _ = try NodeIdentity(node: Self.node(Self.id, [key: value]))
        } throws: { error in
            let message = (error as? NodeIdentity.IdentityError)?.message ?? ""
            return message.contains(key) && message.contains(value) && message.contains(reason)
        }
    }

    @Test("a node id that names no workload is refused, saying which forms work")
    func unidentified() {
        #expect {
            _ = try NodeIdentity(node: Self.node("envoy-1"))
        } throws: { error in
            (error as? NodeIdentity.IdentityError)?.message.contains("does not identify a workload") == true
        }
    }
}
