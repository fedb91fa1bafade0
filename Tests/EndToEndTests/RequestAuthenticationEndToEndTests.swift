@testable import ControlPlane
import Foundation
import MeshConfig
import MeshModel
import Testing
import XDSTesting

extension EndToEnd {
    /// RequestAuthentication (JWT) and CUSTOM authorization enforced by real Envoys, with tokens
    /// minted by `cryptography` and key sets and authorization servers in Python (addresses
    /// 127.34.x.y).
    @Suite("End-user authentication: JWT, request.auth in policies, CUSTOM authorization")
    struct RequestAuthenticationTests {
        static let namespace = "authn"
        static let helper = TestTools.packageRoot + "/Tests/Conformance/auth_servers.py"

        /// A Python peer started from auth_servers.py, waited for until it listens.
        static func start(_ arguments: [String], log: String) async throws -> ProcessHandle {
            let process = try ProcessHandle(executable: try TestTools.python(), arguments: ["-u", helper] + arguments, logPath: log)
            try await Eventually.wait(timeout: .seconds(20), what: "\(arguments[0]) listening (\(log))") {
                if !process.isRunning { throw HTTPProbe.Failure(description: "\(arguments[0]) exited: \(process.log)") }
                return process.log.contains("listening")
            }
            return process
        }

        /// Runs `body`, then stops `peers`, also when it throws.
        static func withPeers(_ peers: [ProcessHandle], _ body: () async throws -> Void) async throws {
            do {
                try await body()
            } catch {
                for peer in peers { _ = await peer.stop() }
                throw error
            }
            for peer in peers { _ = await peer.stop() }
        }

        static func run(_ executable: String, _ arguments: [String], log: String) async throws {
            let process = try ProcessHandle(executable: executable, arguments: arguments, logPath: log)
            #expect(await process.waitForExit(timeout: .seconds(60)))
            try #require(process.terminationStatus == 0, "\(executable) \(arguments): \(process.log)")
        }

        /// One request to the api sidecar's inbound port (plaintext: PERMISSIVE).
        static func call(_ host: Int, _ path: String, token: String? = nil, headers: [(String, String)] = []) async -> HTTPProbe.Response? {
            var all = headers
            if let token { all.append(("authorization", "Bearer \(token)")) }
            return try? await HTTPProbe.request(HostPort(host: "127.34.0.\(host)", port: 8080), authority: "api.authn.svc.cluster.local", path: path, headers: all)
        }

        static func expectStatus(_ host: Int, _ path: String, token: String?, _ expected: Int, _ what: String, headers: [(String, String)] = []) async {
            let status = await call(host, path, token: token, headers: headers)?.status ?? -1
            #expect(status == expected, "\(what): \(path) got \(status), expected \(expected)")
        }

        static func waitForConfig(_ mesh: MeshHarness, _ text: String, what: String) async throws {
            let api = try #require(mesh.envoys.first { $0.name == "api" })
            try await Eventually.wait(timeout: .seconds(10), what: what) {
                (try? await api.admin("/config_dump").body.contains(text)) ?? false
            }
            for envoy in mesh.envoys { try await envoy.waitUntilDrained() }
        }

