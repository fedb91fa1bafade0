import ControlPlane
import Foundation
import MeshConfig
import MeshModel
import Testing
import XDSTesting

extension EndToEnd {
    /// AuthorizationPolicy enforced by real Envoys, with identities from mTLS (addresses 127.27.x.y).
    @Suite("AuthorizationPolicy, as Istio evaluates it")
    struct Authorization {
        static let namespace = "authz"

        /// `api` (HTTP) and `db` (TCP) servers; callers governor, scheduler, intruder in the
        /// namespace and outsider in another one.
        static var files: [String: String] {
            [
                "services.yaml": serviceYAML("api", namespace: namespace) + """
                    ---
                    apiVersion: networking.istio.io/v1
                    kind: ServiceEntry
                    metadata: {name: db, namespace: \(namespace)}
                    spec:
                      hosts: [db.\(namespace).svc.cluster.local]
                      location: MESH_INTERNAL
                      resolution: STATIC
                      ports: [{number: 9000, name: tcp-db, protocol: TCP}]
                      workloadSelector: {labels: {app: db}}
                    """,
                "api.yaml": workloadYAML("api", namespace: namespace, block: 27, host: 2, labels: ["app": "api"], serviceAccount: "api"),
                "db.yaml": workloadYAML("db", namespace: namespace, block: 27, host: 3, labels: ["app": "db"], serviceAccount: "db", ports: [9000], protocol: "TCP"),
                "governor.yaml": workloadYAML("governor", namespace: namespace, block: 27, host: 4, labels: ["app": "governor"], serviceAccount: "governor"),
                "scheduler.yaml": workloadYAML("scheduler", namespace: namespace, block: 27, host: 5, labels: ["app": "scheduler"], serviceAccount: "scheduler"),
                "intruder.yaml": workloadYAML("intruder", namespace: namespace, block: 27, host: 6, labels: ["app": "intruder"], serviceAccount: "intruder"),
                "outsider.yaml": workloadYAML("outsider", namespace: "other", block: 27, host: 7, labels: ["app": "outsider"], serviceAccount: "outsider", egressHosts: ["*/*"]),
            ]
        }

        static let callers = ["governor": 4, "scheduler": 5, "intruder": 6, "outsider": 7]

        /// One request and the status it must get.
        struct Case: CustomStringConvertible {
            var caller: String
            var method = "GET"
            var path: String
            var headers: [(String, String)] = []
            var expected: Int

            var description: String { "\(caller) \(method) \(path) \(headers) -> \(expected)" }
        }

        static func call(_ item: Case) async -> Int {
            let host = callers[item.caller]!
            let response = try? await HTTPProbe.request(
                HostPort(host: "127.27.1.\(host)", port: 8080), authority: "api.authz.svc.cluster.local", path: item.path,
                method: item.method, headers: item.headers)
            return response?.status ?? -1
        }

        /// Writes the policies (plus an AUDIT marker) and waits until the api sidecar has them.
        static func apply(_ mesh: MeshHarness, group: String, _ policies: String) async throws {
            let marker = """
                apiVersion: security.istio.io/v1
                kind: AuthorizationPolicy
                metadata: {name: marker-\(group), namespace: authz}
                spec:
                  action: AUDIT
                  rules: [{to: [{operation: {paths: ["/never-\(group)"]}}]}]
                """
            try mesh.writeConfig("authz.yaml", policies.isEmpty ? marker : policies + "\n---\n" + marker)
            let api = try #require(mesh.envoys.first { $0.name == "api" })
            try await Eventually.wait(timeout: .seconds(5), what: "policies \(group) on the api sidecar") {
                (try? await api.admin("/config_dump").body.contains("policy[marker-\(group)]")) ?? false
            }
            // Connections opened before the change keep the old filters until the launcher's
            // immediate drain closes them.
            for envoy in mesh.envoys { try await envoy.waitUntilDrained() }
        }

        static func check(_ cases: [Case], group: String) async {
            for item in cases {
                let status = await call(item)
                #expect(status == item.expected, "\(group): \(item) got \(status)")
            }
        }

