import EnvoyAPI
import Foundation
import MeshConfig
import MeshModel
import MeshTranslation
import SwiftProtobuf
import Testing
import XDSTesting

@Suite("Locality load balancing: Istio's priorities and weights per client locality")
struct LocalityLoadBalancingTests {
    /// `web` has workloads in five places; clients sit in two of them.
    static func mesh(_ rule: String? = nil) -> String {
        var yaml = """
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: web, namespace: shop}
            spec:
              hosts: [web.shop.svc.cluster.local]
              location: MESH_INTERNAL
              resolution: STATIC
              ports: [{number: 8080, name: http}]
              workloadSelector: {labels: {app: web}}

            """
        let places = [
            ("a1", "r1/z1/s1", "rack-1"), ("a2", "r1/z1/s2", "rack-2"), ("b", "r1/z2", "rack-1"), ("c", "r2/z3", "rack-2"), ("d", "r3/z4", "rack-1"),
        ]
        for (index, (name, locality, rack)) in places.enumerated() {
            yaml += """
                ---
                apiVersion: networking.istio.io/v1
                kind: WorkloadEntry
                metadata: {name: web-\(name), namespace: shop}
                spec: {address: 127.0.0.\(10 + index), locality: \(locality), labels: {app: web, rack: \(rack)}}

                """
        }
        yaml += """
            ---
            apiVersion: networking.istio.io/v1
            kind: WorkloadEntry
            metadata: {name: client, namespace: shop}
            spec: {address: 127.0.0.2, locality: r1/z1/s1, labels: {app: client, rack: rack-1}}
            ---
            apiVersion: networking.istio.io/v1
            kind: WorkloadEntry
            metadata: {name: far, namespace: shop}
            spec: {address: 127.0.0.3, locality: r2/z3, labels: {app: far, rack: rack-2}}

            """
        if let rule { yaml += "---\n" + rule }
        return yaml
    }

    static func rule(_ trafficPolicy: String) -> String {
        """
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: web, namespace: shop}
        spec:
          host: web.shop.svc.cluster.local
          trafficPolicy: \(trafficPolicy)
        """
    }

    static let clusterName = "outbound|8080||web.shop.svc.cluster.local"

    /// The load assignment and cluster `client` gets: per endpoint address, its group's priority
    /// and weight (0: none).
    static func view(_ yaml: String, client: String = "client") throws -> (endpoints: [String: (priority: UInt32, weight: UInt32)], cluster: Envoy_Config_Cluster_V3_Cluster) {
        let resources = try SidecarTranslator.translate(try snapshot(yaml), workload: .init(namespace: "shop", name: client)).resources
        let assignment = try #require(resources.resources(ofType: XDSTypeURL.endpoint)[clusterName]?.unpack(Envoy_Config_Endpoint_V3_ClusterLoadAssignment.self))
        let cluster = try #require(resources.resources(ofType: XDSTypeURL.cluster)[clusterName]?.unpack(Envoy_Config_Cluster_V3_Cluster.self))
        var endpoints: [String: (UInt32, UInt32)] = [:]
        for group in assignment.endpoints {
            for endpoint in group.lbEndpoints {
                endpoints[endpoint.endpoint.address.socketAddress.address] = (group.priority, group.hasLoadBalancingWeight ? group.loadBalancingWeight.value : 0)
            }
        }
        return (endpoints, cluster)
    }

    static func weighsLocalities(_ cluster: Envoy_Config_Cluster_V3_Cluster) -> Bool {
        if case .localityWeightedLbConfig = cluster.commonLbConfig.localityConfigSpecifier { return true }
        return false
    }

    static func priorities(_ endpoints: [String: (priority: UInt32, weight: UInt32)]) -> [String: UInt32] {
        endpoints.mapValues(\.priority)
    }

