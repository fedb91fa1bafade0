import ControlPlane
import Foundation
import MeshModel
import Testing
import XDSTesting

extension EndToEnd {
    /// Protocol detection and gRPC through real Envoys (addresses 127.38.x.y): `web` serves HTTP on
    /// a port that declares no protocol (its two versions are Envoys answering HTTP/1.1 and h2c
    /// with their name and the protocol they saw), `banner` a server-first protocol on a declared
    /// TCP port and on an undeclared one, `governor` gRPC (grpcio) on a GRPC port.
    @Suite("Protocols: detection on undeclared ports, server-first TCP, gRPC through sidecars")
    struct ProtocolTests {
        static let namespace = "protocols"
        static let helper = TestTools.packageRoot + "/Tests/Conformance/protocol_peers.py"
        static let egress = "127.38.1.1"
        static let governor = "governor.\(namespace).svc.cluster.local"

        static func service(_ name: String, ports: String) -> String {
            """
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: \(name), namespace: \(namespace)}
            spec:
              hosts: [\(name).\(namespace).svc.cluster.local]
              location: MESH_INTERNAL
              resolution: STATIC
              ports: \(ports)
              workloadSelector: {labels: {app: \(name)}}

            """
        }

        /// A workload at 127.38.0.`host` whose Sidecar delivers `ports` to 127.38.2.`host`.
        static func workload(_ name: String, host: Int, labels: String, serviceAccount: String, ports: [(number: Int, declaration: String)]) -> String {
            let ingress = ports.map { "  - port: {number: \($0.number), \($0.declaration)}\n    defaultEndpoint: 127.38.2.\(host):\($0.number)\n" }.joined()
            return """
                apiVersion: networking.istio.io/v1
                kind: WorkloadEntry
                metadata: {name: \(name), namespace: \(namespace)}
                spec: {address: 127.38.0.\(host), serviceAccount: \(serviceAccount), labels: {\(labels)}}
                ---
                apiVersion: networking.istio.io/v1
                kind: Sidecar
                metadata: {name: \(name), namespace: \(namespace)}
                spec:
                  workloadSelector: {labels: {\(labels)}}
                  ingress:
                \(ingress)  egress:
                  - {bind: 127.38.1.\(host), captureMode: NONE, hosts: ["./*"]}

                """
        }

        static func files(logDirectory: String) -> [String: String] {
            [
                "services.yaml": [
                    service("web", ports: "[{number: 8080, name: web}]"),
                    service("banner", ports: "[{number: 7000, name: tcp-banner, protocol: TCP}, {number: 7001, name: banner}]"),
                    service("governor", ports: "[{number: 9090, name: grpc, protocol: GRPC}]"),
                    service("secure", ports: "[{number: 8443, name: secure}]"),
                ].joined(separator: "---\n"),
                "workloads.yaml": [
                    """
                    apiVersion: networking.istio.io/v1
                    kind: WorkloadEntry
                    metadata: {name: client, namespace: \(namespace)}
                    spec: {address: 127.38.0.1, serviceAccount: client, labels: {app: client}}
                    ---
                    apiVersion: networking.istio.io/v1
                    kind: Sidecar
                    metadata: {name: client, namespace: \(namespace)}
                    spec:
                      workloadSelector: {labels: {app: client}}
                      egress: [{bind: \(egress), captureMode: NONE, hosts: ["./*"]}]

                    """,
                    workload("web-v1", host: 2, labels: "app: web, version: v1", serviceAccount: "web", ports: [(8080, "name: web")]),
                    workload("web-v2", host: 3, labels: "app: web, version: v2", serviceAccount: "web", ports: [(8080, "name: web")]),
                    workload("banner", host: 4, labels: "app: banner", serviceAccount: "banner", ports: [(7000, "name: tcp-banner, protocol: TCP"), (7001, "name: banner")]),
                    workload("governor", host: 5, labels: "app: governor", serviceAccount: "governor", ports: [(9090, "name: grpc, protocol: GRPC")]),
                    workload("secure", host: 6, labels: "app: secure", serviceAccount: "secure", ports: [(8443, "name: secure")]),
                ].joined(separator: "---\n"),
                "web.yaml": """
                    apiVersion: networking.istio.io/v1
                    kind: DestinationRule
                    metadata: {name: web, namespace: \(namespace)}
                    spec:
                      host: web
                      subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
                    ---
                    apiVersion: networking.istio.io/v1
                    kind: VirtualService
                    metadata: {name: web, namespace: \(namespace)}
                    spec:
                      hosts: [web]
                      http:
                      - route:
                        - {destination: {host: web, subset: v1}, weight: 75}
                        - {destination: {host: web, subset: v2}, weight: 25}
                    """,
                "governor.yaml": governorPolicy(retryOn: "unavailable"),
                "mesh.yaml": """
                    protocolDetectionTimeout: 1s
                    accessLogFile: \(logDirectory)/{namespace}-{workload}.log
                    """,
            ]
        }

