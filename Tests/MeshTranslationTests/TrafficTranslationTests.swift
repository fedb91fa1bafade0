import EnvoyAPI
import Foundation
import MeshModel
@testable import MeshTranslation
import SwiftProtobuf
import Testing
import XDSTesting

@Suite("VirtualService and DestinationRule in the generated config")
struct TrafficTranslationTests {
    static let base = """
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata: {name: web, namespace: shop}
        spec:
          hosts: [web.shop.svc.cluster.local]
          location: MESH_INTERNAL
          resolution: STATIC
          ports: [{number: 8080, name: http}, {number: 9090, name: grpc-api}]
          workloadSelector: {labels: {app: web}}
        ---
        apiVersion: networking.istio.io/v1
        kind: WorkloadEntry
        metadata: {name: web-v1, namespace: shop}
        spec: {address: 127.0.0.50, labels: {app: web, version: v1}, serviceAccount: web}
        ---
        apiVersion: networking.istio.io/v1
        kind: WorkloadEntry
        metadata: {name: web-v2, namespace: shop}
        spec: {address: 127.0.0.51, labels: {app: web, version: v2}, serviceAccount: web}
        ---
        apiVersion: networking.istio.io/v1
        kind: WorkloadEntry
        metadata: {name: client, namespace: shop}
        spec: {address: 127.0.0.52, labels: {app: client, team: blue}, serviceAccount: client}
        ---
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: web, namespace: shop}
        spec:
          host: web
          subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]

        """

    func request(_ authority: String = "web", path: String = "/", method: String = "GET", headers: [String: String] = [:], port: UInt32 = 8080) -> TrafficSimulator.HTTPRequest {
        .init(address: "127.0.0.1", port: port, authority: authority, path: path, method: method, headers: headers)
    }

    func routes(_ yaml: String) throws -> (TrafficSimulator, XDSResourceSet) {
        let resources = try SidecarTranslator.translate(try snapshot(Self.base + yaml), workload: .init(namespace: "shop", name: "client")).resources
        expectPrintable(resources)
        return (TrafficSimulator(resources), resources)
    }

    func route(_ resources: XDSResourceSet, _ config: String = "8080", host: String = "web.shop.svc.cluster.local:8080") throws -> [Envoy_Config_Route_V3_Route] {
        let routes = try #require(resources.resources(ofType: XDSTypeURL.route)[config]?.unpack(Envoy_Config_Route_V3_RouteConfiguration.self))
        return try #require(routes.virtualHosts.first { $0.name == host }).routes
    }

    @Test("matches: uri exact/prefix/regex, ignoreUriCase, method, headers, withoutHeaders, query parameters, port, source labels")
    func matches() throws {
        let (simulator, _) = try routes("""
            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: web, namespace: shop}
            spec:
              hosts: [web]
              http:
              - match: [{uri: {exact: /exact}}]
                route: [{destination: {host: web, subset: v1}}]
              - match: [{uri: {regex: "/re/[0-9]+"}}]
                route: [{destination: {host: web, subset: v2}}]
              - match: [{uri: {prefix: /CaSe}, ignoreUriCase: true}]
                route: [{destination: {host: web, subset: v1}}]
              - match: [{method: {exact: DELETE}}]
                directResponse: {status: 405, body: {string: "no deletes"}}
              - match: [{withoutHeaders: {x-team: {}}, queryParams: {debug: {exact: "1"}}}]
                route: [{destination: {host: web, subset: v2}}]
              - match: [{port: 9999}]
                route: [{destination: {host: web, subset: v2}}]
              - match: [{sourceLabels: {team: red}}]
                route: [{destination: {host: web, subset: v2}}]
              - route: [{destination: {host: web, subset: v1}}]
            """)
        let v1 = ["outbound|8080|v1|web.shop.svc.cluster.local"], v2 = ["outbound|8080|v2|web.shop.svc.cluster.local"]
        #expect(try simulator.http(request(path: "/exact")).clusters.map(\.name) == v1)
        #expect(try simulator.http(request(path: "/exact/more")).clusters.map(\.name) == v1, "falls through to the last rule")
        #expect(try simulator.http(request(path: "/re/42")).clusters.map(\.name) == v2)
        #expect(try simulator.http(request(path: "/case/x")).clusters.map(\.name) == v1)
        #expect(try simulator.http(request(method: "DELETE")).directResponse == 405)
        #expect(try simulator.http(request(path: "/?debug=1")).clusters.map(\.name) == v2)
        #expect(try simulator.http(request(path: "/?debug=1", headers: ["x-team": "a"])).clusters.map(\.name) == v1)
        #expect(try simulator.http(request(path: "/other")).clusters.map(\.name) == v1, "port and source-label matches of other ports/labels are left out")
    }