    @Test("no rule, or no outlier detection: one priority, no locality weights, the same bytes for clients anywhere")
    func nothingToDo() throws {
        for yaml in [Self.mesh(), Self.mesh(Self.rule("{loadBalancer: {simple: ROUND_ROBIN}}"))] {
            let near = try Self.view(yaml)
            #expect(Set(near.endpoints.values.map(\.priority)) == [0] && Set(near.endpoints.values.map(\.weight)) == [0], "\(near.endpoints)")
            #expect(!Self.weighsLocalities(near.cluster))
            let resources = { (name: String) in
                try SidecarTranslator.translate(try snapshot(yaml), workload: .init(namespace: "shop", name: name)).resources.resources(ofType: XDSTypeURL.endpoint)[Self.clusterName]?.body
            }
            #expect(try resources("client") == resources("far"), "nothing of the client is read")
        }
    }

    @Test("outlier detection alone: priorities by distance (subzone, zone, region, elsewhere), relative to each client; no locality weighting")
    func defaultFailover() throws {
        let yaml = Self.mesh(Self.rule("{outlierDetection: {consecutive5xxErrors: 1}}"))
        let near = try Self.view(yaml)
        #expect(Self.priorities(near.endpoints) == ["127.0.0.10": 0, "127.0.0.11": 1, "127.0.0.12": 2, "127.0.0.13": 3, "127.0.0.14": 3])
        #expect(!Self.weighsLocalities(near.cluster), "Istio weighs localities only with failover rules or distribute")
        #expect(near.endpoints["127.0.0.10"]?.weight == 1, "a locality weighs what its endpoints weigh")
        let far = try Self.view(yaml, client: "far")
        #expect(Self.priorities(far.endpoints) == ["127.0.0.13": 0, "127.0.0.10": 1, "127.0.0.11": 1, "127.0.0.12": 1, "127.0.0.14": 1], "same zone first, then the gap closes")
        let disabled = try Self.view(Self.mesh(Self.rule("{outlierDetection: {consecutive5xxErrors: 1}, loadBalancer: {localityLbSetting: {enabled: false}}}")))
        #expect(Set(disabled.endpoints.values.map(\.priority)) == [0], "enabled: false turns it off")
    }

    @Test("failover from r1 to r3: r3 before every other region; the cluster weighs localities")
    func regionFailover() throws {
        let yaml = Self.mesh(Self.rule("{outlierDetection: {consecutive5xxErrors: 1}, loadBalancer: {localityLbSetting: {failover: [{from: r1, to: r3}]}}}"))
        let near = try Self.view(yaml)
        #expect(Self.priorities(near.endpoints) == ["127.0.0.10": 0, "127.0.0.11": 1, "127.0.0.12": 2, "127.0.0.14": 3, "127.0.0.13": 4])
        #expect(Self.weighsLocalities(near.cluster))
        let far = try Self.view(yaml, client: "far")
        #expect(Self.priorities(far.endpoints) == ["127.0.0.13": 0, "127.0.0.10": 1, "127.0.0.11": 1, "127.0.0.12": 1, "127.0.0.14": 1], "the rule is for clients in r1 only")
        let withoutDetection = try Self.view(Self.mesh(Self.rule("{loadBalancer: {localityLbSetting: {failover: [{from: r1, to: r3}]}}}")))
        #expect(Set(withoutDetection.endpoints.values.map(\.priority)) == [0] && !Self.weighsLocalities(withoutDetection.cluster), "no failover without outlier detection")
    }

    @Test("distribute: the first rule naming the client splits its shares over the localities each target matches; the rest get no endpoints")
    func distribute() throws {
        let yaml = Self.mesh(Self.rule("""
            {loadBalancer: {localityLbSetting: {distribute: [{from: "r1/z1/*", to: {"r1/z1/*": 80, "r1/z2": 20}}]}}}
            """))
        let near = try Self.view(yaml)
        #expect(near.endpoints["127.0.0.10"]?.weight == 40 && near.endpoints["127.0.0.11"]?.weight == 40, "80 over two subzones: \(near.endpoints)")
        #expect(near.endpoints["127.0.0.12"]?.weight == 20)
        #expect(near.endpoints["127.0.0.13"] == nil && near.endpoints["127.0.0.14"] == nil, "localities no target names are emptied")
        #expect(Set(near.endpoints.values.map(\.priority)) == [0])
        #expect(Self.weighsLocalities(near.cluster))
        let far = try Self.view(yaml, client: "far")
        #expect(far.endpoints.count == 5 && Set(far.endpoints.values.map(\.weight)) == [0], "a client no rule names sees the shared assignment: \(far.endpoints)")
    }

