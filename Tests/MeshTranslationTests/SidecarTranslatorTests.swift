import EnvoyAPI
import Foundation
import MeshConfig
import MeshModel
import MeshTranslation
import SwiftProtobuf
import Testing
import XDSTesting

@Suite("Translating the mesh into one sidecar's Envoy config")
struct SidecarTranslatorTests {
    @Test("governor calls scheduler: its egress listener, port route, service cluster, endpoints")
    func outboundHTTP() throws {
        let governor = try simulator(try exampleSnapshot(), "tai-system", "governor-v1")
        let outcome = try governor.http(.init(address: "127.0.1.2", port: 8080, authority: "scheduler"))
        #expect(outcome.listener == "127.0.1.2_8080")
        #expect(outcome.routeConfiguration == "8080")
        #expect(outcome.virtualHost == "scheduler.tai-system.svc.cluster.local:8080")
        #expect(outcome.clusters.map(\.name) == ["outbound|8080||scheduler.tai-system.svc.cluster.local"])
        #expect(outcome.endpoints == ["127.0.0.3:8080"])
    }

    @Test("the ADR's canary: canary testers reach v2; everyone else is split 90/10 between the subsets")
    func adrCanary() throws {
        let governor = try simulator(try exampleSnapshot(), "tai-system", "governor-v1")
        let tester = try governor.http(.init(address: "127.0.1.2", port: 8080, authority: "coordinator", headers: ["user-agent": "canary-tester"]))
        #expect(tester.clusters.map(\.name) == ["outbound|8080|canary|coordinator.tai-system.svc.cluster.local"])
        #expect(tester.endpoints == ["127.0.0.5:8080"])
        let others = try governor.http(.init(address: "127.0.1.2", port: 8080, authority: "coordinator", headers: ["user-agent": "curl"]))
        #expect(others.clusters == [
            .init(name: "outbound|8080|stable|coordinator.tai-system.svc.cluster.local", weight: 90),
            .init(name: "outbound|8080|canary|coordinator.tai-system.svc.cluster.local", weight: 10),
        ])
        #expect(try governor.endpoints(of: "outbound|8080|stable|coordinator.tai-system.svc.cluster.local") == ["127.0.0.4:8080"])
        #expect(try governor.endpoints(of: "outbound|8080||coordinator.tai-system.svc.cluster.local") == ["127.0.0.4:8080", "127.0.0.5:8080"])
    }

    @Test("every Istio host form of the service reaches the same virtual host", arguments: [
        "coordinator", "coordinator:8080", "coordinator.tai-system", "coordinator.tai-system:8080",
        "coordinator.tai-system.svc", "coordinator.tai-system.svc.cluster.local", "coordinator.tai-system.svc.cluster.local:8080",
    ])
    func hostForms(authority: String) throws {
        let governor = try simulator(try exampleSnapshot(), "tai-system", "governor-v1")
        #expect(try governor.http(.init(address: "127.0.1.2", port: 8080, authority: authority)).virtualHost == "coordinator.tai-system.svc.cluster.local:8080")
    }

    @Test("a host no service has: forwarded to it (ALLOW_ANY, Istio's default), or to BlackHoleCluster (REGISTRY_ONLY, from mesh.yaml or the Sidecar)")
    func unknownHost() throws {
        let request = TrafficSimulator.HTTPRequest(address: "127.0.1.2", port: 8080, authority: "unknown.example.com")
        let example = try exampleSnapshot()
        let allowed = try simulator(example, "tai-system", "governor-v1").http(request)
        #expect(allowed.virtualHost == "allow_any" && allowed.clusters.map(\.name) == ["PassthroughCluster"])
        var mesh = example.mesh
        mesh.outboundTrafficMode = .REGISTRY_ONLY
        let strict = MeshSnapshot(revision: 2, mesh: mesh, resources: Array(example.resources.values))
        let resources = try SidecarTranslator.translate(strict, workload: .init(namespace: "tai-system", name: "governor-v1")).resources
        let blocked = try TrafficSimulator(resources).http(request)
        #expect(blocked.virtualHost == "block_all" && blocked.clusters.map(\.name) == ["BlackHoleCluster"] && blocked.endpoints.isEmpty)
        #expect(resources.resources(ofType: XDSTypeURL.cluster)["PassthroughCluster"] == nil)
        let listener = try #require(resources.resources(ofType: XDSTypeURL.listener)["127.0.1.2_8080"]?.unpack(Envoy_Config_Listener_V3_Listener.self))
        let hcm = try Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager(unpackingAny: listener.filterChains[0].filters[0].typedConfig)
        #expect(hcm.localReplyConfig.mappers.first?.statusCode.value == 502, "no healthy upstream in BlackHoleCluster becomes Istio's 502")
        // The Sidecar's policy wins over mesh.yaml's.
        let sidecarAllows = MeshSnapshot(revision: 3, mesh: mesh, resources: Array(example.resources.values) + (try ResourceDocuments.decode("""
            apiVersion: networking.istio.io/v1
            kind: Sidecar
            metadata: {name: governor-egress, namespace: tai-system}
            spec:
              workloadSelector: {labels: {app: governor}}
              outboundTrafficPolicy: {mode: ALLOW_ANY}
              egress: [{bind: 127.0.1.2, hosts: ["./*"]}]
            """, source: "test.yaml").map(\.resource)))
        let forwarded = try simulator(sidecarAllows, "tai-system", "governor-v1").http(request)
        #expect(forwarded.clusters.map(\.name) == ["PassthroughCluster"])
        // A Sidecar policy without a mode is Istio's REGISTRY_ONLY; a non-loopback bind never forwards.
        func sidecar(_ policy: String, bind: String) throws -> MeshSnapshot {
            MeshSnapshot(revision: 4, mesh: example.mesh, resources: Array(example.resources.values) + (try ResourceDocuments.decode("""
                apiVersion: networking.istio.io/v1
                kind: Sidecar
                metadata: {name: governor-egress, namespace: tai-system}
                spec:
                  workloadSelector: {labels: {app: governor}}
                  \(policy)
                  egress: [{bind: \(bind), hosts: ["./*"]}]
                """, source: "test.yaml").map(\.resource)))
        }
        #expect(try simulator(try sidecar("outboundTrafficPolicy: {}", bind: "127.0.1.2"), "tai-system", "governor-v1").http(request).virtualHost == "block_all")
        let external = TrafficSimulator.HTTPRequest(address: "10.9.9.9", port: 8080, authority: "unknown.example.com")
        #expect(try simulator(try sidecar("", bind: "10.9.9.9"), "tai-system", "governor-v1").http(external).virtualHost == "block_all", "mesh default ALLOW_ANY, but not on a non-loopback bind")
    }

    @Test("inbound: the mesh address forwards to the app at the Sidecar's defaultEndpoint")
    func inbound() throws {
        let coordinator = try simulator(try exampleSnapshot(), "tai-system", "coordinator-v2")
        let outcome = try coordinator.http(.init(address: "127.0.0.5", port: 8080, authority: "coordinator.tai-system.svc.cluster.local"))
        #expect(outcome.listener == "127.0.0.5_8080")
        #expect(outcome.clusters.map(\.name) == ["inbound|8080||"])
        #expect(outcome.endpoints == ["127.0.2.5:8080"])
    }

    @Test("a workload serves and calls the same port on different addresses")
    func sameNumberBothWays() throws {
        let resources = try SidecarTranslator.translate(try exampleSnapshot(), workload: .init(namespace: "tai-system", name: "coordinator-v1")).resources
        let listeners = resources.sortedResources(ofType: XDSTypeURL.listener).map(\.name)
        #expect(listeners == ["127.0.0.4_8080", "127.0.1.4_8080"])
    }

    @Test("without a Sidecar: egress on 127.0.0.1, ingress on the workload address to the app on 127.0.0.1; TCP ports use tcp_proxy")
    func defaultsAndTCP() throws {
        let mesh = try snapshot(twoNamespaces)
        let client = try simulator(mesh, "web", "client")
        let db = try client.tcp(address: "127.0.0.1", port: 5432)
        #expect(db.cluster == "outbound|5432||db.shop.svc.cluster.local")
        #expect(db.endpoints == ["127.0.0.11:15432"])
        let ratings = try client.http(.init(address: "127.0.0.1", port: 9080, authority: "ratings.shop"))
        #expect(ratings.endpoints == ["127.0.0.10:9080"])
        // Short names only resolve for services of the caller's own namespace.
        #expect(try client.http(.init(address: "127.0.0.1", port: 9080, authority: "ratings")).virtualHost == "allow_any")

        let server = try simulator(mesh, "shop", "db-1")
        let inbound = try server.tcp(address: "127.0.0.11", port: 15432)
        #expect(inbound.cluster == "inbound|15432||")
        #expect(inbound.endpoints == ["127.0.0.1:15432"])
    }

    @Test("exportTo '.' hides a service from other namespaces")
    func exportTo() throws {
        let mesh = try snapshot(twoNamespaces)
        let clusters = try SidecarTranslator.translate(mesh, workload: .init(namespace: "web", name: "client")).resources.resources(ofType: XDSTypeURL.cluster)
        #expect(clusters["outbound|8200||secret.vault.svc.cluster.local"] == nil)
        #expect(clusters["outbound|9080||ratings.shop.svc.cluster.local"] != nil)
    }

    @Test("Sidecar egress hosts limit what a workload reaches")
    func egressHosts() throws {
        let mesh = try snapshot(twoNamespaces + """

            ---
            apiVersion: networking.istio.io/v1
            kind: Sidecar
            metadata: {name: default, namespace: web}
            spec:
              egress:
              - bind: 127.0.3.12
                hosts: ["shop/db.shop.svc.cluster.local"]
            """)
        let resources = try SidecarTranslator.translate(mesh, workload: .init(namespace: "web", name: "client")).resources
        #expect(resources.sortedResources(ofType: XDSTypeURL.cluster).map(\.name) == ["outbound|5432||db.shop.svc.cluster.local"])
        #expect(resources.sortedResources(ofType: XDSTypeURL.listener).map(\.name) == ["127.0.3.12_5432"])
    }

    @Test("a Sidecar egress port's protocol decides its listener, as in Istio: TCP for an HTTP service, HTTP for a TCP one")
    func egressPortProtocol() throws {
        let mesh = try snapshot(twoNamespaces + """

            ---
            apiVersion: networking.istio.io/v1
            kind: Sidecar
            metadata: {name: default, namespace: web}
            spec:
              egress:
              - {bind: 127.0.3.12, port: {number: 9080, protocol: TCP, name: tcp}, hosts: ["shop/*"]}
              - {bind: 127.0.3.13, port: {number: 5432, protocol: HTTP, name: http}, hosts: ["shop/*"]}
            """)
        let resources = try SidecarTranslator.translate(mesh, workload: .init(namespace: "web", name: "client")).resources
        func filter(_ name: String) throws -> String? {
            try resources.resources(ofType: XDSTypeURL.listener)[name]?.unpack(Envoy_Config_Listener_V3_Listener.self)?.filterChains.first?.filters.first?.name
        }
        #expect(try filter("127.0.3.12_9080") == "envoy.filters.network.tcp_proxy")
        #expect(try filter("127.0.3.13_5432") == "envoy.filters.network.http_connection_manager")
        let routes = try #require(resources.resources(ofType: XDSTypeURL.route)["5432"]?.unpack(Envoy_Config_Route_V3_RouteConfiguration.self))
        #expect(routes.virtualHosts.map(\.name) == ["db.shop.svc.cluster.local:5432", "allow_any"])
        #expect(resources.resources(ofType: XDSTypeURL.route)["9080"] == nil)
    }

    @Test("an unknown workload is an error naming it")
    func unknownWorkload() throws {
        #expect(throws: TranslationError(reason: "no WorkloadEntry tai-system/nobody in the mesh configuration")) {
            try SidecarTranslator.translate(try exampleSnapshot(), workload: .init(namespace: "tai-system", name: "nobody"))
        }
    }

    @Test("the same inputs give byte-identical resources")
    func deterministic() throws {
        let first = try SidecarTranslator.translate(try exampleSnapshot(), workload: .init(namespace: "tai-system", name: "governor-v1")).resources
        let second = try SidecarTranslator.translate(try exampleSnapshot(), workload: .init(namespace: "tai-system", name: "governor-v1")).resources
        #expect(first == second)
    }

    @Test("defaults Istio applies: no route timeout, Istio's retry policy, unlimited circuit breakers, EDS clusters")
    func istioDefaults() throws {
        let resources = try SidecarTranslator.translate(try exampleSnapshot(), workload: .init(namespace: "tai-system", name: "governor-v1")).resources
        let routes = try #require(resources.resources(ofType: XDSTypeURL.route)["8080"]?.unpack(Envoy_Config_Route_V3_RouteConfiguration.self))
        let route = try #require(routes.virtualHosts.first { $0.name.hasPrefix("scheduler") }?.routes.first?.route)
        #expect(route.timeout.seconds == 0)
        #expect(route.retryPolicy.numRetries.value == 2)
        #expect(route.retryPolicy.retryOn == "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes")
        let cluster = try #require(resources.resources(ofType: XDSTypeURL.cluster)["outbound|8080||scheduler.tai-system.svc.cluster.local"]?.unpack(Envoy_Config_Cluster_V3_Cluster.self))
        #expect(cluster.type == .eds)
        #expect(cluster.edsClusterConfig.serviceName == cluster.name)
        #expect(cluster.circuitBreakers.thresholds.first?.maxConnections.value == 4_294_967_295)
        #expect(cluster.circuitBreakers.thresholds.first?.maxRequests.value == 4_294_967_295)
    }

    @Test("the governor's route configuration matches its golden file")
    func golden() throws {
        let resources = try SidecarTranslator.translate(try exampleSnapshot(), workload: .init(namespace: "tai-system", name: "governor-v1")).resources
        let routes = try #require(resources.resources(ofType: XDSTypeURL.route)["8080"]?.unpack(Envoy_Config_Route_V3_RouteConfiguration.self))
        var options = JSONEncodingOptions()
        options.useDeterministicOrdering = true
        EnvoyJSON.registerPackedTypes()
        let json = try routes.jsonString(options: options)
        let path = TestTools.packageRoot + "/Tests/MeshTranslationTests/Golden/governor-v1-routes-8080.json"
        if ProcessInfo.processInfo.environment["MESHD_UPDATE_GOLDEN"] == "1" {
            try (json + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        }
        let golden = try String(contentsOfFile: path, encoding: .utf8)
        #expect(json + "\n" == golden, "regenerate with MESHD_UPDATE_GOLDEN=1 swift test --filter golden after an intended change")
    }
}