        /// governor's routes: retries on `retryOn`, the `Faulty` method aborted with UNAVAILABLE
        /// by a fault, and RBAC allowing the client Status, Slow and Watch only.
        static func governorPolicy(retryOn: String) -> String {
            """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: governor, namespace: \(namespace)}
            spec:
              hosts: [\(governor)]
              http:
              - match: [{uri: {exact: /tai.Governor/Faulty}}]
                fault: {abort: {grpcStatus: UNAVAILABLE, percentage: {value: 100}}}
                route: [{destination: {host: \(governor)}}]
              - route: [{destination: {host: \(governor)}}]
                retries: {attempts: 3, retryOn: \(retryOn)}
            ---
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: governor, namespace: \(namespace)}
            spec:
              selector: {matchLabels: {app: governor}}
              action: ALLOW
              rules:
              - from: [{source: {principals: [cluster.local/ns/\(namespace)/sa/client]}}]
                to: [{operation: {paths: [/tai.Governor/Status, /tai.Governor/Slow, /tai.Governor/Watch]}}]
            """
        }

        /// A static Envoy standing in for an app that speaks HTTP/1.1 and h2c: answers `name` with
        /// the protocol it was asked in as `x-app-protocol`.
        static func startH2App(_ mesh: MeshHarness, _ name: String, host: Int) async throws {
            let bootstrap = """
                {"admin": {"address": {"socket_address": {"address": "127.38.3.\(host)", "port_value": 15000}}},
                 "static_resources": {"listeners": [{"name": "app", "address": {"socket_address": {"address": "127.38.2.\(host)", "port_value": 8080}},
                   "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": {
                     "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                     "stat_prefix": "app", "codec_type": "AUTO",
                     "route_config": {"virtual_hosts": [{"name": "app", "domains": ["*"], "routes": [{"match": {"prefix": "/"},
                       "direct_response": {"status": 200, "body": {"inline_string": "\(name)\\n"}},
                       "response_headers_to_add": [{"header": {"key": "x-app-protocol", "value": "%PROTOCOL%"}}]}]}]},
                     "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]}}]}]}]}}
                """
            let envoy = try EnvoyProcess.start(name: name + "-app", bootstrapJSON: bootstrap, adminAddress: HostPort(host: "127.38.3.\(host)", port: 15000), directory: mesh.directory)
            mesh.adopt(envoy)
            try await envoy.waitUntilReady()
        }

        /// A Python peer from protocol_peers.py, waited for until it listens.
        static func startPeer(_ arguments: [String], log: String) async throws -> ProcessHandle {
            let process = try ProcessHandle(executable: try TestTools.python(), arguments: ["-u", helper] + arguments, logPath: log)
            try await Eventually.wait(timeout: .seconds(20), what: "\(arguments[0]) listening (\(log))") {
                if !process.isRunning { throw HTTPProbe.Failure(description: "\(arguments[0]) exited: \(process.log)") }
                return process.log.contains("listening")
            }
            return process
        }

