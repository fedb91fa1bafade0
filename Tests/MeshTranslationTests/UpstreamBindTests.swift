import EnvoyAPI
import MeshModel
import MeshTranslation
import Testing

@Suite("Upstream bind: in each mesh cluster, or once in the bootstrap")
struct UpstreamBindTests {
    /// `client` (web, 127.0.0.12) and `client-2` (web, 127.0.0.14) reach ratings and db in the mesh
    /// and api.example.com outside it; client serves port 8080.
    static let mesh = twoNamespaces + """

        ---
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata: {name: example, namespace: web}
        spec:
          hosts: [api.example.com]
          location: MESH_EXTERNAL
          resolution: DNS
          ports: [{number: 443, name: tls, protocol: TLS}]
        ---
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata: {name: client, namespace: web}
        spec:
          hosts: [client.web.svc.cluster.local]
          location: MESH_INTERNAL
          resolution: STATIC
          ports: [{number: 8080, name: http}]
          workloadSelector: {labels: {app: client}}
        ---
        apiVersion: networking.istio.io/v1
        kind: WorkloadEntry
        metadata: {name: client-2, namespace: web}
        spec: {address: 127.0.0.14, labels: {app: client}}
        """

    static func clusters(_ name: String, _ bind: UpstreamBind) throws -> [String: Envoy_Config_Cluster_V3_Cluster] {
        let resources = try SidecarTranslator.translate(try snapshot(mesh), workload: .init(namespace: "web", name: name), upstreamBind: bind).resources
        return resources.resources(ofType: XDSTypeURL.cluster).compactMapValues { $0.unpack(Envoy_Config_Cluster_V3_Cluster.self) }
    }

    static let ratings = "outbound|9080||ratings.shop.svc.cluster.local"
    static let external = "outbound|443||api.example.com"
    static let inbound = "inbound|8080||"

    @Test("a bootstrap that binds nothing: each mesh cluster binds the workload's address; others bind nothing")
    func perCluster() throws {
        let clusters = try Self.clusters("client", UpstreamBind())
        #expect(clusters[Self.ratings]?.upstreamBindConfig.sourceAddress.address == "127.0.0.12")
        #expect(clusters[Self.external]?.hasUpstreamBindConfig == false)
        #expect(clusters[Self.inbound]?.hasUpstreamBindConfig == false)
    }

    @Test("a bootstrap that binds the workload's address: mesh clusters inherit it, every other cluster overrides it with an empty bind")
    func inBootstrap() throws {
        let clusters = try Self.clusters("client", UpstreamBind(bootstrapAddress: "127.0.0.12"))
        #expect(clusters[Self.ratings]?.hasUpstreamBindConfig == false)
        for name in [Self.external, Self.inbound] {
            let cluster = try #require(clusters[name], "\(clusters.keys.sorted())")
            #expect(cluster.hasUpstreamBindConfig && !cluster.upstreamBindConfig.hasSourceAddress, "\(name)")
        }
    }

    @Test("a bootstrap that binds another address: mesh clusters bind the workload's own, others override with an empty bind")
    func otherAddress() throws {
        let clusters = try Self.clusters("client", UpstreamBind(bootstrapAddress: "127.0.0.99"))
        #expect(clusters[Self.ratings]?.upstreamBindConfig.sourceAddress.address == "127.0.0.12")
        #expect(clusters[Self.external].map { $0.hasUpstreamBindConfig && !$0.upstreamBindConfig.hasSourceAddress } == true)
    }

    @Test("with the bind in the bootstrap, two workloads of a namespace get the same bytes for every outbound cluster")
    func shared() throws {
        func outbound(_ name: String, _ bind: UpstreamBind) throws -> [String: XDSResource] {
            let resources = try SidecarTranslator.translate(try snapshot(Self.mesh), workload: .init(namespace: "web", name: name), upstreamBind: bind).resources
            return resources.resources(ofType: XDSTypeURL.cluster).filter { $0.key.hasPrefix("outbound|") }
        }
        let first = try outbound("client", UpstreamBind(bootstrapAddress: "127.0.0.12"))
        let second = try outbound("client-2", UpstreamBind(bootstrapAddress: "127.0.0.14"))
        #expect(first.count >= 4)
        #expect(first == second)
        #expect(try outbound("client", UpstreamBind()) != outbound("client-2", UpstreamBind()), "per-cluster binds differ")
    }
}