        static let adrPolicy = """
            apiVersion: security.istio.io/v1beta1
            kind: AuthorizationPolicy
            metadata:
              name: coordinator-authz
              namespace: authz
            spec:
              selector:
                matchLabels:
                  app: api
              rules:
              - from:
                - source:
                    principals:
                    - cluster.local/ns/authz/sa/governor
                    - cluster.local/ns/authz/sa/scheduler
                to:
                - operation:
                    methods: ["GET", "POST"]
                    paths:
                    - /tai.Governor/*
                    - /tai.Scheduler/*
            """

        @Test("the ADR's policy, DENY over ALLOW, namespaces, ipBlocks, headers, notX forms, wildcards, empty spec, AUDIT, dry-run, every source, operation and condition field, a root-namespace DENY, normalisation bypasses: 47 cases")
        func matrix() async throws {
            try await MeshHarness("authz", files: Self.files).run { mesh in
                let app = try await mesh.startApp("api", host: "127.27.2.2", port: 8080)
                try await mesh.startSidecar(Self.namespace, "api")
                // scheduler's bootstrap predates the bind in the bootstrap: meshd binds each of
                // its mesh clusters instead, and the source-address cases below hold for both.
                for caller in ["governor", "intruder"] { try await mesh.startSidecar(Self.namespace, caller) }
                let scheduler = try await mesh.startSidecar(Self.namespace, "scheduler", legacyBind: true)
                try await mesh.startSidecar("other", "outsider")
                let apiCluster = "outbound|8080||api.authz.svc.cluster.local"
                let intruder = try #require(mesh.envoys.first { $0.name == "intruder" })
                let intruderClusters = try await intruder.dynamicClusters()
                let schedulerClusters = try await scheduler.dynamicClusters()
                #expect(intruderClusters[apiCluster]?.contains("upstream_bind_config") == false, "bound by the bootstrap: \(intruderClusters[apiCluster] ?? "missing")")
                #expect(schedulerClusters[apiCluster]?.contains("127.27.0.5") == true, "bound per cluster: \(schedulerClusters[apiCluster] ?? "missing")")

                // The ADR's coordinator-authz, on the api workload.
                try await Self.apply(mesh, group: "adr", Self.adrPolicy)
                await Self.check([
                    Case(caller: "governor", path: "/tai.Governor/Status", expected: 200),
                    Case(caller: "scheduler", method: "POST", path: "/tai.Scheduler/Run", expected: 200),
                    Case(caller: "intruder", path: "/tai.Governor/Status", expected: 403),
                    Case(caller: "governor", method: "DELETE", path: "/tai.Governor/Status", expected: 403),
                    Case(caller: "governor", path: "/other", expected: 403),
                    Case(caller: "governor", path: "/tai.Governor/../admin", expected: 403),
                    Case(caller: "governor", path: "//tai.Governor//Status", expected: 200),
                ], group: "adr")
                let plaintext = try await HTTPProbe.request(HostPort(host: "127.27.0.2", port: 8080), authority: "api", path: "/tai.Governor/Status")
                #expect(plaintext.status == 403, "no identity, no access")
                let apiEnvoy = try #require(mesh.envoys.first { $0.name == "api" })
                let stats = try await apiEnvoy.stats(filter: "rbac")
                #expect(stats.contains { $0.key.hasSuffix("rbac.ns[authz]-policy[coordinator-authz].shadow_allowed") && $0.value > 0 }, "per-policy stats: \(stats.keys.sorted())")
                #expect(stats.contains { $0.key.hasSuffix("rbac.denied") && $0.value > 0 })

                // DENY overrides ALLOW; the path is normalised before either looks at it.
                try await Self.apply(mesh, group: "deny", """
                    apiVersion: security.istio.io/v1
                    kind: AuthorizationPolicy
                    metadata: {name: allow-namespace, namespace: authz}
                    spec:
                      selector: {matchLabels: {app: api}}
                      rules: [{from: [{source: {namespaces: [authz]}}]}]
                    ---
                    apiVersion: security.istio.io/v1
                    kind: AuthorizationPolicy
                    metadata: {name: deny-admin, namespace: authz}
                    spec:
                      selector: {matchLabels: {app: api}}
                      action: DENY
                      rules: [{to: [{operation: {paths: [/admin, /admin/*]}}]}]
                    """)
                await Self.check([
                    Case(caller: "governor", path: "/public", expected: 200),
                    Case(caller: "governor", path: "/admin", expected: 403),
                    Case(caller: "governor", path: "/admin/users", expected: 403),
                    Case(caller: "governor", path: "/public/../admin", expected: 403),
                    Case(caller: "governor", path: "//admin", expected: 403),
                    Case(caller: "governor", path: "/public%2F..%2Fadmin", expected: 403),
                    Case(caller: "governor", path: "/./admin/./x", expected: 403),
                    Case(caller: "outsider", path: "/public", expected: 403),
                    Case(caller: "governor", path: "/ADMIN", expected: 200),
                ], group: "deny")


                // notX forms, wildcards, header conditions, ipBlocks, destination.port.
                try await Self.apply(mesh, group: "forms", """
                    apiVersion: security.istio.io/v1
                    kind: AuthorizationPolicy
                    metadata: {name: forms, namespace: authz}
                    spec:
                      selector: {matchLabels: {app: api}}
                      rules:
                      - from: [{source: {principals: [cluster.local/ns/authz/sa/governor]}}]
                        to: [{operation: {methods: [GET], paths: ["*.html"]}}]
                      - from: [{source: {namespaces: [authz], notPrincipals: [cluster.local/ns/authz/sa/governor]}}]
                        to: [{operation: {notMethods: [DELETE], paths: ["/api/*"]}}]
                      - to: [{operation: {paths: [/headers]}}]
                        when: [{key: "request.headers[x-token]", values: ["secret*"]}]
                      - from: [{source: {ipBlocks: [127.27.0.6/32]}}]
                        to: [{operation: {paths: [/ip]}}]
                      - to: [{operation: {paths: [/exact]}}]
                        when: [{key: destination.port, values: ["8080"]}]
                    """)
                await Self.check([
                    Case(caller: "governor", path: "/index.html", expected: 200),
                    Case(caller: "governor", method: "POST", path: "/index.html", expected: 403),
                    Case(caller: "scheduler", path: "/index.html", expected: 403),
                    Case(caller: "scheduler", path: "/api/items", expected: 200),
                    Case(caller: "governor", path: "/api/items", expected: 403),
                    Case(caller: "scheduler", method: "DELETE", path: "/api/items", expected: 403),
                    Case(caller: "scheduler", path: "/headers", headers: [("x-token", "secret-1")], expected: 200),
                    Case(caller: "scheduler", path: "/headers", headers: [("x-token", "nope")], expected: 403),
                    Case(caller: "intruder", path: "/ip", expected: 200),
                    Case(caller: "scheduler", path: "/ip", expected: 403),
                    Case(caller: "scheduler", path: "/exact", expected: 200),
                ], group: "forms")

                // Every other source, operation and condition field; a mesh-wide DENY from the
                // root namespace. Callers reach the api sidecar from 127.27.0.N (governor 4,
                // scheduler 5, intruder 6, outsider 7); the api sidecar listens on 127.27.0.2.
                try await Self.apply(mesh, group: "fields", """
                    apiVersion: security.istio.io/v1
                    kind: AuthorizationPolicy
                    metadata: {name: fields, namespace: authz}
                    spec:
                      selector: {matchLabels: {app: api}}
                      rules:
                      - from: [{source: {notNamespaces: [other], notIpBlocks: [127.27.0.6/32]}}]
                        to: [{operation: {paths: ["/src/*"]}}]
                      - from: [{source: {remoteIpBlocks: [127.27.0.5/32], notRemoteIpBlocks: [127.27.0.4/32]}}]
                        to: [{operation: {paths: [/remote], ports: ["8080"], notHosts: [evil.example]}}]
                      - to: [{operation: {hosts: [API.authz.svc.cluster.local], notPorts: ["9999"], paths: [/host]}}]
                      - to: [{operation: {paths: [/when, /root-denied]}}]
                        when:
                        - {key: source.ip, values: [127.27.0.4]}
                        - {key: source.principal, values: [cluster.local/ns/authz/sa/governor]}
                        - {key: source.namespace, values: [authz]}
                      - to: [{operation: {paths: [/conn]}}]
                        when:
                        - {key: remote.ip, values: [127.27.0.5/32]}
                        - {key: destination.ip, values: [127.27.0.2]}
                        - {key: connection.sni, values: [outbound_.8080_._.api.authz.svc.cluster.local]}
                      - from: [{source: {namespaces: [other]}}]
                        to: [{operation: {notPaths: [/private, "/src/*"]}}]
                    ---
                    apiVersion: security.istio.io/v1
                    kind: AuthorizationPolicy
                    metadata: {name: mesh-deny, namespace: istio-system}
                    spec:
                      action: DENY
                      rules: [{to: [{operation: {paths: [/root-denied]}}]}]
                    """)
                await Self.check([
                    Case(caller: "governor", path: "/src/x", expected: 200),
                    Case(caller: "intruder", path: "/src/x", expected: 403),
                    Case(caller: "outsider", path: "/src/x", expected: 403),
                    Case(caller: "scheduler", path: "/remote", expected: 200),
                    Case(caller: "governor", path: "/remote", expected: 403),
                    Case(caller: "scheduler", path: "/host", expected: 200),
                    Case(caller: "governor", path: "/when", expected: 200),
                    Case(caller: "scheduler", path: "/when", expected: 403),
                    Case(caller: "governor", path: "/root-denied", expected: 403),
                    Case(caller: "scheduler", path: "/conn", expected: 200),
                    Case(caller: "governor", path: "/conn", expected: 403),
                    Case(caller: "outsider", path: "/public", expected: 200),
                    Case(caller: "outsider", path: "/private", expected: 403),
                ], group: "fields")

                // spec: {} with ALLOW allows nothing.
                try await Self.apply(mesh, group: "empty", """
                    apiVersion: security.istio.io/v1
                    kind: AuthorizationPolicy
                    metadata: {name: allow-nothing, namespace: authz}
                    spec: {}
                    """)
                await Self.check([Case(caller: "governor", path: "/", expected: 403)], group: "empty")

                // AUDIT never blocks; dry-run policies never block and are logged.
                try await Self.apply(mesh, group: "audit", """
                    apiVersion: security.istio.io/v1
                    kind: AuthorizationPolicy
                    metadata: {name: audit-all, namespace: authz}
                    spec:
                      action: AUDIT
                      rules: [{to: [{operation: {paths: [/audited]}}]}]
                    ---
                    apiVersion: security.istio.io/v1
                    kind: AuthorizationPolicy
                    metadata:
                      name: deny-everything-dry-run
                      namespace: authz
                      annotations: {"istio.io/dry-run": "true"}
                    spec:
                      action: DENY
                      rules: [{}]
                    ---
                    apiVersion: security.istio.io/v1
                    kind: AuthorizationPolicy
                    metadata:
                      name: allow-nothing-dry-run
                      namespace: authz
                      annotations: {"istio.io/dry-run": "true"}
                    spec: {}
                    """)
                await Self.check([
                    Case(caller: "governor", path: "/audited", expected: 200),
                    Case(caller: "scheduler", path: "/anything", expected: 200),
                ], group: "audit")
                try await Eventually.wait(timeout: .seconds(5), what: "the dry-run decision in the api sidecar's log") {
                    apiEnvoy.handle.log.contains("meshd-authz-dry-run allow_result=denied") && apiEnvoy.handle.log.contains("deny_result=denied deny_policy=ns[authz]-policy[deny-everything-dry-run]-rule[0]")
                }

                // DENY with notValues on a header.
                try await Self.apply(mesh, group: "notvalues", """
                    apiVersion: security.istio.io/v1
                    kind: AuthorizationPolicy
                    metadata: {name: deny-non-prod, namespace: authz}
                    spec:
                      action: DENY
                      rules: [{when: [{key: "request.headers[x-env]", notValues: [prod]}]}]
                    """)
                await Self.check([
                    Case(caller: "governor", path: "/", headers: [("x-env", "dev")], expected: 403),
                    Case(caller: "governor", path: "/", headers: [("x-env", "prod")], expected: 200),
                    Case(caller: "governor", path: "/", expected: 403),
                ], group: "notvalues")
                #expect(app.requests.allSatisfy { !$0.path.contains("admin") }, "no admin request ever reached the app")
            }
        }