        /// Runs a command to its end (60 s at most) and gives its output.
        static func output(_ executable: String, _ arguments: [String], log: String) async throws -> String {
            let process = try ProcessHandle(executable: executable, arguments: arguments, logPath: log)
            #expect(await process.waitForExit(timeout: .seconds(60)), "\(executable) \(arguments) did not end")
            return process.log
        }

        /// One unary call to governor through the client's sidecar: "code=... reply=...".
        static func call(_ mesh: MeshHarness, _ method: String, _ payload: String = "ok") async throws -> String {
            let log = "\(mesh.directory)/call-\(UUID().uuidString).log"
            let text = try await output(try TestTools.python(), [helper, "grpc-call", "\(egress):9090", governor, method, payload], log: log)
            return text.trimmingCharacters(in: .whitespacesAndNewlines)
        }

        /// Reads what a server-first peer writes on `port` through the client's sidecar, and how long it took.
        static func readBanner(port: UInt32) async throws -> (String, Duration) {
            let start = ContinuousClock.now
            let text = try await TestTCPApp.read(HostPort(host: egress, port: port), timeout: .seconds(8), greeting: nil)
            return (text.trimmingCharacters(in: .whitespacesAndNewlines), ContinuousClock.now - start)
        }

        @Test("undeclared HTTP port: HTTP routing with a weighted split, HTTP metrics on both sides, h2c prior knowledge and an h2c upgrade; server-first TCP: undelayed on a declared port, after protocolDetectionTimeout on an undeclared one")
        func detection() async throws {
            let logs = try TestTools.temporaryDirectory("protocol-logs")
            try await MeshHarness("protocols", files: Self.files(logDirectory: logs)).run { mesh in
                for name in ["web-v1", "web-v2", "banner", "secure", "client"] { try await mesh.startSidecar(Self.namespace, name) }
                try await Self.startH2App(mesh, "web-v1", host: 2)
                try await Self.startH2App(mesh, "web-v2", host: 3)
                let banner = try await Self.startPeer(["banner", "127.38.2.4", "7000", "7001"], log: "\(mesh.directory)/banner.log")
                defer { banner.signal(SIGKILL) }

                // HTTP/1.1 on the undeclared port: routed by the VirtualService, 75/25.
                let tally = await tallyAnswers(400, parallel: 8, to: HostPort(host: Self.egress, port: 8080), authority: "web")
                #expect((tally["web-v1"] ?? 0) + (tally["web-v2"] ?? 0) == 400, "every request answered: \(tally)")
                #expect((260...340).contains(tally["web-v1"] ?? 0), "75 % to v1 within ±10 points: \(tally)")
                let client = try #require(mesh.envoys.first { $0.name == "client" })
                let outbound = try await client.stats(filter: "^http\\.outbound_127\\.38\\.1\\.1_8080\\.downstream_rq_2xx$")
                #expect(outbound.values.first ?? 0 >= 400, "the client sidecar handled them as HTTP: \(outbound)")
                var inbound = 0
                for name in ["web-v1", "web-v2"] {
                    let server = try #require(mesh.envoys.first { $0.name == name })
                    let stats = try await server.stats(filter: "^http\\.inbound_0\\.0\\.0\\.0_8080\\.downstream_rq_2xx$")
                    inbound += stats.values.first ?? 0
                    let tls = try await server.stats(filter: "^listener\\.127\\.38\\.0\\.\\d_8080\\.ssl\\.handshake$")
                    #expect(tls.values.first ?? 0 > 0, "the sidecars talk mTLS: \(tls)")
                }
                #expect(inbound >= 400, "the server sidecars took them as HTTP inside mTLS (ALPN): \(inbound)")

                // HTTP/2 with prior knowledge stays HTTP/2 to the app; an h2c upgrade is answered
                // in HTTP/1.1 (Envoy does not upgrade), both through the split.
                let curl = "/usr/bin/curl"
                for (flag, clientProtocol, appProtocol) in [("--http2-prior-knowledge", "HTTP/2", "HTTP/2"), ("--http2", "HTTP/1.1", "HTTP/1.1")] {
                    let text = try await Self.output(curl, ["-sS", "-i", flag, "--max-time", "5", "-H", "host: web", "http://\(Self.egress):8080/"], log: "\(mesh.directory)/curl\(flag).log")
                    #expect(text.hasPrefix(clientProtocol + " 200"), "\(flag): \(text)")
                    #expect(text.lowercased().contains("x-app-protocol: \(appProtocol.lowercased())"), "\(flag): the app saw \(appProtocol): \(text)")
                    #expect(text.contains("web-v1") || text.contains("web-v2"), "\(flag): \(text)")
                }

                // TLS the app originates on an undeclared port passes through as TCP, its SNI
                // intact: openssl's server refuses any name but secure.example.
                let openssl = "/usr/bin/openssl"
                let key = "\(mesh.directory)/secure-key.pem", certificate = "\(mesh.directory)/secure-cert.pem"
                let made = try await Self.output(openssl, [
                    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", certificate,
                    "-subj", "/CN=secure.example", "-days", "1", "-addext", "subjectAltName=DNS:secure.example",
                ], log: "\(mesh.directory)/secure-req.log")
                #expect(FileManager.default.fileExists(atPath: certificate), "\(made)")
                let tlsServer = try ProcessHandle(
                    executable: openssl,
                    arguments: [
                        "s_server", "-accept", "127.38.2.6:8443", "-cert", certificate, "-key", key, "-cert2", certificate, "-key2", key, "-www",
                        "-servername", "secure.example", "-servername_fatal",
                    ],
                    logPath: "\(mesh.directory)/secure-server.log")
                defer { tlsServer.signal(SIGKILL) }
                try await Eventually.wait(timeout: .seconds(10), what: "openssl s_server to accept") { tlsServer.log.contains("ACCEPT") || !tlsServer.isRunning }
                for (name, accepted) in [("secure.example", true), ("other.example", false)] {
                    let text = try await Self.output(curl, [
                        "-sS", "-k", "--max-time", "5", "--resolve", "\(name):8443:\(Self.egress)", "https://\(name):8443/",
                    ], log: "\(mesh.directory)/curl-tls-\(name).log")
                    #expect(accepted ? text.contains("Ciphers supported") : text.contains("unrecognized name"), "TLS to \(name) through the detected port: \(text.prefix(600))")
                }

                // Server-first: a declared TCP port is never inspected; an undeclared one waits
                // for protocolDetectionTimeout (1 s here), then goes the TCP way.
                let (declared, declaredTime) = try await Self.readBanner(port: 7000)
                #expect(declared == "banner 7000")
                #expect(declaredTime < .milliseconds(800), "a declared TCP port is not delayed: \(declaredTime)")
                let (detected, detectedTime) = try await Self.readBanner(port: 7001)
                #expect(detected == "banner 7001")
                #expect(detectedTime >= .milliseconds(900) && detectedTime < .seconds(4), "an undeclared port waits for the detection timeout, once: \(detectedTime)")
            }
        }

