import ControlPlane
import Foundation
import MeshConfig
import MeshModel
import Testing
import XDSTesting

extension EndToEnd {
    /// Istio's ingress tasks through a real Envoy gateway and real clients (curl).
    @Suite("Ingress gateways: Istio's ingress tasks through a real Envoy gateway")
    struct Gateways {
        static let namespace = "web"
        static let gatewayAddress = "127.44.0.10"

        static var files: [String: String] {
            [
                "service.yaml": serviceYAML("httpbin", namespace: namespace, port: 8000),
                "httpbin.yaml": workloadYAML("httpbin", namespace: namespace, block: 44, host: 2, labels: ["app": "httpbin"], serviceAccount: "httpbin", ports: [8000]),
                "gateway-workload.yaml": """
                    apiVersion: networking.istio.io/v1
                    kind: WorkloadEntry
                    metadata: {name: ingressgateway, namespace: istio-system}
                    spec: {address: \(gatewayAddress), serviceAccount: istio-ingressgateway, labels: {istio: ingressgateway}}
                    """,
            ]
        }

        /// Istio's httpbin ingress task, plus HTTPS (SIMPLE and MUTUAL, certificates as files), an
        /// HTTP-to-HTTPS redirect and a TCP server.
        static func gateway(certificates dir: String) -> String {
            """
            apiVersion: networking.istio.io/v1
            kind: Gateway
            metadata: {name: httpbin-gateway, namespace: \(namespace)}
            spec:
              selector: {istio: ingressgateway}
              servers:
              - port: {number: 8080, name: http, protocol: HTTP}
                hosts: ["httpbin.example.com"]
              - port: {number: 8081, name: http-redirect, protocol: HTTP}
                hosts: ["secure.example.com"]
                tls: {httpsRedirect: true}
              - port: {number: 8443, name: https, protocol: HTTPS}
                hosts: ["secure.example.com"]
                tls: {mode: SIMPLE, serverCertificate: \(dir)/server.pem, privateKey: \(dir)/server.key}
              - port: {number: 8443, name: https-mutual, protocol: HTTPS}
                hosts: ["mutual.example.com"]
                tls: {mode: MUTUAL, serverCertificate: \(dir)/server.pem, privateKey: \(dir)/server.key, caCertificates: \(dir)/ca.pem}
              - port: {number: 9000, name: tcp, protocol: TCP}
                hosts: ["*"]
              - port: {number: 8445, name: tls-passthrough, protocol: TLS}
                hosts: ["passthrough.example.com"]
                tls: {mode: PASSTHROUGH}
            ---
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: tls-backend, namespace: \(namespace)}
            spec:
              hosts: [passthrough.example.com]
              location: MESH_EXTERNAL
              resolution: STATIC
              ports: [{number: 9443, name: tls, protocol: TLS}]
              endpoints: [{address: 127.44.3.2}]
            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: passthrough, namespace: \(namespace)}
            spec:
              hosts: ["passthrough.example.com"]
              gateways: [httpbin-gateway]
              tls:
              - match: [{sniHosts: [passthrough.example.com]}]
                route: [{destination: {host: passthrough.example.com, port: {number: 9443}}}]
            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: httpbin, namespace: \(namespace)}
            spec:
              hosts: ["httpbin.example.com", "secure.example.com", "mutual.example.com"]
              gateways: [httpbin-gateway]
              http:
              - match: [{uri: {prefix: /status}}, {uri: {prefix: /delay}}]
                route: [{destination: {host: httpbin, port: {number: 8000}}}]
            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: tcp, namespace: \(namespace)}
            spec:
              hosts: ["*"]
              gateways: [\(namespace)/httpbin-gateway]
              tcp:
              - match: [{port: 9000}]
                route: [{destination: {host: httpbin.\(namespace).svc.cluster.local, port: {number: 8000}}}]
            """
        }

