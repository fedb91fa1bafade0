import EnvoyAPI
import MeshConfig
import MeshModel
import MeshTranslation
import Testing

/// The memoized translation is the reference translation, byte for byte: a generated mesh goes
/// through a seeded random sequence of changes to all nine kinds (and mTLS rollout staging), and
/// after each one every workload's configuration through one long-lived memo equals
/// `SidecarTranslator.translate` without it.
@Suite("Incremental translation equals full translation")
struct IncrementalTranslationTests {
    /// SplitMix64: the same seed gives the same sequence on every machine.
    struct Random {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
        mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }
        mutating func chance(_ percent: Int) -> Bool { below(100) < percent }
    }

    static let namespaces = ["a", "b"]
    static let serviceCount = 6
    static let workloadCount = 8

    static func namespace(ofService index: Int) -> String { namespaces[index % namespaces.count] }
    static func host(_ index: Int) -> String { "svc\(index).\(namespace(ofService: index)).svc.cluster.local" }

    /// One random form of each resource, by kind and slot (nil: absent).
    static func serviceEntry(_ index: Int, _ random: inout Random) -> String {
        let ns = namespace(ofService: index)
        let location = random.chance(80) ? "MESH_INTERNAL" : "MESH_EXTERNAL"
        let resolution = random.chance(85) ? "STATIC" : "DNS"
        var ports = ["{number: 8080, name: http-web, protocol: HTTP, targetPort: \(random.pick([8080, 9080]))}"]
        if random.chance(40) { ports.append("{number: 5432, name: tcp-db, protocol: TCP}") }
        if random.chance(30) { ports.append("{number: 9090, name: grpc-api, protocol: GRPC}") }
        // A port that declares nothing: its protocol is detected per connection.
        if random.chance(30) { ports.append("{number: 7070, name: web-auto}") }
        let sans = random.chance(20) ? "\n  subjectAltNames: [spiffe://cluster.local/ns/\(ns)/sa/extra]" : ""
        let export = random.chance(15) ? "\n  exportTo: [\".\"]" : ""
        return """
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: svc\(index), namespace: \(ns)}
            spec:
              hosts: [\(host(index))]
              location: \(location)
              resolution: \(resolution)
              ports: [\(ports.joined(separator: ", "))]
              workloadSelector: {labels: {app: svc\(index)}}\(sans)\(export)
            """
    }

    static func workloadEntry(_ index: Int, _ random: inout Random) -> String {
        let ns = namespaces[index % namespaces.count]
        var labels = ["app: svc\(random.pick(Array(stride(from: index % namespaces.count, to: serviceCount, by: namespaces.count))))", "version: \(random.pick(["v1", "v2"]))"]
        if random.chance(10) { labels.append("security.istio.io/tlsMode: disabled") }
        var extra = ""
        if random.chance(30) { extra += ", locality: \(random.pick(["eu/zone-1", "us/zone-2/rack-3"]))" }
        if random.chance(20) { extra += ", weight: \(random.pick([1, 5, 10]))" }
        if random.chance(20) { extra += ", ports: {http-web: \(random.pick([18080, 19080]))}" }
        // Some are auto-registered from the namespace's group: their probe reports decide readiness.
        let annotations = random.chance(40) ? ", annotations: {istio.io/autoRegistrationGroup: g}" : ""
        return """
            apiVersion: networking.istio.io/v1
            kind: WorkloadEntry
            metadata: {name: w\(index), namespace: \(ns)\(annotations)}
            spec: {address: 127.0.\(random.pick([1, 2])).\(10 + index), serviceAccount: sa\(random.below(3)), labels: {\(labels.joined(separator: ", "))}\(extra)}
            """
    }

    /// A namespace's WorkloadGroup `g`, with a probe or without.
    static func workloadGroup(_ index: Int, _ random: inout Random) -> String {
        """
        apiVersion: networking.istio.io/v1
        kind: WorkloadGroup
        metadata: {name: g, namespace: \(namespaces[index % namespaces.count])}
        spec:
          template: {serviceAccount: sa0}\(random.chance(60) ? "\n  probe: {tcpSocket: {port: 8080}}" : "")
        """
    }

    /// Locality load balancing as the client's locality and labels change what it sees.
    static let localitySettings = [
        "{failover: [{from: eu, to: us}]}",
        "{distribute: [{from: \"eu/*\", to: {\"eu/zone-1\": 70, \"us/*\": 30}}]}",
        "{failoverPriority: [version, topology.kubernetes.io/zone]}",
        "{enabled: false}",
    ]

    static func destinationRule(_ index: Int, _ random: inout Random) -> String {
        let ns = random.pick(namespaces + ["istio-system"])
        var policy: [String] = []
        if random.chance(50) { policy.append("tls: {mode: \(random.pick(["ISTIO_MUTUAL", "DISABLE"]))}") }
        if random.chance(40) {
            policy.append(random.chance(30)
                ? "loadBalancer: {consistentHash: {httpHeaderName: x-user}}"
                : "loadBalancer: {simple: \(random.pick(["ROUND_ROBIN", "LEAST_REQUEST", "RANDOM"]))\(random.chance(50) ? ", localityLbSetting: " + random.pick(localitySettings) : "")}")
        }
        if random.chance(30) { policy.append("connectionPool: {tcp: {maxConnections: \(random.pick([10, 100]))}, http: {http1MaxPendingRequests: 5}}") }
        if random.chance(30) { policy.append("outlierDetection: {consecutive5xxErrors: 3, interval: 10s, baseEjectionTime: 30s}") }
        let trafficPolicy = policy.isEmpty ? "" : "\n  trafficPolicy: {\(policy.joined(separator: ", "))}"
        let subsets = random.chance(70) ? "\n  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}\(random.chance(30) ? ", trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}" : "")}]" : ""
        let selector = random.chance(10) ? "\n  workloadSelector: {matchLabels: {version: v2}}" : ""
        return """
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: dr\(index), namespace: \(ns)}
            spec:
              host: \(host(index))\(trafficPolicy)\(subsets)\(selector)
            """
    }

    static func virtualService(_ index: Int, _ random: inout Random) -> String {
        let route: String
        switch random.below(3) {
        case 0: route = "[{destination: {host: \(host(index)), subset: v1}}]"
        case 1: route = "[{destination: {host: \(host(index)), subset: v1}, weight: 80}, {destination: {host: \(host(index)), subset: v2}, weight: 20}]"
        default: route = "[{destination: {host: \(host((index + 1) % serviceCount))}}]"
        }
        let retries = random.chance(50) ? "\n    retries: {attempts: \(random.pick([0, 2]))}" : ""
        let timeout = random.chance(30) ? "\n    timeout: 3s" : ""
        return """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: vs\(index), namespace: \(namespace(ofService: index))}
            spec:
              hosts: [\(host(index))]
              http:
              - match: [{uri: {prefix: /api}}]
                route: \(route)\(retries)\(timeout)
              - route: [{destination: {host: \(host(index))}}]
            """
    }

    static func peerAuthentication(_ slot: Int, _ random: inout Random) -> String {
        let mode = random.pick(["STRICT", "PERMISSIVE", "DISABLE", "UNSET"])
        switch slot {
        case 0:
            return "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: istio-system}\nspec: {mtls: {mode: \(mode)}}"
        case 1, 2:
            return "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: ns, namespace: \(namespaces[slot - 1])}\nspec: {mtls: {mode: \(mode)}}"
        default:
            let service = random.below(serviceCount)
            let portLevel = random.chance(50) ? ", portLevelMtls: {\(random.pick([8080, 9080, 18080])): {mode: \(random.pick(["STRICT", "DISABLE", "PERMISSIVE"]))}}" : ""
            return "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: pa\(slot), namespace: \(namespace(ofService: service))}\nspec: {selector: {matchLabels: {app: svc\(service)}}, mtls: {mode: \(mode)}\(portLevel)}"
        }
    }

    static func authorizationPolicy(_ slot: Int, _ random: inout Random) -> String {
        let service = random.below(serviceCount)
        let action = random.pick(["DENY", "ALLOW"])
        let rule = random.pick([
            "{to: [{operation: {paths: [/admin\(random.below(3))]}}]}",
            "{from: [{source: {principals: [cluster.local/ns/a/sa/sa\(random.below(3))]}}]}",
            "{from: [{source: {requestPrincipals: [\"https://idp\(random.below(2)).test/*\"]}}], when: [{key: \"request.auth.claims[groups]\", values: [g\(random.below(2))]}]}",
        ])
        return """
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: ap\(slot), namespace: \(namespace(ofService: service))}
            spec: {selector: {matchLabels: {app: svc\(service)}}, action: \(action), rules: [\(rule)]}
            """
    }

    static let keySet = #"{"keys":[{"kty":"EC","kid":"k","crv":"P-256","x":"AA","y":"AA"}]}"#

    static func requestAuthentication(_ slot: Int, _ random: inout Random) -> String {
        let service = random.below(serviceCount)
        let selector = random.chance(50) ? "selector: {matchLabels: {app: svc\(service)}}, " : ""
        return """
            apiVersion: security.istio.io/v1
            kind: RequestAuthentication
            metadata: {name: ra\(slot), namespace: \(namespace(ofService: service))}
            spec: {\(selector)jwtRules: [{issuer: "https://idp\(slot).test", jwksUri: "https://idp\(random.below(2)).test/keys"}]}
            """
    }

    static func telemetry(_ slot: Int, _ random: inout Random) -> String {
        let ns = slot == 0 ? "istio-system" : namespaces[(slot - 1) % namespaces.count]
        let mode = random.pick(["CLIENT", "SERVER", "CLIENT_AND_SERVER"])
        return """
            apiVersion: telemetry.istio.io/v1
            kind: Telemetry
            metadata: {name: tel\(slot), namespace: \(ns)}
            spec:
              metrics: [{providers: [{name: prometheus}], overrides: [{match: {mode: \(mode)}, disabled: \(random.chance(50))}]}]
            """
    }

    static func sidecar(_ slot: Int, _ random: inout Random) -> String {
        let ns = namespaces[slot % namespaces.count]
        let hosts = random.chance(50) ? "[\"./*\"]" : "[\"./*\", \"\(random.pick(namespaces))/*\"]"
        return """
            apiVersion: networking.istio.io/v1
            kind: Sidecar
            metadata: {name: default, namespace: \(ns)}
            spec:
              egress: [{hosts: \(hosts)}]
            """
    }

    static func gateway(_ slot: Int, _ random: inout Random) -> String {
        """
        apiVersion: networking.istio.io/v1
        kind: Gateway
        metadata: {name: gw\(slot), namespace: a}
        spec:
          selector: {app: gw}
          servers: [{port: {number: \(random.pick([80, 8081])), name: http, protocol: HTTP}, hosts: ["*"]}]
        """
    }

    typealias Maker = @Sendable (Int, inout Random) -> String
    /// Kind, slots, generator.
    static let kinds: [(String, Int, Maker)] = [
        ("ServiceEntry", serviceCount, serviceEntry), ("WorkloadEntry", workloadCount, workloadEntry),
        ("DestinationRule", serviceCount, destinationRule), ("VirtualService", serviceCount, virtualService),
        ("PeerAuthentication", 5, peerAuthentication), ("AuthorizationPolicy", 3, authorizationPolicy),
        ("Telemetry", 3, telemetry), ("Sidecar", 2, sidecar), ("Gateway", 1, gateway),
        ("RequestAuthentication", 2, requestAuthentication), ("WorkloadGroup", namespaces.count, workloadGroup),
    ]

    @Test("500 random changes of all eleven kinds (and rollout staging, key sets fetched or not, probe reports): every workload's memoized configuration equals its full translation")
    func equivalence() async throws {
        var random = Random(state: 0x6D65_7368_64)
        var documents: [String: String] = [:]
        for index in 0..<Self.serviceCount { documents["ServiceEntry/\(index)"] = Self.serviceEntry(index, &random) }
        for index in 0..<Self.workloadCount { documents["WorkloadEntry/\(index)"] = Self.workloadEntry(index, &random) }
        let memo = TranslationMemo()
        var changedKinds: Set<String> = []
        var compared = 0
        for revision in 1...500 {
            // Twenty seconds of translation: let the other tests' tasks run in between (the
            // cooperative pool has as many threads as cores).
            await Task.yield()
            let (kind, slots, make) = Self.kinds[random.below(Self.kinds.count)]
            let slot = random.below(slots)
            let key = "\(kind)/\(slot)"
            // Mostly change or add; sometimes remove (never every service: keep the mesh busy).
            if documents[key] != nil, random.chance(20) { documents[key] = nil } else { documents[key] = make(slot, &random) }
            changedKinds.insert(kind)
            var resources: [MeshResource] = []
            for name in documents.keys.sorted() {
                resources += try ResourceDocuments.decode(documents[name]!, source: name).map(\.resource)
            }
            // Key sets arrive (or not yet) independently of resources.
            let jwks = random.chance(50) ? ["https://idp\(random.below(2)).test/keys": Self.keySet] : [:]
            // Probe reports come and go independently of resources too.
            var health: [ServiceRegistry.WorkloadID: WorkloadHealth] = [:]
            for index in 0..<Self.workloadCount where random.chance(30) {
                health[.init(namespace: Self.namespaces[index % Self.namespaces.count], name: "w\(index)")] = WorkloadHealth(healthy: random.chance(50), message: "refused")
            }
            let snapshot = MeshSnapshot(revision: UInt64(revision), resources: resources, jwks: jwks, health: health)
            // A revision is served as loaded, then possibly at a rollout step: two views with the
            // same revision and different content, which the memo must tell apart.
            var views = [snapshot]
            if random.chance(15) {
                // Serve some workload ports otherwise than configured, as a rollout step does.
                var entries: [MTLSStaging.Key: MTLSStaging.Entry] = [:]
                for workload in snapshot.registry.workloads.keys.sorted().prefix(3) {
                    entries[.init(workload: workload, port: random.pick([8080, 9080, 18080]))] = .init(accept: .permissive, clientsUseTLS: random.chance(50))
                }
                views.append(snapshot.staged(MTLSStaging(entries), step: UInt64(revision)))
            }
            for snapshot in views {
            for id in snapshot.registry.workloads.keys.sorted() {
                // Half the proxies bind upstream connections in their bootstrap.
                let bind = random.chance(50) ? UpstreamBind(bootstrapAddress: snapshot.registry.workload(id)?.address) : UpstreamBind()
                let full = try SidecarTranslator.translate(snapshot, workload: id, upstreamBind: bind)
                let incremental = try SidecarTranslator.translate(snapshot, workload: id, upstreamBind: bind, memo: memo)
                if incremental.resources != full.resources {
                    let types = Set(full.resources.byType.keys).union(incremental.resources.byType.keys)
                    let differing = types.flatMap { type in
                        let want = full.resources.resources(ofType: type), have = incremental.resources.resources(ofType: type)
                        return Set(want.keys).union(have.keys).filter { want[$0] != have[$0] }.map { "\(XDSTypeURL.shortName(type)) \($0)" }
                    }
                    Issue.record("revision \(revision), after a change to \(key): \(id) differs in \(differing.sorted())")
                    return
                }
                compared += 1
                if revision % 10 == 0 { expectPrintable(full.resources) }
            }
            }
        }
        #expect(changedKinds.count == Self.kinds.count)
        #expect(compared > 2_000)
        let statistics = memo.statistics
        #expect(statistics.hits > statistics.misses, "the memo answers most lookups: \(statistics)")
    }

    /// A small mesh: two services in namespace `a`, a workload each, a DestinationRule with a subset.
    static func precisionMesh(workload1Address: String = "127.0.0.11", ruleSubsets: String = "[{name: v1, labels: {version: v1}}]", service1SANs: String = "") throws -> [MeshResource] {
        var documents: [String] = []
        for index in 0..<2 {
            documents.append("""
                apiVersion: networking.istio.io/v1
                kind: ServiceEntry
                metadata: {name: svc\(index), namespace: a}
                spec:
                  hosts: [svc\(index).a.svc.cluster.local]
                  location: MESH_INTERNAL
                  resolution: STATIC
                  ports: [{number: 8080, name: http-web, protocol: HTTP}]
                  workloadSelector: {labels: {app: svc\(index)}}\(index == 1 ? service1SANs : "")
                """)
        }
        documents.append("""
            apiVersion: networking.istio.io/v1
            kind: WorkloadEntry
            metadata: {name: w0, namespace: a}
            spec: {address: 127.0.0.10, serviceAccount: sa0, labels: {app: svc0, version: v1}}
            """)
        documents.append("""
            apiVersion: networking.istio.io/v1
            kind: WorkloadEntry
            metadata: {name: w1, namespace: a}
            spec: {address: \(workload1Address), serviceAccount: sa1, labels: {app: svc1, version: v1}}
            """)
        documents.append("""
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: svc1, namespace: a}
            spec: {host: svc1.a.svc.cluster.local, subsets: \(ruleSubsets)}
            """)
        return try documents.enumerated().flatMap { try ResourceDocuments.decode($1, source: "doc\($0)").map(\.resource) }
    }

    @Test("a change rebuilds exactly the clusters and load assignments that read it", arguments: [
        // (what changes, clusters + load assignments + route configurations rebuilt for w0's sidecar)
        ("nothing (a new revision with the same content)", 0),
        ("svc1's endpoint moves: its two load assignments (all and subset v1), not its clusters", 2),
        ("svc1's DestinationRule gains a subset: svc1's 3 clusters and the new subset's load assignment", 4),
        ("svc1's subjectAltNames (its ServiceEntry, which its load assignments read too): svc1's 2 clusters and 2 load assignments", 4),
    ])
    func precision(change: String, rebuilt: Int) throws {
        let memo = TranslationMemo()
        let first = MeshSnapshot(revision: 1, resources: try Self.precisionMesh())
        let workload = ServiceRegistry.WorkloadID(namespace: "a", name: "w0")
        _ = try SidecarTranslator.translate(first, workload: workload, memo: memo)
        let before = memo.statistics
        let resources: [MeshResource] = switch change {
        case _ where change.hasPrefix("nothing"): try Self.precisionMesh()
        case _ where change.hasPrefix("svc1's endpoint"): try Self.precisionMesh(workload1Address: "127.0.0.12")
        case _ where change.hasPrefix("svc1's DestinationRule"): try Self.precisionMesh(ruleSubsets: "[{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]")
        default: try Self.precisionMesh(service1SANs: "\n  subjectAltNames: [spiffe://cluster.local/ns/a/sa/extra]")
        }
        let second = MeshSnapshot(revision: 2, resources: resources)
        let memoized = try SidecarTranslator.translate(second, workload: workload, memo: memo)
        #expect(memoized.resources == (try SidecarTranslator.translate(second, workload: workload)).resources)
        #expect(memo.statistics.misses - before.misses == rebuilt, "\(change)")
    }
}