        @Test("gRPC through sidecars: unary and streaming, a retry on UNAVAILABLE, a grpcStatus fault, RBAC by method, grpc-timeout honoured, status in logs and metrics; a stream survives an unrelated change")
        func grpc() async throws {
            let logs = try TestTools.temporaryDirectory("grpc-logs")
            try await MeshHarness("grpc", files: Self.files(logDirectory: logs)).run { mesh in
                for name in ["governor", "client"] { try await mesh.startSidecar(Self.namespace, name) }
                let server = try await Self.startPeer(["grpc-server", "127.38.2.5", "9090", "governor"], log: "\(mesh.directory)/governor.log")
                defer { server.signal(SIGKILL) }

                #expect(try await Self.call(mesh, "Status") == "code=OK reply=governor")
                // Retried on UNAVAILABLE: the second attempt answers.
                #expect(try await Self.call(mesh, "Status", "fail-once:retried") == "code=OK reply=governor attempt 2")
                #expect(try await Self.call(mesh, "Status", "status:5") == "code=NOT_FOUND reply=asked for status 5", "other statuses are not retried")
                #expect(server.log.components(separatedBy: "fail-once:retried attempt").count - 1 == 2)
                // The fault answers for the server, which never sees the call.
                let faulty = try await Self.call(mesh, "Faulty")
                #expect(faulty.hasPrefix("code=UNAVAILABLE"), "\(faulty)")
                // RBAC by method path.
                let denied = try await Self.call(mesh, "Admin")
                #expect(denied.hasPrefix("code=PERMISSION_DENIED"), "\(denied)")

                // grpc-timeout: the caller's deadline bounds the call at the sidecar (the route has no timeout).
                let frame = "\(mesh.directory)/frame.bin"
                try Data([0, 0, 0, 0, 2, 0x6f, 0x6b]).write(to: URL(fileURLWithPath: frame))
                let start = ContinuousClock.now
                let timed = try await Self.output("/usr/bin/curl", [
                    "-sS", "-i", "--http2-prior-knowledge", "--max-time", "5", "-H", "host: \(Self.governor)", "-H", "content-type: application/grpc",
                    "-H", "te: trailers", "-H", "grpc-timeout: 300m", "--data-binary", "@\(frame)", "http://\(Self.egress):9090/tai.Governor/Slow",
                ], log: "\(mesh.directory)/curl-timeout.log")
                let elapsed = ContinuousClock.now - start
                // The sidecar (UNAVAILABLE, "upstream request timeout") and the grpcio server,
                // which gets the deadline the sidecar forwards (DEADLINE_EXCEEDED), race to end it.
                let lowered = timed.lowercased()
                #expect((lowered.contains("grpc-status: 14") && timed.contains("upstream request timeout")) || lowered.contains("grpc-status: 4"), "the deadline ended the call: \(timed)")
                #expect(elapsed < .milliseconds(1800), "cut at the caller's 300 ms, not the server's 2 s: \(elapsed)")

                // Status in metrics (per cluster, by status) and in the access log.
                let client = try #require(mesh.envoys.first { $0.name == "client" })
                let cluster = "cluster.outbound|9090||\(Self.governor).grpc"
                let stats = try await client.stats(filter: "^" + NSRegularExpression.escapedPattern(for: cluster) + "\\.")
                #expect((stats["\(cluster).0"] ?? 0) >= 2 && (stats["\(cluster).5"] ?? 0) >= 1, "\(stats)")
                let governorSidecar = try #require(mesh.envoys.first { $0.name == "governor" })
                let serverStats = try await governorSidecar.stats(filter: "^cluster\\.inbound\\|9090\\|\\|\\.grpc\\.")
                #expect((serverStats["cluster.inbound|9090||.grpc.0"] ?? 0) >= 2 && (serverStats["cluster.inbound|9090||.grpc.14"] ?? 0) >= 1, "\(serverStats)")
                try await Eventually.wait(timeout: .seconds(10), what: "the client's access log to show gRPC statuses") {
                    let text = (try? String(contentsOfFile: "\(logs)/\(Self.namespace)-client.log", encoding: .utf8)) ?? ""
                    return text.contains("/tai.Governor/Status") && text.contains("grpc=5") && text.contains("grpc=7") && text.contains("grpc=0")
                }

                // retryOn decides: with `cancelled` only, UNAVAILABLE reaches the caller.
                try mesh.writeConfig("governor.yaml", Self.governorPolicy(retryOn: "cancelled"))
                try await Eventually.wait(timeout: .seconds(10), what: "retryOn cancelled to reach the client") {
                    (try? await client.admin("/config_dump").body.contains("\"retry_on\": \"cancelled\"")) ?? false
                }
                #expect(try await Self.call(mesh, "Status", "fail-once:unretried") == "code=UNAVAILABLE reply=first attempt fails")

                // A bidirectional stream keeps running across a change that does not touch it.
                let stream = try ProcessHandle(
                    executable: try TestTools.python(), arguments: ["-u", Self.helper, "grpc-stream", "\(Self.egress):9090", Self.governor, "4"],
                    logPath: "\(mesh.directory)/stream.log")
                try await Eventually.wait(timeout: .seconds(20), what: "the stream to start") { stream.log.contains("streaming") || !stream.isRunning }
                try mesh.writeConfig("extra.yaml", Self.service("extra", ports: "[{number: 8081, name: http}]"))
                try await Eventually.wait(timeout: .seconds(10), what: "the unrelated change to reach the client") {
                    (try? await client.admin("/config_dump").body.contains("extra.\(Self.namespace).svc.cluster.local")) ?? false
                }
                #expect(await stream.waitForExit(timeout: .seconds(30)))
                #expect(stream.terminationStatus == 0 && stream.log.contains("echoed 40 of 40"), "the stream: \(stream.log)")
            }
        }

