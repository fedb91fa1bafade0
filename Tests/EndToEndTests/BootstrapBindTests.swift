import ControlPlane
import Foundation
import MeshConfig
import MeshModel
import Testing

@Suite("The bootstrap binds upstream connections to the workload's address")
struct BootstrapBindTests {
    static func bootstrap(address: String) throws -> [String: Any] {
        let workload = WorkloadInstance(name: "api-1", namespace: "shop", address: address, labels: ["app": "api"], serviceAccount: "api")
        let builder = BootstrapBuilder(workload: workload, xdsAddress: HostPort(host: "127.0.0.1", port: 15012))
        return try #require(try JSONSerialization.jsonObject(with: Data(ConfigJSON.encode(builder.configValue).utf8)) as? [String: Any])
    }

    static func staticCluster(_ bootstrap: [String: Any], _ name: String) -> [String: Any]? {
        let clusters = (bootstrap["static_resources"] as? [String: Any])?["clusters"] as? [[String: Any]] ?? []
        return clusters.first { $0["name"] as? String == name }
    }

    @Test("an IP address: cluster_manager binds it, the node metadata says so, and the static clusters to meshd and the admin interface bind nothing")
    func ipAddress() throws {
        let bootstrap = try Self.bootstrap(address: "127.0.0.5")
        let bind = ((bootstrap["cluster_manager"] as? [String: Any])?["upstream_bind_config"] as? [String: Any])?["source_address"] as? [String: Any]
        #expect(bind?["address"] as? String == "127.0.0.5")
        #expect((bind?["port_value"] as? Int) == 0)
        let metadata = (bootstrap["node"] as? [String: Any])?["metadata"] as? [String: Any]
        #expect(metadata?[NodeIdentity.upstreamBindKey] as? String == "127.0.0.5")
        for name in ["xds-grpc", "prometheus_stats"] {
            let cluster = try #require(Self.staticCluster(bootstrap, name), "\(name)")
            #expect((cluster["upstream_bind_config"] as? [String: Any])?.isEmpty == true, "\(name) keeps connecting as before")
        }
    }

    @Test("a workload without an IP address binds nothing and says nothing")
    func hostname() throws {
        let bootstrap = try Self.bootstrap(address: "api.example.internal")
        #expect((bootstrap["cluster_manager"] as? [String: Any])?["upstream_bind_config"] == nil)
        #expect((bootstrap["cluster_manager"] as? [String: Any])?["load_stats_config"] != nil, "load reports go to meshd whatever the address")
        let metadata = (bootstrap["node"] as? [String: Any])?["metadata"] as? [String: Any]
        #expect(metadata?[NodeIdentity.upstreamBindKey] == nil)
    }
}
