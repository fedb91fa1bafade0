import MeshModel
import MeshTranslation
import Testing

@Suite("meshctl analyze")
struct MeshAnalysisTests {
    static let service = """
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata: {name: web, namespace: shop}
        spec:
          hosts: [web]
          location: MESH_INTERNAL
          resolution: STATIC
          ports: [{number: 8080, name: http}, {number: 5432, name: tcp-db}]
          workloadSelector: {labels: {app: web}}
        ---
        apiVersion: networking.istio.io/v1
        kind: WorkloadEntry
        metadata: {name: web-1, namespace: shop}
        spec: {address: 127.0.0.2, labels: {app: web, version: v1}}
        """

    @Test("IST0130: rules after a rule without matches, a second rule without matches, and a rule whose every match came earlier (names aside)")
    func unreachableRules() throws {
        let messages = MeshAnalysis.analyze(try snapshot(Self.service + """

            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: web, namespace: shop}
            spec:
              hosts: [web]
              http:
              - {name: api, match: [{name: first, uri: {prefix: /api}}], route: [{destination: {host: web}}]}
              - {name: again, match: [{name: second, uri: {prefix: /api}}], route: [{destination: {host: web}}]}
              - {name: partly, match: [{uri: {prefix: /api}}, {uri: {prefix: /other}}], route: [{destination: {host: web}}]}
              - {name: all, route: [{destination: {host: web}}]}
              - {name: after, match: [{uri: {prefix: /late}}], route: [{destination: {host: web}}]}
              - {name: second-catch-all, route: [{destination: {host: web}}]}
              tcp:
              - {match: [{port: 5432}], route: [{destination: {host: web}}]}
              - {match: [{port: 5432}], route: [{destination: {host: web}}]}
            """))
        let found = messages.filter { $0.code == "IST0130" }
        #expect(found.allSatisfy { $0.level == "Warning" && $0.resource == "VirtualService shop/web" })
        #expect(found.map(\.message) == [
            "spec.http[1]: rule \"again\" not used (all matches used by prior rules)",
            "spec.http[4]: rule \"after\" not used (a rule without matches comes before it)",
            "spec.http[5]: rule \"second-catch-all\" not used (only the last rule can have no matches)",
            "spec.tcp[1]: rule #1 not used (all matches used by prior rules)",
        ])
    }

    @Test("a clean VirtualService has no IST0130, and a subset that selects no workload is an error (IST0173), as in Istio")
    func cleanAndSubsets() throws {
        let messages = MeshAnalysis.analyze(try snapshot(Self.service + """

            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: web, namespace: shop}
            spec:
              hosts: [web]
              http:
              - {match: [{uri: {prefix: /api}}], route: [{destination: {host: web, subset: v1}}]}
              - {match: [{uri: {prefix: /api}, headers: {x-canary: {exact: "1"}}}], route: [{destination: {host: web, subset: v2}}]}
              - {route: [{destination: {host: web, subset: v1}}]}
            ---
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: web, namespace: shop}
            spec: {host: web, subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]}
            """))
        #expect(!messages.contains { $0.code == "IST0130" }, "\(messages)")
        let empty = messages.filter { $0.code == "IST0173" }
        #expect(empty.count == 1 && empty.first?.level == "Error" && empty.first?.message.hasPrefix("spec.subsets[1] v2") == true, "\(messages)")
    }

    @Test("gateways: a VirtualService naming a Gateway that does not exist and a Gateway whose selector matches no workload (IST0101); describe names a gateway's Gateways and VirtualServices")
    func gateways() throws {
        let mesh = try snapshot(Self.service + """

            ---
            apiVersion: networking.istio.io/v1
            kind: WorkloadEntry
            metadata: {name: ingress, namespace: istio-system}
            spec: {address: 127.0.0.10, labels: {istio: ingressgateway}}
            ---
            apiVersion: networking.istio.io/v1
            kind: Gateway
            metadata: {name: gw, namespace: shop}
            spec: {selector: {istio: ingressgateway}, servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]}
            ---
            apiVersion: networking.istio.io/v1
            kind: Gateway
            metadata: {name: lonely, namespace: shop}
            spec: {selector: {istio: egressgateway}, servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]}
            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: web, namespace: shop}
            spec:
              hosts: [web.example.com]
              gateways: [gw, other/missing, ghost]
              http: [{match: [{gateways: [ghost]}], route: [{destination: {host: web}}]}]
            """)
        let found = MeshAnalysis.analyze(mesh).filter { $0.code == "IST0101" }.map { "\($0.resource): \($0.message)" }
        #expect(found.sorted() == [
            "Gateway shop/lonely: spec.selector: selector istio=egressgateway matches no workload",
            "VirtualService shop/web: spec.gateways[1]: no Gateway other/missing",
            "VirtualService shop/web: spec.gateways[2]: no Gateway shop/ghost",
            "VirtualService shop/web: spec.http[0].match[0].gateways[0]: no Gateway shop/ghost",
        ], "\(found)")
        let gateway = try #require(mesh.registry.workload(.init(namespace: "istio-system", name: "ingress")))
        let description = MeshAnalysis.describe(gateway, in: mesh)
        #expect(description.gateways == ["shop/gw"] && description.virtualServices == ["shop/web"], "\(description)")
    }
}