        /// The ADR's coordinator for a proxyless client: v1 on coordinator-a and -b, v2 on
        /// coordinator-c, each a grpcio server behind a sidecar (STRICT mTLS), split 90/10.
        static var proxylessFiles: [String: String] {
            var files = [
                "services.yaml": """
                    apiVersion: networking.istio.io/v1
                    kind: ServiceEntry
                    metadata: {name: coordinator, namespace: tai-system}
                    spec:
                      hosts: [coordinator.tai-system.svc.cluster.local]
                      location: MESH_INTERNAL
                      resolution: STATIC
                      ports: [{number: 8080, name: grpc, protocol: GRPC}]
                      workloadSelector: {labels: {app: coordinator}}
                    ---
                    apiVersion: networking.istio.io/v1
                    kind: WorkloadEntry
                    metadata: {name: governor, namespace: tai-system}
                    spec: {address: 127.38.0.20, serviceAccount: governor, labels: {app: governor}}
                    ---
                    apiVersion: networking.istio.io/v1
                    kind: ServiceEntry
                    metadata: {name: scheduler, namespace: tai-system}
                    spec:
                      hosts: [scheduler.tai-system.svc.cluster.local]
                      location: MESH_INTERNAL
                      resolution: STATIC
                      ports: [{number: 8080, name: grpc, protocol: GRPC}]
                      workloadSelector: {labels: {app: scheduler}}
                    ---
                    apiVersion: networking.istio.io/v1
                    kind: WorkloadEntry
                    metadata: {name: scheduler, namespace: tai-system}
                    spec: {address: 127.38.0.21, serviceAccount: scheduler, labels: {app: scheduler}}
                    ---
                    apiVersion: security.istio.io/v1
                    kind: AuthorizationPolicy
                    metadata: {name: scheduler, namespace: tai-system}
                    spec:
                      selector: {matchLabels: {app: scheduler}}
                      rules: [{from: [{source: {principals: [cluster.local/ns/tai-system/sa/governor]}}], to: [{operation: {paths: ["/tai.Governor/*"]}}]}]
                    ---
                    apiVersion: security.istio.io/v1
                    kind: PeerAuthentication
                    metadata: {name: default, namespace: tai-system}
                    spec: {mtls: {mode: STRICT}}
                    ---
                    apiVersion: networking.istio.io/v1
                    kind: DestinationRule
                    metadata: {name: coordinator, namespace: tai-system}
                    spec:
                      host: coordinator.tai-system.svc.cluster.local
                      subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
                    ---
                    apiVersion: networking.istio.io/v1
                    kind: VirtualService
                    metadata: {name: coordinator, namespace: tai-system}
                    spec:
                      hosts: [coordinator.tai-system.svc.cluster.local]
                      http:
                      - route:
                        - {destination: {host: coordinator.tai-system.svc.cluster.local, subset: v1}, weight: 90}
                        - {destination: {host: coordinator.tai-system.svc.cluster.local, subset: v2}, weight: 10}
                    """,
            ]
            for (name, host, version) in [("coordinator-a", 11, "v1"), ("coordinator-b", 12, "v1"), ("coordinator-c", 13, "v2")] {
                files["\(name).yaml"] = """
                    apiVersion: networking.istio.io/v1
                    kind: WorkloadEntry
                    metadata: {name: \(name), namespace: tai-system}
                    spec: {address: 127.38.0.\(host), serviceAccount: coordinator, labels: {app: coordinator, version: \(version), instance: \(name)}}
                    ---
                    apiVersion: networking.istio.io/v1
                    kind: Sidecar
                    metadata: {name: \(name), namespace: tai-system}
                    spec:
                      workloadSelector: {labels: {instance: \(name)}}
                      ingress: [{port: {number: 8080, name: grpc, protocol: GRPC}, defaultEndpoint: "127.38.2.\(host):8080"}]
                      egress: [{bind: 127.38.1.\(host), captureMode: NONE, hosts: ["./*"]}]
                    """
            }
            return files
        }