    @Test("actions: weights, redirect, rewrite, header edits, timeout, retries with back-off, mirror, fault and CORS per route")
    func actions() throws {
        let (simulator, resources) = try routes("""
            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: web, namespace: shop}
            spec:
              hosts: [web]
              http:
              - name: old
                match: [{uri: {prefix: /old}}]
                redirect: {uri: /new, authority: web.example.com, redirectCode: 308}
              - name: api
                match: [{uri: {prefix: /api/}}]
                rewrite: {uri: /v2/, authority: backend}
                timeout: 3s
                retries: {attempts: 4, perTryTimeout: 1s, retryOn: "gateway-error,503", backoff: 0.1s}
                headers:
                  request: {set: {x-set: one}, add: {x-add: two}, remove: [x-secret]}
                  response: {set: {x-served-by: mesh}}
                mirror: {host: web, subset: v2}
                mirrorPercentage: {value: 25}
                fault: {abort: {httpStatus: 418, percentage: {value: 1.5}}}
                corsPolicy: {allowOrigins: [{exact: "https://a.example"}], allowMethods: [GET, POST], maxAge: 24h, allowCredentials: true}
                route:
                - {destination: {host: web, subset: v1}, weight: 75}
                - {destination: {host: web, subset: v2}, weight: 25}
            """)
        #expect(try simulator.http(request(path: "/old/x")).directResponse == 301)
        let outcome = try simulator.http(request(path: "/api/items"))
        #expect(outcome.clusters.map(\.weight) == [75, 25])
        let routes = try route(resources)
        let redirect = try #require(routes.first { $0.name == "old" }).redirect
        #expect(redirect.pathRedirect == "/new" && redirect.hostRedirect == "web.example.com" && redirect.responseCode == .permanentRedirect)
        let api = try #require(routes.first { $0.name == "api" })
        let action = api.route
        #expect(action.prefixRewrite == "/v2/" && action.hostRewriteLiteral == "backend")
        #expect(action.timeout.seconds == 3)
        #expect(action.retryPolicy.numRetries.value == 4)
        #expect(action.retryPolicy.retryOn == "gateway-error,retriable-status-codes")
        #expect(action.retryPolicy.retriableStatusCodes == [503])
        #expect(action.retryPolicy.perTryTimeout.seconds == 1)
        #expect(action.retryPolicy.retryBackOff.baseInterval.nanos == 100_000_000)
        #expect(action.requestMirrorPolicies.first?.cluster == "outbound|8080|v2|web.shop.svc.cluster.local")
        #expect(action.requestMirrorPolicies.first?.runtimeFraction.defaultValue.numerator == 250_000)
        #expect(api.requestHeadersToAdd.map(\.header.key) == ["x-set", "x-add"])
        #expect(api.requestHeadersToAdd.map(\.appendAction) == [.overwriteIfExistsOrAdd, .appendIfExistsOrAdd])
        #expect(api.requestHeadersToRemove == ["x-secret"])
        #expect(api.responseHeadersToAdd.map(\.header.key) == ["x-served-by"])
        let fault = try Envoy_Extensions_Filters_Http_Fault_V3_HTTPFault(unpackingAny: try #require(api.typedPerFilterConfig["envoy.filters.http.fault"]))
        #expect(fault.abort.httpStatus == 418 && fault.abort.percentage.numerator == 15_000 && fault.abort.percentage.denominator == .million)
        let cors = try Envoy_Extensions_Filters_Http_Cors_V3_CorsPolicy(unpackingAny: try #require(api.typedPerFilterConfig["envoy.filters.http.cors"]))
        #expect(cors.allowOriginStringMatch.map(\.exact) == ["https://a.example"] && cors.allowMethods == "GET,POST" && cors.maxAge == "86400" && cors.allowCredentials.value)
    }

    @Test("retries: attempts 0 turns retries off; no retries field means Istio's default policy")
    func retryDefaults() throws {
        let (_, resources) = try routes("""
            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: web, namespace: shop}
            spec:
              hosts: [web]
              http:
              - {name: no-retries, match: [{uri: {prefix: /off}}], retries: {attempts: 0}, route: [{destination: {host: web}}]}
              - {name: default, route: [{destination: {host: web}}]}
            """)
        let routes = try route(resources)
        #expect(!(routes.first { $0.name == "no-retries" }?.route.hasRetryPolicy ?? true))
        #expect(routes.first { $0.name == "default" }?.route.retryPolicy.numRetries.value == 2)
    }


    @Test("a match's statPrefix becomes its route's stat prefix")
    func statPrefix() throws {
        let (_, resources) = try routes("""
            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: web, namespace: shop}
            spec:
              hosts: [web]
              http:
              - {name: api, match: [{name: v1, uri: {prefix: /v1}, statPrefix: api_v1}, {name: v2, uri: {prefix: /v2}}], route: [{destination: {host: web}}]}
            """)
        let routes = try route(resources)
        #expect(routes.first { $0.name == "api.v1" }?.statPrefix == "api_v1")
        #expect(routes.first { $0.name == "api.v2" }?.statPrefix == "")
    }

    @Test("a fault delay or abort without percentage applies to no request (Istio: 0 %); percent and percentage still count")
    func faultWithoutPercentage() throws {
        let (_, resources) = try routes("""
            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: web, namespace: shop}
            spec:
              hosts: [web]
              http:
              - {name: bare, match: [{uri: {prefix: /bare}}], fault: {delay: {fixedDelay: 5s}, abort: {httpStatus: 503}}, route: [{destination: {host: web}}]}
              - {name: legacy, match: [{uri: {prefix: /legacy}}], fault: {delay: {fixedDelay: 5s, percent: 30}}, route: [{destination: {host: web}}]}
              - {name: set, fault: {delay: {fixedDelay: 5s, percentage: {value: 100}}, abort: {httpStatus: 503, percentage: {value: 50}}}, route: [{destination: {host: web}}]}
            """)
        let routes = try route(resources)
        func fault(_ name: String) throws -> Envoy_Extensions_Filters_Http_Fault_V3_HTTPFault {
            let route = try #require(routes.first { $0.name == name })
            return try Envoy_Extensions_Filters_Http_Fault_V3_HTTPFault(unpackingAny: try #require(route.typedPerFilterConfig["envoy.filters.http.fault"]))
        }
        let bare = try fault("bare")
        #expect(bare.delay.percentage.numerator == 0 && bare.abort.percentage.numerator == 0 && bare.abort.httpStatus == 503)
        #expect(try fault("legacy").delay.percentage.numerator == 300_000)
        let set = try fault("set")
        #expect(set.delay.percentage.numerator == 1_000_000 && set.abort.percentage.numerator == 500_000)
    }
    @Test("one weighted split for HTTP routes and TCP proxies: by weight, zero left out; all unset is an equal split")
    func weightedSplit() {
        #expect(WeightedSplit.weights([90, 10]) == [90, 10])
        #expect(WeightedSplit.weights([100, 0, nil]) == [100, nil, nil])
        #expect(WeightedSplit.weights([nil, nil]) == [1, 1])
        #expect(WeightedSplit.weights([0, -5]) == [1, 1])
        let tcp = TCPProxy.to(clusters: ["a", "b", "c"], weights: [80, 20, 0])
        #expect(tcp.weightedClusters.clusters.map(\.name) == ["a", "b"] && tcp.weightedClusters.clusters.map(\.weight) == [80, 20])
        #expect(TCPProxy.to(clusters: ["a", "b"], weights: [nil, nil]).weightedClusters.clusters.map(\.weight) == [1, 1], "never an empty split")
    }

    @Test("TCP ports: connectionPool.tcp idleTimeout and maxConnectionDuration reach the TCP proxy (routed or not); unset, neither is set")
    func tcpProxyTimeouts() throws {
        let db = """
            ---
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: db, namespace: shop}
            spec:
              hosts: [db.shop.svc.cluster.local]
              location: MESH_INTERNAL
              resolution: STATIC
              ports: [{number: 5432, name: tcp-pg}, {number: 5433, name: tcp-replica}]
              workloadSelector: {labels: {app: web}}
            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: db, namespace: shop}
            spec:
              hosts: [db]
              tcp: [{match: [{port: 5433}], route: [{destination: {host: db, port: {number: 5433}}}]}]

            """
        func proxies(_ yaml: String) throws -> [Envoy_Extensions_Filters_Network_TcpProxy_V3_TcpProxy] {
            let (_, resources) = try routes(yaml)
            return try [5432, 5433].map { port in
                let listener = try #require(resources.sortedResources(ofType: XDSTypeURL.listener).first { $0.name.hasSuffix("_\(port)") }?.unpack(Envoy_Config_Listener_V3_Listener.self))
                return try Envoy_Extensions_Filters_Network_TcpProxy_V3_TcpProxy(unpackingAny: try #require(listener.filterChains.first?.filters.last).typedConfig)
            }
        }
        for proxy in try proxies(db) {
            #expect(!proxy.hasIdleTimeout && !proxy.hasMaxDownstreamConnectionDuration, "\(proxy.statPrefix): Envoy's defaults")
        }
        let pool = "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: db, namespace: shop}\nspec: {host: db, trafficPolicy: {connectionPool: {tcp: {idleTimeout: 5s, maxConnectionDuration: 1m}}}}\n"
        for proxy in try proxies(db + pool) {
            #expect(proxy.idleTimeout.seconds == 5 && proxy.maxDownstreamConnectionDuration.seconds == 60, "\(proxy.statPrefix)")
        }
    }

    @Test("the traffic policy fields map to Envoy's, with port and subset overrides")
    func policyMapping() throws {
        let rule = """
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: web, namespace: shop}
            spec:
              host: web
              trafficPolicy:
                loadBalancer: {simple: ROUND_ROBIN}
                connectionPool:
                  tcp: {maxConnections: 7, connectTimeout: 2s, tcpKeepalive: {probes: 3, time: 60s, interval: 10s}}
                  http: {http1MaxPendingRequests: 5, http2MaxRequests: 9, maxRequestsPerConnection: 2, maxRetries: 4, idleTimeout: 30s, h2UpgradePolicy: UPGRADE}
                outlierDetection: {consecutive5xxErrors: 5, consecutiveGatewayErrors: 2, interval: 30s, baseEjectionTime: 30s, maxEjectionPercent: 50, minHealthPercent: 20}
                portLevelSettings:
                - port: {number: 9090}
                  loadBalancer: {consistentHash: {httpCookie: {name: session, ttl: 60s}}}
              subsets:
              - {name: v1, labels: {version: v1}, trafficPolicy: {loadBalancer: {simple: RANDOM}}}
              - {name: v2, labels: {version: v2}}
            """
        let yaml = Self.base.replacingOccurrences(of: """
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: web, namespace: shop}
            spec:
              host: web
              subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]

            """, with: rule)
        let resources = try SidecarTranslator.translate(try snapshot(yaml), workload: .init(namespace: "shop", name: "client")).resources
        func cluster(_ name: String) throws -> Envoy_Config_Cluster_V3_Cluster {
            try #require(resources.resources(ofType: XDSTypeURL.cluster)[name]?.unpack(Envoy_Config_Cluster_V3_Cluster.self))
        }
        let base = try cluster("outbound|8080||web.shop.svc.cluster.local")
        #expect(base.lbPolicy == .roundRobin)
        let thresholds = try #require(base.circuitBreakers.thresholds.first)
        #expect(thresholds.maxConnections.value == 7 && thresholds.maxPendingRequests.value == 5 && thresholds.maxRequests.value == 9 && thresholds.maxRetries.value == 4)
        #expect(base.connectTimeout.seconds == 2)
        #expect(base.upstreamConnectionOptions.tcpKeepalive.keepaliveProbes.value == 3 && base.upstreamConnectionOptions.tcpKeepalive.keepaliveTime.value == 60)
        let options = try Envoy_Extensions_Upstreams_Http_V3_HttpProtocolOptions(unpackingAny: try #require(base.typedExtensionProtocolOptions["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]))
        #expect(options.commonHTTPProtocolOptions.maxRequestsPerConnection.value == 2 && options.commonHTTPProtocolOptions.idleTimeout.seconds == 30)
        if case .http2ProtocolOptions = options.explicitHTTPConfig.protocolConfig {} else {
            Issue.record("h2UpgradePolicy UPGRADE speaks HTTP/2 upstream")
        }
        #expect(base.outlierDetection.consecutive5Xx.value == 5 && base.outlierDetection.consecutiveGatewayFailure.value == 2 && base.outlierDetection.maxEjectionPercent.value == 50)
        #expect(base.commonLbConfig.healthyPanicThreshold.value == 20)
        #expect(try cluster("outbound|9090||web.shop.svc.cluster.local").lbPolicy == .ringHash, "port level overrides the top level")
        #expect(try cluster("outbound|8080|v1|web.shop.svc.cluster.local").lbPolicy == .random, "the subset overrides the top level")
        #expect(try cluster("outbound|8080|v1|web.shop.svc.cluster.local").circuitBreakers.thresholds.first?.maxConnections.value == 7, "and inherits the rest")
        #expect(try cluster("outbound|8080|v2|web.shop.svc.cluster.local").lbPolicy == .roundRobin)
        #expect(try TrafficSimulator(resources).endpoints(of: "outbound|8080|v2|web.shop.svc.cluster.local") == ["127.0.0.51:8080"])
        // Unset thresholds stay at Istio's 4294967295, not Envoy's 1024.
        let plain = try SidecarTranslator.translate(try snapshot(Self.base), workload: .init(namespace: "shop", name: "client")).resources
        let unset = try #require(plain.resources(ofType: XDSTypeURL.cluster)["outbound|8080||web.shop.svc.cluster.local"]?.unpack(Envoy_Config_Cluster_V3_Cluster.self))
        #expect(unset.circuitBreakers.thresholds.first?.maxPendingRequests.value == 4_294_967_295)
        // The cookie hash reaches the route of port 9090.
        let routes = try #require(resources.resources(ofType: XDSTypeURL.route)["9090"]?.unpack(Envoy_Config_Route_V3_RouteConfiguration.self))
        #expect(routes.virtualHosts.first?.routes.first?.route.hashPolicy.first?.cookie.name == "session")
    }

    @Test("references that resolve to nothing are accepted and reported per resource and field")
    func unresolvedReferences() throws {
        let mesh = try snapshot(Self.base + """
            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: broken, namespace: shop}
            spec:
              hosts: [web]
              http:
              - route:
                - {destination: {host: web, subset: v9}, weight: 50}
                - {destination: {host: nowhere}, weight: 50}
            ---
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: ghost, namespace: shop}
            spec: {host: ghost}
            """)
        let warnings = ReferenceCheck.warnings(in: mesh)
        let vs = warnings[ResourceKey(kind: .virtualService, namespace: "shop", name: "broken")]?.map(\.description) ?? []
        #expect(vs.contains("spec.http[0].route[0].destination.subset: no DestinationRule defines subset v9 of web.shop.svc.cluster.local (IST0101)"))
        #expect(vs.contains("spec.http[0].route[1].destination.host: no service has host nowhere.shop.svc.cluster.local (IST0101)"))
        #expect(warnings[ResourceKey(kind: .destinationRule, namespace: "shop", name: "ghost")]?.first?.reason == "no service has host ghost.shop.svc.cluster.local (IST0174)")
        let translation = try SidecarTranslator.translate(mesh, workload: .init(namespace: "shop", name: "client"))
        #expect(translation.warnings.contains { $0.contains("subset v9") })
    }
}
