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

        /// A Secret of the gateway's namespace, its values read from files.
        static func secret(_ name: String, type: String = "kubernetes.io/tls", files: [String: String]) throws -> String {
            let data = try files.keys.sorted().map { key in
                "\(JSONString.quote(key)): \(JSONString.quote(try String(contentsOfFile: files[key]!, encoding: .utf8)))"
            }
            return #"{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "\#(name)", "namespace": "istio-system"}, "type": "\#(type)", "stringData": {\#(data.joined(separator: ", "))}}"#
        }

        static let secretsPath = "/api/v1/namespaces/istio-system/secrets"

        @Test("credentials held by meshd: Secrets applied through the API serve HTTPS SIMPLE and MUTUAL (CA from <name>-cacert) in the gateway's namespace; answered without data (reveal: admin only, audited); a mismatched key and a missing Secret are refused with their fields; replacing the Secret rotates the certificate without dropping an open request")
        func credentials() async throws {
            let address = "127.46.0.10"
            let files = [
                "service.yaml": serviceYAML("httpbin", namespace: Self.namespace, port: 8000),
                "httpbin.yaml": workloadYAML("httpbin", namespace: Self.namespace, block: 46, host: 2, labels: ["app": "httpbin"], serviceAccount: "httpbin", ports: [8000]),
                "gateway-workload.yaml": """
                    apiVersion: networking.istio.io/v1
                    kind: WorkloadEntry
                    metadata: {name: ingressgateway, namespace: istio-system}
                    spec: {address: \(address), serviceAccount: istio-ingressgateway, labels: {istio: ingressgateway}}
                    """,
            ]
            // Istio's secure-gateway task: the Gateway in the app's namespace, the Secret where the gateway runs.
            let gateway = """
                apiVersion: networking.istio.io/v1
                kind: Gateway
                metadata: {name: secure-gateway, namespace: \(Self.namespace)}
                spec:
                  selector: {istio: ingressgateway}
                  servers:
                  - port: {number: 8443, name: https, protocol: HTTPS}
                    hosts: ["secure.example.com"]
                    tls: {mode: SIMPLE, credentialName: httpbin-credential}
                  - port: {number: 8443, name: https-mutual, protocol: HTTPS}
                    hosts: ["mutual.example.com"]
                    tls: {mode: MUTUAL, credentialName: httpbin-credential}
                """
            let virtualService = """
                apiVersion: networking.istio.io/v1
                kind: VirtualService
                metadata: {name: secure, namespace: \(Self.namespace)}
                spec:
                  hosts: ["secure.example.com", "mutual.example.com"]
                  gateways: [secure-gateway]
                  http:
                  - route: [{destination: {host: httpbin, port: {number: 8000}}}]
                """
            let gateways = "/apis/networking.istio.io/v1/namespaces/\(Self.namespace)/gateways"
            try await MeshHarness("gateway-credentials", files: files).run { mesh in
                let dir = mesh.directory
                let first = dir + "/first", second = dir + "/second"
                try await Self.makeCertificates(in: first, names: ["secure.example.com", "mutual.example.com"])
                try await Self.makeCertificates(in: second, names: ["secure.example.com", "mutual.example.com"])
                let credential = { (certificates: String) in
                    try Self.secret("httpbin-credential", files: ["tls.crt": certificates + "/server.pem", "tls.key": certificates + "/server.key"])
                }

                // Refused with their fields; nothing is served.
                let early = try await mesh.admin(gateways, method: "POST", body: gateway)
                #expect(early.status == 400 && early.body.contains("spec.servers[0].tls.credentialName") && early.body.contains("no Secret istio-system/httpbin-credential"), "\(early.body)")
                let mismatched = try await mesh.admin(Self.secretsPath, method: "POST", body: try Self.secret(
                    "httpbin-credential", files: ["tls.crt": first + "/server.pem", "tls.key": first + "/client.key"]))
                #expect(mismatched.status == 400 && mismatched.body.contains("does not match the certificate"), "\(mismatched.body)")
                #expect(mismatched.body.contains(#"data[\"tls.key\"]"#), "\(mismatched.body)")
                #expect(mesh.controlPlane.store.publisher.current.gateways.isEmpty)

                #expect(try await mesh.admin(Self.secretsPath, method: "POST", body: try credential(first)).status == 201)
                #expect(try await mesh.admin(Self.secretsPath, method: "POST", body: try Self.secret(
                    "httpbin-credential-cacert", type: "Opaque", files: ["ca.crt": first + "/ca.pem"])).status == 201)
                #expect(try await mesh.admin(gateways, method: "POST", body: gateway).status == 201)
                #expect(try await mesh.admin("/apis/networking.istio.io/v1/namespaces/\(Self.namespace)/virtualservices", method: "POST", body: virtualService).status == 201)

                // Answered without data; revealed to an admin only, with an audit line.
                let key = try String(contentsOfFile: first + "/server.key", encoding: .utf8)
                let keyLine = key.split(separator: "\n")[1]
                let shown = try await mesh.admin(Self.secretsPath + "/httpbin-credential")
                #expect(shown.status == 200 && shown.body.contains("meshd.io/redacted") && shown.body.contains("tls.crt,tls.key"), "\(shown.body)")
                #expect(!shown.body.contains("\"data\"") && !shown.body.contains(keyLine))
                let listed = try await mesh.admin(Self.secretsPath)
                #expect(listed.status == 200 && listed.body.contains("httpbin-credential-cacert") && !listed.body.contains("\"data\""))
                let minted = try await mesh.admin("/v1/tokens", method: "POST", body: #"{"role": "reader"}"#)
                let reader = try #require((try? JSONSerialization.jsonObject(with: Data(minted.body.utf8)) as? [String: Any])?["token"] as? String)
                #expect(try await mesh.admin(Self.secretsPath + "/httpbin-credential?reveal=true", token: reader).status == 403)
                let revealed = try await mesh.admin(Self.secretsPath + "/httpbin-credential?reveal=true")
                #expect(revealed.status == 200 && revealed.body.contains(Data(key.utf8).base64EncodedString()), "\(revealed.body.prefix(200))")
                let audit = try await mesh.admin("/v1/audit").body
                #expect(audit.contains("secret.reveal") && audit.contains("Secret istio-system/httpbin-credential"), "\(audit.suffix(600))")
                #expect(!audit.contains(keyLine))

                let app = try await mesh.startApp("httpbin", host: "127.46.2.2", port: 8000)
                app.setBehaviour { request, _ in
                    TestHTTPApp.Reply(body: "httpbin\n", delay: request.path.hasPrefix("/slow") ? .seconds(3) : .zero)
                }
                try await mesh.startSidecar(Self.namespace, "httpbin")
                let proxy = try await mesh.startSidecar("istio-system", "ingressgateway", as: "ingressgateway")
                let resolve = ["--resolve", "secure.example.com:8443:\(address)", "--resolve", "mutual.example.com:8443:\(address)"]
                let secure = "https://secure.example.com:8443/status/200"
                try await Eventually.wait(timeout: .seconds(10), what: "HTTPS with the credential") {
                    (try? await Self.curl(resolve + ["--cacert", first + "/ca.pem", secure], in: dir).code) == "200"
                }
                let client = ["--cert", first + "/client.pem", "--key", first + "/client.key"]
                let mutual = try await Self.curl(resolve + ["--cacert", first + "/ca.pem"] + client + ["https://mutual.example.com:8443/status/200"], in: dir)
                #expect(mutual.code == "200", "MUTUAL with a client certificate the cacert Secret trusts: \(mutual.output)")
                let anonymous = try await Self.curl(resolve + ["--cacert", first + "/ca.pem", "https://mutual.example.com:8443/status/200"], in: dir)
                #expect(anonymous.code == "000", "MUTUAL without a client certificate: \(anonymous.output)")
                #expect(try await Self.curl(resolve + ["--cacert", second + "/ca.pem", secure], in: dir).code == "000", "the new CA does not trust the first certificate")

                // Rotation: a request open on the first certificate finishes; new handshakes get the second.
                let modified = try await proxy.stats(filter: "listener_manager.listener_modified")["listener_manager.listener_modified"] ?? 0
                let slow = try ProcessHandle(
                    executable: "/usr/bin/curl",
                    arguments: ["-sS", "--max-time", "15", "-o", "/dev/null", "-w", "code=%{http_code}\n"] + resolve + ["--cacert", first + "/ca.pem", "https://secure.example.com:8443/slow"],
                    logPath: dir + "/slow-request.log")
                try await Eventually.wait(timeout: .seconds(5), what: "the slow request to reach the app") {
                    app.requests.contains { $0.path == "/slow" }
                }
                let current = try await mesh.admin(Self.secretsPath + "/httpbin-credential")
                let version = try #require((try? JSONSerialization.jsonObject(with: Data(current.body.utf8)) as? [String: Any]).flatMap { ($0["metadata"] as? [String: Any])?["resourceVersion"] as? String })
                let rotated = try credential(second).replacingOccurrences(of: #""namespace": "istio-system"}"#, with: #""namespace": "istio-system", "resourceVersion": "\#(version)"}"#)
                let replaced = try await mesh.admin(Self.secretsPath + "/httpbin-credential", method: "PUT", body: rotated)
                #expect(replaced.status == 200, "\(replaced.body)")
                try await Eventually.wait(timeout: .seconds(10), what: "new handshakes to present the second certificate") {
                    (try? await Self.curl(resolve + ["--cacert", second + "/ca.pem", secure], in: dir).code) == "200"
                }
                #expect(await slow.waitForExit(timeout: .seconds(15)))
                #expect(slow.log.contains("code=200"), "the request open during the rotation finished: \(slow.log)")
                #expect((try await proxy.stats(filter: "listener_manager.listener_modified")["listener_manager.listener_modified"] ?? 0) == modified, "no listener was replaced (no drain)")

                // A Secret in use cannot be deleted.
                let deleted = try await mesh.admin(Self.secretsPath + "/httpbin-credential", method: "DELETE")
                #expect(deleted.status == 409 && deleted.body.contains("Gateway web/secure-gateway"), "\(deleted.body)")
                #expect(try await mesh.envoyHealthProblems().isEmpty)
            }
        }
    }
}