        @Test("proxyless gRPC: a grpcio client with an xds:/// target and meshctl's bootstrap gets listeners, routes, clusters and endpoints from meshd, talks mTLS with the files meshctl cert renew keeps, follows a 90/10 split and fails over when an endpoint disappears; a grpcio xDS server gets mTLS and RBAC")
        func proxyless() async throws {
            try await MeshHarness("proxyless", files: Self.proxylessFiles).run { mesh in
                var servers: [ProcessHandle] = []
                defer { for server in servers { server.signal(SIGKILL) } }
                for (name, host) in [("coordinator-a", 11), ("coordinator-b", 12), ("coordinator-c", 13)] {
                    try await mesh.startSidecar("tai-system", name)
                    servers.append(try await Self.startPeer(["grpc-server", "127.38.2.\(host)", "8080", name], log: "\(mesh.directory)/\(name).log"))
                }
                // Each application's certificate, as its cron job keeps it, then gRPC's bootstrap.
                let common = ["--server", "http://\(mesh.adminAddress)", "--data-dir", mesh.controlPlane.options.dataDirectory]
                func proxylessEnvironment(_ name: String) async throws -> [String: String] {
                    let certificates = mesh.directory + "/certs/\(name)"
                    let renewed = try await meshctl(
                        ["cert", "renew", "--dir", certificates, "--xds-address", "\(mesh.xdsAddress)", "--token", try mesh.token("tai-system", name),
                         "--namespace", "tai-system", "--service-account", name] + common, in: mesh.directory)
                    #expect(renewed.status == 0, "\(renewed.output)")
                    let bootstrap = try await meshctl(
                        ["bootstrap", "--proxyless", "--workload", "tai-system/\(name)", "--cert-dir", certificates, "--xds-address", "\(mesh.xdsAddress)"] + common,
                        in: mesh.directory)
                    #expect(bootstrap.status == 0 && bootstrap.output.contains("\"GENERATOR\": \"grpc\""), "\(bootstrap.output)")
                    let bootstrapFile = mesh.directory + "/\(name)-grpc-bootstrap.json"
                    try bootstrap.output.write(toFile: bootstrapFile, atomically: true, encoding: .utf8)
                    var environment = ProcessInfo.processInfo.environment
                    environment["GRPC_XDS_BOOTSTRAP"] = bootstrapFile
                    return environment
                }
                let refused = try await meshctl(["bootstrap", "--proxyless", "--workload", "tai-system/governor"] + common, in: mesh.directory)
                #expect(refused.status != 0 && refused.output.contains("--cert-dir"), "\(refused.output)")
                let environment = try await proxylessEnvironment("governor")
                let target = "xds:///coordinator.tai-system.svc.cluster.local:8080"

                // 300 calls on one channel: every one answered, 90/10 between v1 and v2.
                let split = try ProcessHandle(
                    executable: try TestTools.python(), arguments: ["-u", Self.helper, "grpc-calls", target, "", "Status", "300", "0"],
                    logPath: "\(mesh.directory)/proxyless-split.log", environment: environment)
                #expect(await split.waitForExit(timeout: .seconds(60)))
                // Lines of calls only (grpcio logs to the same file).
                func calls(_ log: String) -> [String] {
                    log.split(separator: "\n").compactMap { line in
                        let parts = line.split(separator: " ", maxSplits: 1)
                        return parts.count == 2 && Int(parts[0]) != nil ? String(parts[1]) : nil
                    }
                }
                let answers = calls(split.log)
                let tally = Dictionary(answers.map { ($0, 1) }, uniquingKeysWith: +)
                #expect(answers.count == 300 && !answers.contains { $0.hasPrefix("ERROR") }, "\(split.log.suffix(2000))")
                #expect((12...50).contains(tally["coordinator-c"] ?? 0), "10 % to v2 (30 expected; ±3.5 standard deviations): \(tally)")
                #expect((tally["coordinator-a"] ?? 0) > 60 && (tally["coordinator-b"] ?? 0) > 60, "v1 spread over its two endpoints: \(tally)")

                // An endpoint disappears: its WorkloadEntry goes; the open channel moves to the others, failing nothing.
                let failover = try ProcessHandle(
                    executable: try TestTools.python(), arguments: ["-u", Self.helper, "grpc-calls", target, "", "Status", "160", "50"],
                    logPath: "\(mesh.directory)/proxyless-failover.log", environment: environment)
                try await Eventually.wait(timeout: .seconds(20), what: "the calls to start") { calls(failover.log).count > 20 || !failover.isRunning }
                let status = try await mesh.admin("/v1/proxies")
                let proxies = try JSONSerialization.jsonObject(with: Data(status.body.utf8)) as? [[String: Any]] ?? []
                let governor = proxies.first { ($0["proxyID"] as? String)?.contains("~governor.tai-system~") == true }
                let states = (governor?["types"] as? [String: [String: Any]])?.mapValues { $0["state"] as? String ?? "" }
                #expect(states == ["lds": "SYNCED", "rds": "SYNCED", "cds": "SYNCED", "eds": "SYNCED"], "the application is a connected, synced proxy: \(status.body)")
                try FileManager.default.removeItem(atPath: mesh.configDirectory + "/coordinator-a.yaml")
                #expect(await failover.waitForExit(timeout: .seconds(60)))
                let lines = calls(failover.log)
                #expect(lines.count == 160 && !lines.contains { $0.contains("ERROR") }, "\(failover.log.suffix(2000))")
                #expect(!lines.suffix(60).contains { $0 == "coordinator-a" }, "after the entry went, coordinator-a got nothing: \(lines.suffix(60))")
                #expect(lines.suffix(60).contains { $0 == "coordinator-b" }, "\(lines.suffix(60))")

                // A proxyless server: mTLS and authorization from the listener meshd serves it.
                // The proxyless governor may call it; coordinator-b's sidecar (mTLS as service
                // account coordinator) is refused by its AuthorizationPolicy.
                let scheduler = try ProcessHandle(
                    executable: try TestTools.python(), arguments: ["-u", Self.helper, "grpc-xds-server", "127.38.0.21", "8080", "scheduler"],
                    logPath: "\(mesh.directory)/scheduler.log", environment: try await proxylessEnvironment("scheduler"))
                servers.append(scheduler)
                try await Eventually.wait(timeout: .seconds(20), what: "the proxyless server to start") { scheduler.log.contains("listening") || !scheduler.isRunning }
                let allowed = try ProcessHandle(
                    executable: try TestTools.python(), arguments: ["-u", Self.helper, "grpc-calls", "xds:///scheduler.tai-system.svc.cluster.local:8080", "", "Status", "3", "0"],
                    logPath: "\(mesh.directory)/proxyless-scheduler.log", environment: environment)
                #expect(await allowed.waitForExit(timeout: .seconds(60)))
                #expect(calls(allowed.log) == ["scheduler", "scheduler", "scheduler"], "\(allowed.log.suffix(1000)) server: \(scheduler.log.suffix(3000))")
                let denied = try await Self.output(
                    try TestTools.python(), [Self.helper, "grpc-call", "127.38.1.12:8080", "scheduler.tai-system.svc.cluster.local", "Status", "ok"],
                    log: "\(mesh.directory)/sidecar-to-scheduler.log")
                #expect(denied.contains("code=PERMISSION_DENIED"), "a sidecar's mTLS reaches the proxyless server, whose RBAC refuses its identity: \(denied)")
            }
        }
    }
}