        /// A CA, a server certificate for `names` and a client certificate, made with openssl.
        static func makeCertificates(in dir: String, names: [String] = ["secure.example.com", "mutual.example.com", "passthrough.example.com"]) async throws {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try "subjectAltName=\(names.map { "DNS:\($0)" }.joined(separator: ","))\n".write(toFile: dir + "/server.ext", atomically: true, encoding: .utf8)
            try "subjectAltName=DNS:client.example.com\nextendedKeyUsage=clientAuth\n".write(toFile: dir + "/client.ext", atomically: true, encoding: .utf8)
            let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
            try await run("/usr/bin/openssl", ["req", "-x509"] + ec + ["-keyout", dir + "/ca.key", "-out", dir + "/ca.pem", "-days", "1", "-subj", "/CN=gateway test CA"], in: dir)
            for name in ["server", "client"] {
                try await run("/usr/bin/openssl", ["req"] + ec + ["-keyout", "\(dir)/\(name).key", "-out", "\(dir)/\(name).csr", "-subj", "/CN=\(name)"], in: dir)
                try await run("/usr/bin/openssl", [
                    "x509", "-req", "-in", "\(dir)/\(name).csr", "-CA", dir + "/ca.pem", "-CAkey", dir + "/ca.key", "-CAcreateserial",
                    "-out", "\(dir)/\(name).pem", "-days", "1", "-extfile", "\(dir)/\(name).ext",
                ], in: dir)
            }
        }

        @discardableResult
        static func run(_ executable: String, _ arguments: [String], in dir: String, expectSuccess: Bool = true) async throws -> (status: Int32, output: String) {
            let process = try ProcessHandle(executable: executable, arguments: arguments, logPath: dir + "/run-\(UUID().uuidString.prefix(6)).log")
            #expect(await process.waitForExit(timeout: .seconds(20)))
            let status = process.terminationStatus ?? -1
            if expectSuccess && status != 0 { throw HTTPProbe.Failure(description: "\(executable) \(arguments.joined(separator: " ")) failed: \(process.log)") }
            return (status, process.log)
        }

        /// curl's status code for a request (000 when no HTTP response came), and its output.
        static func curl(_ arguments: [String], in dir: String) async throws -> (code: String, output: String) {
            let result = try await run("/usr/bin/curl", ["-sS", "--max-time", "5", "-o", "/dev/null", "-w", "code=%{http_code} location=%{redirect_url}\n"] + arguments, in: dir, expectSuccess: false)
            let code = result.output.components(separatedBy: "code=").last.map { String($0.prefix(3)) } ?? "000"
            return (code, result.output)
        }