        @Test("TCP: a DENY rule closes the connection; an ALLOW for one principal closes it for everyone else")
        func tcp() async throws {
            try await MeshHarness("authz-tcp", files: Self.files).run { mesh in
                let db = try await TestTCPApp.start(name: "db", host: "127.27.2.3", port: 9000)
                defer { Task { await db.stop() } }
                try await mesh.startSidecar(Self.namespace, "db")
                for caller in ["governor", "scheduler", "intruder"] { try await mesh.startSidecar(Self.namespace, caller) }
                func read(_ caller: String) async -> String {
                    (try? await TestTCPApp.read(HostPort(host: "127.27.1.\(Self.callers[caller]!)", port: 9000), timeout: .seconds(2))) ?? "closed"
                }
                #expect(await read("governor") == "db\n")

                try mesh.writeConfig("authz.yaml", """
                    apiVersion: security.istio.io/v1
                    kind: AuthorizationPolicy
                    metadata: {name: deny-governor, namespace: authz}
                    spec:
                      selector: {matchLabels: {app: db}}
                      action: DENY
                      rules: [{from: [{source: {principals: [cluster.local/ns/authz/sa/governor]}}]}]
                    """)
                try await Eventually.wait(timeout: .seconds(5), what: "the DENY to close governor's connections") { await read("governor") != "db\n" }
                #expect(await read("scheduler") == "db\n")

                try mesh.writeConfig("authz.yaml", """
                    apiVersion: security.istio.io/v1
                    kind: AuthorizationPolicy
                    metadata: {name: allow-scheduler, namespace: authz}
                    spec:
                      selector: {matchLabels: {app: db}}
                      rules:
                      - from: [{source: {principals: [cluster.local/ns/authz/sa/scheduler]}}]
                      - from: [{source: {principals: [cluster.local/ns/authz/sa/intruder]}}]
                        to: [{operation: {methods: [GET]}}]
                    """)
                // Both policies leave governor closed and scheduler open; wait until the db
                // sidecar serves the ALLOW policy's listener before judging intruder.
                let dbSidecar = try #require(mesh.envoys.first { $0.name == "db" })
                try await Eventually.wait(timeout: .seconds(5), what: "the ALLOW policy on the db sidecar") {
                    let dump = (try? await dbSidecar.admin("/config_dump?resource=dynamic_listeners").body) ?? ""
                    return dump.contains("policy[allow-scheduler]") && !dump.contains("policy[deny-governor]")
                }
                #expect(await read("scheduler") == "db\n")
                #expect(await read("intruder") != "db\n", "a rule with HTTP-only fields matches nothing on a TCP port")
                #expect(await read("governor") != "db\n")
            }
        }