        static let authentication = """
            apiVersion: security.istio.io/v1
            kind: RequestAuthentication
            metadata: {name: api-jwt, namespace: authn}
            spec:
              selector: {matchLabels: {app: api}}
              jwtRules:
              - issuer: https://rs.issuer.meshd.test
                audiences: [api, web]
                jwksUri: http://127.34.3.1:9100/keys
                outputClaimToHeaders: [{header: x-jwt-sub, claim: sub}]
                outputPayloadToHeader: x-jwt-payload
                forwardOriginalToken: true
              - issuer: https://ec.issuer.meshd.test
                jwksUri: https://127.34.3.2:9101/keys
            ---
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: api-access, namespace: authn}
            spec:
              selector: {matchLabels: {app: api}}
              rules:
              - to: [{operation: {notPaths: ["/secure/*", "/admin/*", "/groups/*", "/gold/*", "/web/*"]}}]
              - from: [{source: {requestPrincipals: ["*"]}}]
                to: [{operation: {paths: ["/secure/*"]}}]
              - from: [{source: {requestPrincipals: ["https://rs.issuer.meshd.test/admin-user"]}}]
                to: [{operation: {paths: ["/admin/*"]}}]
              - to: [{operation: {paths: ["/groups/*"]}}]
                when: [{key: "request.auth.claims[groups]", values: [engineering]}]
              - to: [{operation: {paths: ["/gold/*"]}}]
                when: [{key: "request.auth.claims[org][tier]", values: [gold]}]
              - to: [{operation: {paths: ["/web/*"]}}]
                when:
                - {key: request.auth.audiences, values: [web]}
                - {key: request.auth.presenter, values: [portal]}
                - {key: request.auth.principal, values: ["*/alice"]}
            ---
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: api-blocked, namespace: authn}
            spec:
              selector: {matchLabels: {app: api}}
              action: DENY
              rules:
              - when: [{key: "request.auth.claims[org][tier]", values: [blocked]}]
              - from: [{source: {requestPrincipals: ["https://rs.issuer.meshd.test/rotated"]}}]
                to: [{operation: {paths: ["/denied-rotated"]}}]
            """