        @Test("HTTP by host and path, httpsRedirect, HTTPS SIMPLE, MUTUAL (refused without a client certificate), SNI passthrough, TCP; gateway names and stats; a bad Gateway changes nothing")
        func ingress() async throws {
            try await MeshHarness("gateways", files: Self.files).run { mesh in
                let certificates = mesh.directory + "/gateway-certs"
                try await Self.makeCertificates(in: certificates)
                try mesh.writeConfig("gateway.yaml", Self.gateway(certificates: certificates))
                try await Eventually.wait(timeout: .seconds(5), what: "the Gateway to be served") {
                    mesh.controlPlane.store.publisher.current.gateways.count == 1
                }
                try await mesh.startApp("httpbin", host: "127.44.2.2", port: 8000)
                try await mesh.startSidecar(Self.namespace, "httpbin")
                let gateway = try await mesh.startSidecar("istio-system", "ingressgateway", as: "ingressgateway")
                let dir = mesh.directory
                let plain = "http://\(Self.gatewayAddress):8080/status/200"

                try await Eventually.wait(timeout: .seconds(10), what: "the gateway to route httpbin.example.com") {
                    (try? await Self.curl(["-H", "Host: httpbin.example.com", plain], in: dir).code) == "200"
                }
                #expect(try await Self.curl(["-H", "Host: other.example.com", plain], in: dir).code == "404", "a host no server has")
                #expect(try await Self.curl(["-H", "Host: httpbin.example.com", "http://\(Self.gatewayAddress):8080/headers"], in: dir).code == "404", "a path no route has")

                let redirect = try await Self.curl(["-H", "Host: secure.example.com", "http://\(Self.gatewayAddress):8081/status/200"], in: dir)
                #expect(redirect.code == "301" && redirect.output.contains("location=https://secure.example.com"), "\(redirect.output)")

                let resolve = ["--resolve", "secure.example.com:8443:\(Self.gatewayAddress)", "--resolve", "mutual.example.com:8443:\(Self.gatewayAddress)", "--cacert", certificates + "/ca.pem"]
                let simple = try await Self.curl(resolve + ["https://secure.example.com:8443/status/200"], in: dir)
                #expect(simple.code == "200", "HTTPS SIMPLE: \(simple.output)")
                let client = ["--cert", certificates + "/client.pem", "--key", certificates + "/client.key"]
                let mutual = try await Self.curl(resolve + client + ["https://mutual.example.com:8443/status/200"], in: dir)
                #expect(mutual.code == "200", "HTTPS MUTUAL with a client certificate: \(mutual.output)")
                let refused = try await Self.curl(resolve + ["https://mutual.example.com:8443/status/200"], in: dir)
                #expect(refused.code == "000", "MUTUAL without a client certificate gets no response: \(refused.output)")

                // SNI passthrough to a server that terminates TLS itself (openssl s_server -www).
                let backend = try ProcessHandle(
                    executable: "/usr/bin/openssl",
                    arguments: ["s_server", "-accept", "127.44.3.2:9443", "-cert", certificates + "/server.pem", "-key", certificates + "/server.key", "-www", "-naccept", "20"],
                    logPath: dir + "/s_server.log")
                var passthrough: (code: String, output: String) = ("000", "")
                for _ in 0..<20 {
                    passthrough = try await Self.curl(["--resolve", "passthrough.example.com:8445:\(Self.gatewayAddress)", "--cacert", certificates + "/ca.pem", "https://passthrough.example.com:8445/"], in: dir)
                    if passthrough.code == "200" { break }
                    try await Task.sleep(for: .milliseconds(200))
                }
                _ = await backend.stop()
                #expect(passthrough.code == "200", "TLS passthrough to the backend's own certificate: \(passthrough.output) \(backend.log)")

                let tcp = try await Self.curl(["-H", "Host: anything", "http://\(Self.gatewayAddress):9000/status/200"], in: dir)
                #expect(tcp.code == "200", "TCP through the gateway: \(tcp.output)")

                // Istio's names, and the stats that count the requests.
                let routes = try await gateway.admin("/config_dump?resource=dynamic_route_configs").body
                for name in ["http.8080", "http.8081", "https.8443.https.httpbin-gateway.web", "https.8443.https-mutual.httpbin-gateway.web"] {
                    #expect(routes.contains("\"name\": \"\(name)\""), "route configuration \(name)")
                }
                let stats = try await gateway.stats(filter: "downstream_rq_2xx")
                #expect((stats["http.outbound_\(Self.gatewayAddress)_8080.downstream_rq_2xx"] ?? 0) >= 1, "\(stats)")
                #expect(try await mesh.envoyHealthProblems().isEmpty)
                let status = try await mesh.admin("/v1/proxies")
                #expect(status.body.contains("router~\(Self.gatewayAddress)~ingressgateway.istio-system"), "proxy-status shows the gateway: \(status.body)")
                let config = try await mesh.admin("/v1/proxies/router~\(Self.gatewayAddress)~ingressgateway.istio-system~istio-system.svc.cluster.local/config")
                #expect(config.status == 200 && config.body.contains("https.8443.https-mutual.httpbin-gateway.web"), "proxy-config shows the gateway's routes: \(config.body.prefix(300))")
                let described = try await mesh.admin("/v1/workloads/istio-system/ingressgateway/describe")
                #expect(described.status == 200 && described.body.contains("httpbin-gateway"), "describe names the Gateway: \(described.body)")

                // Two servers on one port with the same host and different TLS: refused, nothing changes.
                try mesh.writeConfig("bad-gateway.yaml", """
                    apiVersion: networking.istio.io/v1
                    kind: Gateway
                    metadata: {name: bad, namespace: \(Self.namespace)}
                    spec:
                      selector: {istio: ingressgateway}
                      servers:
                      - {port: {number: 9443, name: a, protocol: HTTPS}, hosts: [x.example.com], tls: {mode: SIMPLE, serverCertificate: \(certificates)/server.pem, privateKey: \(certificates)/server.key}}
                      - {port: {number: 9443, name: b, protocol: HTTPS}, hosts: [x.example.com], tls: {mode: ISTIO_MUTUAL}}
                    """)
                try await Eventually.wait(timeout: .seconds(5), what: "the bad Gateway to be reported") {
                    "\(mesh.controlPlane.store.lastRejection.map { "\($0)" } ?? "")".contains("spec.servers[1].tls")
                }
                #expect(mesh.controlPlane.store.publisher.current.gateways.count == 1)
                #expect(try await Self.curl(["-H", "Host: httpbin.example.com", plain], in: dir).code == "200")
            }
        }
    }
}