        @Test("unsupported fields are refused at apply time with their path, and what is served does not change")
        func unsupported() async throws {
            try await MeshHarness("authz-refuse", files: Self.files).run { mesh in
                try await mesh.startApp("api", host: "127.27.2.2", port: 8080)
                try await mesh.startSidecar(Self.namespace, "api")
                try await mesh.startSidecar(Self.namespace, "intruder")
                try await Self.apply(mesh, group: "adr", Self.adrPolicy)
                #expect(await Self.call(Case(caller: "intruder", path: "/tai.Governor/x", expected: 403)) == 403)
                let revision = mesh.controlPlane.store.revision
                for (field, policy) in [
                    // CUSTOM is decided before the JWT check: a token's principal is not known yet.
                    ("spec.rules[0].from[0].source.requestPrincipals", "action: CUSTOM\n  provider: {name: ext}\n  rules: [{from: [{source: {requestPrincipals: [\"*\"]}}]}]"),
                    ("spec.provider.name", "action: CUSTOM\n  rules: [{}]"),
                    ("spec.rules[0].when[0].key", "rules: [{when: [{key: \"request.auth.claims[iss\", values: [x]}]}]"),
                    ("spec.targetRefs", "targetRefs: [{kind: Gateway, name: gw}]"),
                ] {
                    let before = mesh.controlPlane.store.rejectionCount
                    try mesh.writeConfig("authz.yaml", Self.adrPolicy + """

                        ---
                        apiVersion: security.istio.io/v1
                        kind: AuthorizationPolicy
                        metadata: {name: unsupported, namespace: authz}
                        spec:
                          \(policy)
                        """)
                    try await Eventually.wait(timeout: .seconds(5), what: "the refusal of \(field)") { mesh.controlPlane.store.rejectionCount > before }
                    #expect(mesh.controlPlane.store.lastRejection?.path == field, "\(String(describing: mesh.controlPlane.store.lastRejection))")
                    #expect(mesh.controlPlane.store.revision == revision)
                    #expect(await Self.call(Case(caller: "intruder", path: "/tai.Governor/x", expected: 403)) == 403, "the ADR policy still holds")
                }
            }
        }
    }
}
