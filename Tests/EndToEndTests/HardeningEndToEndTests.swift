import CertificateAuthority
import ControlPlane
import Foundation
import Logging
import MeshModel
import Testing
import XDSTesting

extension EndToEnd {
    /// What an operator meets first: sidecars run by the launcher, policy changes that reach
    /// connections already open, and caller headers that cannot forge a decision (addresses
    /// 127.40.x.y and 127.41.x.y).
    @Suite("Hardening: the sidecar launcher, open connections, forged headers")
    struct Hardening {
        static let namespace = "hard"
        static let clientEgress = HostPort(host: "127.40.1.2", port: 8080)
        static let serverInbound = HostPort(host: "127.40.0.3", port: 8080)

        static var files: [String: String] {
            [
                "service.yaml": serviceYAML("server", namespace: namespace),
                "client.yaml": workloadYAML("client", namespace: namespace, block: 40, host: 2, labels: ["app": "client"], serviceAccount: "client"),
                "server.yaml": workloadYAML("server", namespace: namespace, block: 40, host: 3, labels: ["app": "server"], serviceAccount: "server"),
                "peer.yaml": peerAuthentication("PERMISSIVE"),
            ]
        }

        static func peerAuthentication(_ mode: String) -> String {
            """
            apiVersion: security.istio.io/v1
            kind: PeerAuthentication
            metadata: {name: default, namespace: \(namespace)}
            spec: {mtls: {mode: \(mode)}}
            """
        }

        static let denyAdmin = """
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: deny-admin, namespace: hard}
            spec:
              selector: {matchLabels: {app: server}}
              action: DENY
              rules: [{to: [{operation: {paths: ["/admin"]}}]}]
            """

        @Test("a DENY reaches keep-alive connections (through the client sidecar, and direct mTLS) within 5 s; STRICT closes an open plaintext keep-alive connection within 5 s")
        func openConnections() async throws {
            try await MeshHarness("hardening", files: Self.files).run { mesh in
                try await mesh.startApp("server", host: "127.40.2.3", port: 8080)
                try await mesh.startSidecar(Self.namespace, "client")
                let server = try await mesh.startSidecar(Self.namespace, "server")
                let arguments = try #require(server.launchedCommandLine)
                #expect(arguments.contains("--drain-strategy immediate") && arguments.contains("--drain-time-s 3"), "\(arguments)")

                // A keep-alive connection from the app to its sidecar (pooled upstream to the
                // server's sidecar), and a plaintext keep-alive connection straight to the server's
                // sidecar, both opened under the old configuration.
                let throughSidecar = try await KeepAliveConnection.connect(Self.clientEgress)
                #expect(await throughSidecar.get("/admin", authority: "server")?.status == 200)
                let plaintext = try await KeepAliveConnection.connect(Self.serverInbound)
                #expect(await plaintext.get("/", authority: "server")?.status == 200)
                // And a keep-alive connection straight to the server's sidecar over mTLS, as a mesh peer.
                let peer = try mesh.controlPlane.certificates.issueWithNewKey(
                    identity: SpiffeID(trustDomain: "cluster.local", namespace: Self.namespace, serviceAccount: "peer"), caller: "test")
                let meshTLS = HTTPProbe.TLS(
                    chainPEM: try peer.certificate.chainPEM().dropLast().joined(separator: "\n"), keyPEM: peer.keyPEM,
                    trustPEM: try mesh.controlPlane.certificates.trustBundlePEM())
                let mutual = try await KeepAliveConnection.connect(Self.serverInbound, tls: meshTLS)
                #expect(await mutual.get("/admin", authority: "server")?.status == 200)

                try mesh.writeConfig("policy.yaml", Self.denyAdmin)
                let applied = ContinuousClock.now
                var connection = throughSidecar
                var denied: Duration?
                for _ in 0..<100 where denied == nil {
                    if connection.isClosed { connection = try await KeepAliveConnection.connect(Self.clientEgress) }
                    if await connection.get("/admin", authority: "server")?.status == 403 { denied = ContinuousClock.now - applied }
                    try await Task.sleep(for: .milliseconds(100))
                }
                let deniedAfter = try #require(denied, "/admin was never denied on a kept-alive path")
                #expect(deniedAfter < .seconds(5), "the DENY reached the open connection after \(deniedAfter)")
                var tlsConnection = mutual
                var deniedOverTLS: Duration?
                for _ in 0..<100 where deniedOverTLS == nil {
                    if tlsConnection.isClosed { tlsConnection = try await KeepAliveConnection.connect(Self.serverInbound, tls: meshTLS) }
                    if await tlsConnection.get("/admin", authority: "server")?.status == 403 { deniedOverTLS = ContinuousClock.now - applied }
                    try await Task.sleep(for: .milliseconds(100))
                }
                tlsConnection.close()
                let deniedOverTLSAfter = try #require(deniedOverTLS, "/admin was never denied on the kept-alive mTLS connection")
                #expect(deniedOverTLSAfter < .seconds(5), "the DENY reached the open mTLS connection after \(deniedOverTLSAfter)")

                try mesh.writeConfig("peer.yaml", Self.peerAuthentication("STRICT"))
                let strict = ContinuousClock.now
                #expect(await plaintext.waitForClose(timeout: .seconds(8)), "the plaintext connection stayed open under STRICT")
                let closedAfter = ContinuousClock.now - strict
                #expect(closedAfter < .seconds(5), "the plaintext connection was closed \(closedAfter) after STRICT")
                let fresh = try? await KeepAliveConnection.connect(Self.serverInbound)
                #expect(await fresh?.get("/", authority: "server") == nil, "a new plaintext connection is refused")
            }
        }