        @Test("JWT: RS256 and ES256 (https key set) accepted with claims forwarded; expired, wrong issuer, bad signature, alg none, unknown kid refused (401), wrong audience 403; missing token allowed or 403 per policy; principals, nested and list claims, audiences, presenter; a new kid picked up; a key-set server down keeps the last keys")
        func jwt() async throws {
            let work = try TestTools.temporaryDirectory("authn-peers")
            defer { try? FileManager.default.removeItem(atPath: work) }
            try await Self.run(try TestTools.python(), [Self.helper, "mint", work], log: work + "/mint.log")
            try await Self.run("/usr/bin/openssl", [
                "req", "-x509", "-nodes", "-days", "2", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-subj", "/CN=jwks",
                "-addext", "subjectAltName=IP:127.34.3.2", "-keyout", work + "/jwks-key.pem", "-out", work + "/jwks-cert.pem",
            ], log: work + "/openssl.log")
            let tokens = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: work + "/tokens.json"))) as? [String: String])
            func token(_ name: String) -> String { tokens[name] ?? "missing-\(name)" }
            // The RSA key set is served from a file the test rewrites (rotation).
            let served = work + "/served-rs.json"
            try FileManager.default.copyItem(atPath: work + "/jwks-rs.json", toPath: served)
            let rsKeys = try await Self.start(["jwks", "127.34.3.1", "9100", served], log: work + "/jwks-rs.log")
            let ecKeys = try await Self.start(["jwks", "127.34.3.2", "9101", work + "/jwks-ec.json", work + "/jwks-cert.pem", work + "/jwks-key.pem"], log: work + "/jwks-ec.log")
            let files = [
                "services.yaml": serviceYAML("api", namespace: Self.namespace),
                "api.yaml": workloadYAML("api", namespace: Self.namespace, block: 34, host: 2, labels: ["app": "api"], serviceAccount: "api"),
            ]
            let rootPEM = try String(contentsOfFile: work + "/jwks-cert.pem", encoding: .utf8)
            try await Self.withPeers([rsKeys, ecKeys]) {
            try await MeshHarness("authn-jwt", files: files) { options in
                options.settings.jwksAllowHTTP = true
                options.jwksExtraRootsPEM = rootPEM
                options.jwksRefreshInterval = .seconds(1)
                options.jwksCheckInterval = .milliseconds(200)
            }.run { mesh in
                let app = try await mesh.startApp("api", host: "127.34.2.2", port: 8080)
                try await mesh.startSidecar(Self.namespace, "api")
                try mesh.writeConfig("authn.yaml", Self.authentication)
                // Both key sets fetched and inline on the sidecar.
                let rsKey = try String(contentsOfFile: work + "/jwks-rs.json", encoding: .utf8)
                let rsModulus = try #require(rsKey.components(separatedBy: "\"n\": \"").dropFirst().first?.prefix(40))
                try await Self.waitForConfig(mesh, String(rsModulus), what: "the RS key set on the api sidecar")
                try await Self.waitForConfig(mesh, "ec1", what: "the EC key set (https, --jwks-ca) on the api sidecar")
                // meshd's fetcher follows a redirect, and trusts only the roots it is given.
                let moved = try #require(JWKSLocation("https://127.34.3.2:9101/moved"))
                let followed = try await HTTPJWKSFetcher(extraRootsPEM: rootPEM).fetch(moved, timeout: .seconds(5))
                #expect(followed.contains("ec1"))
                await #expect(throws: (any Error).self, "an unknown root is refused") { try await HTTPJWKSFetcher(extraRootsPEM: nil).fetch(moved, timeout: .seconds(5)) }

                app.resetRequests()
                await Self.expectStatus(2, "/secure/a", token: token("valid"), 200, "valid RS256")
                let forwarded = try #require(app.requests.last)
                #expect(forwarded.headers["x-jwt-sub"] == "alice", "claim to header: \(forwarded.headers)")
                #expect(forwarded.headers["authorization"] == "Bearer \(token("valid"))", "forwardOriginalToken")
                #expect(forwarded.headers["x-jwt-payload"].map { !$0.isEmpty } == true, "outputPayloadToHeader")
                // Without a token, headers the check would write cannot be forged by the caller.
                app.resetRequests()
                await Self.expectStatus(2, "/open", token: nil, 200, "no token, forged claim headers", headers: [("x-jwt-sub", "mallory"), ("x-jwt-payload", "e30")])
                #expect(app.requests.last.map { $0.headers["x-jwt-sub"] == nil && $0.headers["x-jwt-payload"] == nil } == true, "\(app.requests.last?.headers ?? [:])")
                await Self.expectStatus(2, "/secure/a", token: token("ec"), 200, "valid ES256 from the https key set")
                app.resetRequests()
                await Self.expectStatus(2, "/secure/a", token: token("ec"), 200, "ES256 again")
                #expect(app.requests.last?.headers["authorization"] == nil, "the EC rule does not forward the token")
                for name in ["expired", "wrong-issuer", "bad-signature", "alg-none", "unknown-kid", "rotated"] {
                    await Self.expectStatus(2, "/open", token: token(name), 401, name)
                }
                // Envoy (and so Istio) answers a token for another audience with 403.
                await Self.expectStatus(2, "/open", token: token("wrong-audience"), 403, "wrong audience")
                await Self.expectStatus(2, "/open", token: nil, 200, "no token where none is required")
                await Self.expectStatus(2, "/secure/a", token: nil, 403, "no token where a principal is required")
                await Self.expectStatus(2, "/admin/a", token: token("admin"), 200, "the admin principal")
                await Self.expectStatus(2, "/admin/a", token: token("valid"), 403, "another principal")
                await Self.expectStatus(2, "/groups/a", token: token("engineering"), 200, "groups (a list) holds engineering")
                await Self.expectStatus(2, "/groups/a", token: token("sales"), 403, "groups without engineering")
                await Self.expectStatus(2, "/gold/a", token: token("gold"), 200, "nested claim org.tier gold")
                await Self.expectStatus(2, "/gold/a", token: token("valid"), 403, "no org claim")
                await Self.expectStatus(2, "/open", token: token("blocked"), 403, "DENY on nested claim org.tier blocked")
                await Self.expectStatus(2, "/web/a", token: token("audiences"), 200, "audiences list holds web, presenter portal, principal */alice")
                await Self.expectStatus(2, "/web/a", token: token("valid"), 403, "audience api only, no presenter")

                // A new key (kid rs2) is picked up without a restart.
                try FileManager.default.removeItem(atPath: served)
                try FileManager.default.copyItem(atPath: work + "/jwks-rs-rotated.json", toPath: served)
                try await Eventually.wait(timeout: .seconds(15), what: "the rotated key set accepted") {
                    await Self.call(2, "/secure/a", token: token("rotated"))?.status == 200
                }
                await Self.expectStatus(2, "/denied-rotated", token: token("rotated"), 403, "DENY by request principal")

                // The key-set server goes away: the last keys stay in use, the failure is reported.
                _ = await rsKeys.stop()
                try await Eventually.wait(timeout: .seconds(15), what: "a failed fetch counted") {
                    mesh.controlPlane.metricsText().contains("meshd_jwks_unavailable 1")
                }
                try await Task.sleep(for: .seconds(2))
                await Self.expectStatus(2, "/secure/a", token: token("valid"), 200, "last keys still used")
                await Self.expectStatus(2, "/secure/a", token: token("rotated"), 200, "last keys (rotated) still used")
                let analysis = try await mesh.admin("/v1/analyze")
                #expect(analysis.body.contains("MD0001") && analysis.body.contains("127.34.3.1:9100") && analysis.body.contains("still used"), "analyze: \(analysis.body)")
                let health = try await mesh.envoyHealthProblems()
                #expect(health.isEmpty, "\(health)")
            }
            }
        }

        static let providers = """
            extensionProviders:
            - name: ext-http
              envoyExtAuthzHttp:
                service: ext-authz-http.authn.svc.cluster.local
                port: 8000
                includeRequestHeadersInCheck: [x-ext-authz]
                headersToUpstreamOnAllow: [x-ext-authz-check-result, x-ext-authz-received]
                headersToDownstreamOnDeny: [x-ext-authz-check-result]
            - name: ext-grpc
              envoyExtAuthzGrpc:
                service: authn/ext-authz-grpc.authn.svc.cluster.local
                port: 9000
                timeout: 2s
            - name: ext-grpc-open
              envoyExtAuthzGrpc:
                service: ext-authz-grpc.authn.svc.cluster.local
                port: 9000
                failOpen: true
            """

        static func authorizationServers() -> String {
            ["http": (3, 8000, "HTTP"), "grpc": (4, 9000, "GRPC")].sorted { $0.key < $1.key }.map { name, value in
                """
                apiVersion: networking.istio.io/v1
                kind: ServiceEntry
                metadata: {name: ext-authz-\(name), namespace: authn}
                spec:
                  hosts: [ext-authz-\(name).authn.svc.cluster.local]
                  location: MESH_EXTERNAL
                  resolution: STATIC
                  ports: [{number: \(value.1), name: \(name), protocol: \(value.2)}]
                  endpoints: [{address: 127.34.3.\(value.0)}]
                """
            }.joined(separator: "\n---\n")
        }

        static func customPolicy(provider: String, dryRun: Bool = false) -> String {
            """
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata:
              name: ext-authz
              namespace: authn
              annotations: {istio.io/dry-run: "\(dryRun)"}
            spec:
              selector: {matchLabels: {app: api}}
              action: CUSTOM
              provider: {name: \(provider)}
              rules: [{to: [{operation: {paths: ["/custom/*"]}}]}]
            ---
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: no-denied, namespace: authn}
            spec:
              selector: {matchLabels: {app: api}}
              action: DENY
              rules: [{to: [{operation: {paths: ["/custom/denied"]}}]}]
            """
        }

        @Test("CUSTOM: an HTTP and a gRPC ext_authz server decide for the paths the policy names, with the headers configured, before DENY; others never asked; server down fails closed, or open when configured; dry-run only records; an unknown provider denies everything")
        func custom() async throws {
            let work = try TestTools.temporaryDirectory("authn-ext-authz")
            defer { try? FileManager.default.removeItem(atPath: work) }
            let httpServer = try await Self.start(["ext-authz-http", "127.34.3.3", "8000"], log: work + "/ext-authz-http.log")
            let grpcServer = try await Self.start(["ext-authz-grpc", "127.34.3.4", "9000"], log: work + "/ext-authz-grpc.log")
            let files = [
                "services.yaml": serviceYAML("api", namespace: Self.namespace) + "---\n" + Self.authorizationServers(),
                "api.yaml": workloadYAML("api", namespace: Self.namespace, block: 34, host: 12, labels: ["app": "api"], serviceAccount: "api"),
                "mesh.yaml": Self.providers,
            ]
            try await Self.withPeers([httpServer, grpcServer]) {
            try await MeshHarness("authn-custom", files: files).run { mesh in
                let app = try await mesh.startApp("api", host: "127.34.2.12", port: 8080)
                try await mesh.startSidecar(Self.namespace, "api")
                let allow = [("x-ext-authz", "allow"), ("x-other", "1")]

                try mesh.writeConfig("custom.yaml", Self.customPolicy(provider: "ext-http"))
                try await Self.waitForConfig(mesh, "http://ext-authz-http.authn.svc.cluster.local", what: "the HTTP ext_authz filter")
                app.resetRequests()
                await Self.expectStatus(12, "/custom/a", token: nil, 200, "HTTP server allows", headers: allow)
                let allowed = try #require(app.requests.last)
                #expect(allowed.headers["x-ext-authz-check-result"] == "allowed", "\(allowed.headers)")
                let received = allowed.headers["x-ext-authz-received"] ?? ""
                #expect(received.contains("x-ext-authz") && !received.contains("x-other"), "only the configured request headers are sent: \(received)")
                let denied = await Self.call(12, "/custom/a")
                #expect(denied?.status == 403 && denied?.headers["x-ext-authz-check-result"] == "denied", "HTTP server denies: \(String(describing: denied))")
                await Self.expectStatus(12, "/custom/denied", token: nil, 403, "DENY after an allowing CUSTOM", headers: allow)
                app.resetRequests()
                await Self.expectStatus(12, "/open", token: nil, 200, "a path no CUSTOM rule names")
                #expect(app.requests.last?.headers["x-ext-authz-check-result"] == nil, "the server was not asked")
                #expect(!httpServer.log.contains("/open"), "the server was not asked: \(httpServer.log)")

                try mesh.writeConfig("custom.yaml", Self.customPolicy(provider: "ext-grpc"))
                try await Self.waitForConfig(mesh, "\"authority\": \"ext-authz-grpc.authn.svc.cluster.local\"", what: "the gRPC ext_authz filter")
                app.resetRequests()
                await Self.expectStatus(12, "/custom/a", token: nil, 200, "gRPC server allows", headers: allow)
                #expect(app.requests.last?.headers["x-ext-authz-check-result"] == "allowed", "\(app.requests.last?.headers ?? [:])")
                await Self.expectStatus(12, "/custom/a", token: nil, 403, "gRPC server denies")
                #expect(grpcServer.log.contains("check /custom/a"))

                // The server goes away: closed by default, open when the provider says so.
                _ = await grpcServer.stop()
                await Self.expectStatus(12, "/custom/a", token: nil, 403, "server down, failOpen false", headers: allow)
                try mesh.writeConfig("custom.yaml", Self.customPolicy(provider: "ext-grpc-open"))
                try await Eventually.wait(timeout: .seconds(15), what: "failOpen served") {
                    await Self.call(12, "/custom/a")?.status == 200
                }
                // Dry-run: recorded, never enforced (the server would be down anyway).
                try mesh.writeConfig("custom.yaml", Self.customPolicy(provider: "ext-grpc", dryRun: true))
                try await Self.waitForConfig(mesh, "istio_dry_run_custom_", what: "the dry-run CUSTOM policy")
                await Self.expectStatus(12, "/custom/a", token: nil, 200, "dry-run CUSTOM is not enforced")
                // A provider mesh.yaml does not have: every request denied, and analyze says why.
                try mesh.writeConfig("custom.yaml", Self.customPolicy(provider: "nowhere"))
                try await Self.waitForConfig(mesh, "default-deny-all-due-to-bad-CUSTOM-action", what: "the deny-all of an unknown provider")
                await Self.expectStatus(12, "/open", token: nil, 403, "unknown provider fails closed")
                let analysis = try await mesh.admin("/v1/analyze")
                #expect(analysis.body.contains("no envoyExtAuthzHttp or envoyExtAuthzGrpc provider nowhere"), "analyze: \(analysis.body)")
                let health = try await mesh.envoyHealthProblems()
                #expect(health.isEmpty, "\(health)")
            }
            }
        }
    }
}