    @Test("failoverPriority: endpoints sharing the client's labels in order come first, split out of their localities; name=value overrides the client's")
    func failoverPriority() throws {
        let yaml = Self.mesh(Self.rule("{outlierDetection: {consecutive5xxErrors: 1}, loadBalancer: {localityLbSetting: {failoverPriority: [rack, topology.kubernetes.io/region]}}}"))
        let near = try Self.view(yaml)
        // rack-1 in r1 (a1, b): 0; rack-1 elsewhere (d): 1; rack-2 (a2, c): 2.
        #expect(Self.priorities(near.endpoints) == ["127.0.0.10": 0, "127.0.0.12": 0, "127.0.0.14": 1, "127.0.0.11": 2, "127.0.0.13": 2])
        #expect(Self.weighsLocalities(near.cluster))
        let overridden = try Self.view(Self.mesh(Self.rule("{outlierDetection: {consecutive5xxErrors: 1}, loadBalancer: {localityLbSetting: {failoverPriority: [rack=rack-2]}}}")))
        #expect(Self.priorities(overridden.endpoints) == ["127.0.0.11": 0, "127.0.0.13": 0, "127.0.0.10": 1, "127.0.0.12": 1, "127.0.0.14": 1])
        let withFailover = try Self.view(Self.mesh(Self.rule("{outlierDetection: {consecutive5xxErrors: 1}, loadBalancer: {localityLbSetting: {failoverPriority: [rack], failover: [{from: r1, to: r3}]}}}")))
        // rack-1 first, and within each rack by distance with r3 before r2.
        #expect(Self.priorities(withFailover.endpoints) == ["127.0.0.10": 0, "127.0.0.12": 1, "127.0.0.14": 2, "127.0.0.11": 3, "127.0.0.13": 4])
    }

    @Test("meshctl simulate follows the client's priorities and locality weights")
    func simulation() throws {
        func shares(_ yaml: String) throws -> [String: Double] {
            let simulation = try RequestSimulation.run(try snapshot(yaml), request: .init(from: "shop/client", url: "http://web.shop.svc.cluster.local:8080/"))
            return simulation.outcomes.reduce(into: [:]) { $0[$1.servedBy ?? $1.reason, default: 0] += $1.probability }
        }
        let distributed = try shares(Self.mesh(Self.rule("""
            {loadBalancer: {localityLbSetting: {distribute: [{from: "r1/z1/*", to: {"r1/z1/*": 80, "r1/z2": 20}}]}}}
            """)))
        #expect(distributed.count == 3 && abs(distributed["shop/web-a1", default: 0] - 0.4) < 1e-9 && abs(distributed["shop/web-b", default: 0] - 0.2) < 1e-9, "\(distributed)")
        let prioritized = try shares(Self.mesh(Self.rule("{outlierDetection: {consecutive5xxErrors: 1}}")))
        #expect(prioritized == ["shop/web-a1": 1], "healthy, the first priority takes everything: \(prioritized)")
        let spread = try shares(Self.mesh())
        #expect(spread.count == 5 && spread.values.allSatisfy { abs($0 - 0.2) < 1e-9 }, "\(spread)")
    }