        @Test("the launcher restarts an Envoy that dies, and on SIGTERM drains, stops Envoy and exits 0")
        func launcher() async throws {
            try await MeshHarness("launcher", files: Self.files).run { mesh in
                try await mesh.startApp("server", host: "127.40.2.3", port: 8080)
                let client = try await mesh.startSidecar(Self.namespace, "client")
                try await mesh.startSidecar(Self.namespace, "server")
                #expect(try await HTTPProbe.request(Self.clientEgress, authority: "server").status == 200)

                let first = try #require(client.envoyPIDs.last)
                kill(first, SIGKILL)
                try await Eventually.wait(timeout: .seconds(10), what: "the launcher to start a new Envoy") { client.envoyPIDs.count == 2 }
                try await client.waitUntilReady()
                #expect(client.handle.log.contains("exited with status \(128 + SIGKILL)"), "\(client.handle.log.suffix(1000))")
                try await Eventually.wait(timeout: .seconds(10), what: "traffic through the restarted sidecar") {
                    (try? await HTTPProbe.request(Self.clientEgress, authority: "server", timeout: .seconds(1)))?.status == 200
                }

                let second = try #require(client.envoyPIDs.last)
                client.handle.signal(SIGTERM)
                #expect(await client.handle.waitForExit(timeout: .seconds(5)), "the launcher exits within 5 s of SIGTERM")
                #expect(client.handle.terminationStatus == 0)
                #expect(kill(second, 0) != 0, "Envoy stopped with its launcher")
                #expect(client.handle.log.contains("SIGTERM: draining"), "\(client.handle.log.suffix(1000))")
            }
        }

        @Test("a forged X-Forwarded-For changes no remoteIpBlocks decision unless mesh.yaml trusts a proxy; Envoy-internal headers from callers never reach the app")
        func forgedHeaders() async throws {
            let files = [
                "service.yaml": serviceYAML("server", namespace: "xff"),
                "client.yaml": workloadYAML("client", namespace: "xff", block: 41, host: 2, labels: ["app": "client"], serviceAccount: "client"),
                "server.yaml": workloadYAML("server", namespace: "xff", block: 41, host: 3, labels: ["app": "server"], serviceAccount: "server"),
                "policy.yaml": """
                    apiVersion: security.istio.io/v1
                    kind: AuthorizationPolicy
                    metadata: {name: deny-addresses, namespace: xff}
                    spec:
                      selector: {matchLabels: {app: server}}
                      action: DENY
                      rules:
                      - from: [{source: {remoteIpBlocks: [192.0.2.7/32]}}]
                      - from: [{source: {remoteIpBlocks: [127.41.0.2/32]}}]
                        to: [{operation: {paths: ["/own"]}}]
                    """,
            ]
            try await MeshHarness("xff", files: files).run { mesh in
                let app = try await mesh.startApp("server", host: "127.41.2.3", port: 8080)
                try await mesh.startSidecar("xff", "client")
                let server = try await mesh.startSidecar("xff", "server")
                let egress = HostPort(host: "127.41.1.2", port: 8080)
                func status(_ path: String, _ headers: [(String, String)] = []) async throws -> Int {
                    try await HTTPProbe.request(egress, authority: "server", path: path, headers: headers).status
                }
                // The caller's address is its connection's: a forged header neither denies nor frees it.
                #expect(try await status("/", [("x-forwarded-for", "192.0.2.7")]) == 200)
                #expect(try await status("/own") == 403)
                #expect(try await status("/own", [("x-forwarded-for", "198.51.100.1")]) == 403)

                // Envoy's own control headers sent by a caller reach neither Envoy's decisions nor the app.
                let forged = [
                    ("x-envoy-original-path", "/forged"), ("x-envoy-retry-on", "5xx"), ("x-envoy-upstream-rq-timeout-ms", "1"),
                    ("x-envoy-max-retries", "9"), ("x-envoy-internal", "true"), ("x-envoy-force-trace", "true"),
                    ("x-envoy-downstream-service-cluster", "forged"), ("x-envoy-decorator-operation", "forged"),
                ]
                let before = app.requests.count
                #expect(try await status("/headers", forged) == 200)
                let seen = try #require(app.requests.dropFirst(before).first { $0.path == "/headers" })
                let leaked = forged.map(\.0).filter { seen.headers[$0] != nil }
                #expect(leaked.isEmpty, "the app got \(leaked.map { "\($0): \(seen.headers[$0] ?? "")" })")

                // One trusted proxy in front: the right-most X-Forwarded-For entry is the caller.
                try mesh.writeConfig("mesh.yaml", "defaultConfig: {gatewayTopology: {numTrustedProxies: 1}}\n")
                try await Eventually.wait(timeout: .seconds(5), what: "remoteIpBlocks judged by X-Forwarded-For on the server's sidecar") {
                    (try? await server.admin("/config_dump").body.contains("\"remote_ip\"")) ?? false
                }
                try await server.waitUntilDrained()
                #expect(try await status("/", [("x-forwarded-for", "192.0.2.7")]) == 403)
                #expect(try await status("/") == 200)
            }
        }

        @Test("meshd fails fast and says why: a port in use, a data directory it cannot use, a CA it cannot load — one line, exit 1, within a second")
        func failFast() async throws {
            let directory = try TestTools.temporaryDirectory("fail-fast")
            defer { try? FileManager.default.removeItem(atPath: directory) }
            func meshd(_ arguments: [String]) async throws -> (status: Int32?, log: String, took: Duration) {
                let started = ContinuousClock.now
                let process = try ProcessHandle(
                    executable: try TestTools.productBinary("meshd"), arguments: arguments,
                    logPath: directory + "/meshd-\(UUID().uuidString.prefix(6)).log")
                let exited = await process.waitForExit(timeout: .seconds(10))
                if !exited { await process.killNow() }
                return (process.terminationStatus, process.log, ContinuousClock.now - started)
            }
            let loopback = ["--xds-address", "127.40.9.1:0", "--admin-address", "127.40.9.1:0"]

            // A port in use.
            let holder = try await TestHTTPApp.start(name: "holder", host: "127.40.9.9", port: 15999)
            let busy = try await meshd(["--data-dir", directory + "/busy", "--xds-address", "127.40.9.9:15999", "--admin-address", "127.40.9.1:0"])
            await holder.stop()
            #expect(busy.status == 1 && busy.took < .seconds(1), "\(busy)")
            #expect(busy.log.contains("cannot listen on 127.40.9.9:15999 (--xds-address): Address already in use"), "\(busy.log)")
            #expect(!busy.log.contains("meshd is serving"), "no welcome banner with port 0")

            // A data directory that is a file's child.
            try "x".write(toFile: directory + "/file", atomically: true, encoding: .utf8)
            let badData = try await meshd(["--data-dir", directory + "/file/data"] + loopback)
            #expect(badData.status == 1 && badData.took < .seconds(1), "\(badData)")
            #expect(badData.log.contains("cannot use the data directory \(directory)/file/data: Not a directory"), "\(badData.log)")

            // A CA key that does not load.
            _ = try ControlPlane(
                options: ControlPlaneOptions(
                    configDirectory: nil, dataDirectory: directory + "/ca", xdsAddress: HostPort(host: "127.40.9.1", port: 0),
                    adminAddress: HostPort(host: "127.40.9.1", port: 0)),
                logger: .init(label: "fail-fast"))
            try "garbage".write(toFile: directory + "/ca/ca/root-key.pem", atomically: true, encoding: .utf8)
            let badCA = try await meshd(["--data-dir", directory + "/ca"] + loopback)
            #expect(badCA.status == 1 && badCA.took < .seconds(1), "\(badCA)")
            #expect(badCA.log.contains("the CA cannot be used: cannot read the CA key \(directory)/ca/ca/root-key.pem"), "\(badCA.log)")
            #expect(badCA.log.split(separator: "\n").filter { $0.contains("critical") }.count == 1, "one line: \(badCA.log)")
        }
    }
}