    @Test("retryRemoteLocalities: Envoy's previous_priorities, updated every 2 attempts, on the route's retry policy")
    func retryRemoteLocalities() throws {
        func policy(_ retries: String) throws -> Envoy_Config_Route_V3_RetryPolicy {
            let yaml = Self.mesh("""
                apiVersion: networking.istio.io/v1
                kind: VirtualService
                metadata: {name: web, namespace: shop}
                spec:
                  hosts: [web.shop.svc.cluster.local]
                  http: [{route: [{destination: {host: web.shop.svc.cluster.local}}], retries: \(retries)}]
                """)
            let resources = try SidecarTranslator.translate(try snapshot(yaml), workload: .init(namespace: "shop", name: "client")).resources
            let routes = try #require(resources.resources(ofType: XDSTypeURL.route)["8080"]?.unpack(Envoy_Config_Route_V3_RouteConfiguration.self))
            return try #require(routes.virtualHosts.first { $0.domains.contains("web.shop.svc.cluster.local") }?.routes.first?.route.retryPolicy)
        }
        let remote = try policy("{attempts: 3, retryRemoteLocalities: true}")
        #expect(remote.retryPriority.name == "envoy.retry_priorities.previous_priorities")
        let config = try Envoy_Extensions_Retry_Priority_PreviousPriorities_V3_PreviousPrioritiesConfig(unpackingAny: remote.retryPriority.typedConfig)
        #expect(config.updateFrequency == 2)
        #expect(remote.numRetries.value == 3 && remote.retryHostPredicate.count == 1, "the rest of Istio's policy stays")
        #expect(try !policy("{attempts: 3, retryRemoteLocalities: false}").hasRetryPriority)
        #expect(try !policy("{attempts: 3}").hasRetryPriority)
    }

    @Test("Istio's checks: distribute with failover, weights not adding to 100, overlapping or malformed localities, failover within one region")
    func validation() throws {
        func problems(_ setting: String) -> [String] {
            do {
                let resources = try ResourceDocuments.decode(Self.rule("{loadBalancer: {localityLbSetting: \(setting)}}"), source: "dr.yaml")
                return resources.flatMap { Validation.problems(of: $0.resource).map(\.description) }
            } catch {
                // "dr.yaml, document 1 (DestinationRule shop/web): first; also second; third"
                let text = "\(error)"
                guard let start = text.range(of: "): ") else { return [text] }
                return text[start.upperBound...].replacingOccurrences(of: "; also ", with: "; ").components(separatedBy: "; ")
            }
        }
        let base = "spec.trafficPolicy.loadBalancer.localityLbSetting"
        #expect(problems("{distribute: [{from: r1, to: {r1: 100}}], failover: [{from: r1, to: r2}]}") == ["\(base): distribute and failover cannot be set together"])
        #expect(problems("{distribute: [{from: r1, to: {r1: 70, r2: 20}}]}") == ["\(base).distribute[0].to: the weights add up to 90, not 100"])
        #expect(problems("{distribute: [{from: \"r1/*\", to: {\"r1/z1\": 100}}, {from: \"r1/z2\", to: {r2: 100}}]}") == ["\(base).distribute[1].from: \"r1/z2\" overlaps \"r1/*\""])
        #expect(problems("{distribute: [{from: \"*/z1\", to: {\"r1//s\": 100}}]}").sorted() == [
            "\(base).distribute[0].from: \"*/z1\": the wildcard * may appear once, as the last part",
            "\(base).distribute[0].to[\"r1//s\"]: \"r1//s\" has an empty region, zone or subzone",
        ])
        #expect(problems("{failover: [{from: r1, to: r1}, {from: r1/z1, to: \"*\"}]}").sorted() == [
            "\(base).failover[0]: from and to must be different regions",
            "\(base).failover[1].from: \"r1/z1\" is not a region: failover names regions only",
            "\(base).failover[1].to: a failover region cannot contain the wildcard *",
        ])
        #expect(problems("{failover: [{from: r1, to: r2}], failoverPriority: [topology.kubernetes.io/zone]}") == [
            "\(base).failoverPriority[0]: topology.kubernetes.io/zone cannot be used together with failover, which already orders by region, zone and subzone",
        ])
        #expect(problems("{distribute: [{from: \"r1/*\", to: {\"r1/z1\": 80, \"r2\": 20}}], failoverPriority: [rack]}").isEmpty)
    }
}
