import AdminAPI
import ControlPlane
import Foundation
import MeshConfig
import MeshModel
import Testing
import XDSTesting

extension EndToEnd {
    /// The admin REST API and the meshctl an operator uses (addresses 127.29.x.y, and the example
    /// mesh's 127.0.x.y for the ADR test).
    @Suite("Admin API, durable config and meshctl")
    struct AdminAPI {
        static let namespace = "ops"
        static let files: [String: String] = [
            "server.yaml": workloadYAML("server", namespace: namespace, block: 29, host: 2, labels: ["app": "server", "version": "v1"], serviceAccount: "server"),
            "client.yaml": workloadYAML("client", namespace: namespace, block: 29, host: 4, labels: ["app": "client"], serviceAccount: "client"),
            "services.yaml": serviceYAML("server", namespace: namespace) + "---\n" + serviceYAML("client", namespace: namespace),
        ]
        static let vsPath = "/apis/networking.istio.io/v1/namespaces/ops/virtualservices"

        static func virtualService(_ name: String, prefix: String = "/", extra: String = "") -> String {
            """
            {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "\(name)"\(extra)},
             "spec": {"hosts": ["server"], "http": [{"match": [{"uri": {"prefix": "\(prefix)"}}], "route": [{"destination": {"host": "server"}}]}]}}
            """
        }

        static func object(_ response: HTTPProbe.Response) -> [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any]) ?? [:]
        }

        static func resourceVersion(_ response: HTTPProbe.Response) -> String? {
            (object(response)["metadata"] as? [String: Any])?["resourceVersion"] as? String
        }

        @Test("the ADR's YAML through meshctl apply: Envoys converge (canary routing, mTLS, authorization); governor's suggested Sidecar imports coordinator and istio-system; after a restart of meshd the config and the traffic are unchanged")
        func applyAndRestart() async throws {
            let directory = try TestTools.temporaryDirectory("api-apply")
            let config = directory + "/config", adr = directory + "/adr", data = directory + "/data"
            for folder in [config, adr] { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
            let example = TestTools.packageRoot + "/examples/tai-system"
            for file in ["services.yaml", "sidecars.yaml", "workloads.yaml"] { try FileManager.default.copyItem(atPath: "\(example)/\(file)", toPath: "\(config)/\(file)") }
            for file in ["coordinator-authz.yaml", "coordinator-canary.yaml", "governor-circuit-breaker.yaml", "mtls.yaml", "tracing.yaml"] {
                try FileManager.default.copyItem(atPath: "\(example)/\(file)", toPath: "\(adr)/\(file)")
            }
            let admin = HostPort(host: "127.29.0.1", port: 15014)
            let xds = HostPort(host: "127.29.0.1", port: 15012)
            var generation = 0
            func startMeshd() async throws -> ProcessHandle {
                generation += 1
                let meshd = try ProcessHandle(
                    executable: try TestTools.productBinary("meshd"),
                    arguments: ["--config-dir", config, "--data-dir", data, "--xds-address", "\(xds)", "--admin-address", "\(admin)", "--poll-interval", "100ms", "--traffic-report-interval", "1s"],
                    logPath: directory + "/meshd-\(generation).log")
                try await Eventually.wait(timeout: .seconds(20), what: "meshd to serve") {
                    guard meshd.isRunning else { throw HTTPProbe.Failure(description: "meshd exited: \(meshd.log.suffix(1000))") }
                    return (try? await HTTPProbe.request(admin, authority: "meshd", path: "/readyz"))?.status == 200
                }
                return meshd
            }
            var meshd = try await startMeshd()
            var envoys: [EnvoyProcess] = []
            var apps: [TestHTTPApp] = []
            let server = ["--server", "http://\(admin)", "--data-dir", data]
            do {
                let applied = try await meshctl(["apply", "-f", adr] + server, in: directory)
                #expect(applied.status == 0, "\(applied.output)")
                #expect(applied.output.contains("[1/6]") && applied.output.contains("VirtualService tai-system/coordinator-canary created"), "\(applied.output)")
                let again = try await meshctl(["apply", "-f", adr] + server, in: directory)
                #expect(again.status == 0 && again.output.components(separatedBy: "unchanged").count == 7, "applying again changes nothing: \(again.output)")
                // An invalid document is refused with its field path; nothing else changes.
                try "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: broken, namespace: tai-system}\nspec: {hosts: [coordinator], tcp: [{route: [{destination: {hots: x}}]}]}\n"
                    .write(toFile: directory + "/broken.yaml", atomically: true, encoding: .utf8)
                let broken = try await meshctl(["apply", "-f", directory + "/broken.yaml"] + server, in: directory)
                #expect(broken.status == 1 && broken.output.contains("spec.tcp[0].route[0].destination.hots"), "\(broken.output)")
                let dryRun = try await meshctl(["apply", "--dry-run", "-f", directory + "/broken.yaml"] + server, in: directory)
                #expect(dryRun.status == 1)

                // A Secret: applied as Kubernetes writes it, kept in the 0600 store, shown
                // without its data unless an admin reveals it.
                let credentials = directory + "/credentials"
                try await EndToEnd.Gateways.makeCertificates(in: credentials, names: ["coordinator.example.com"])
                let serverKey = try String(contentsOfFile: credentials + "/server.key", encoding: .utf8)
                let keyLine = String(serverKey.split(separator: "\n")[1])
                let secretYAML = try ["tls.crt": "server.pem", "tls.key": "server.key"].sorted { $0.key < $1.key }.map { key, file in
                    "  \(key): \(Data(try String(contentsOfFile: credentials + "/" + file, encoding: .utf8).utf8).base64EncodedString())"
                }.joined(separator: "\n")
                try "apiVersion: v1\nkind: Secret\nmetadata: {name: coordinator-credential, namespace: tai-system}\ntype: kubernetes.io/tls\ndata:\n\(secretYAML)\n"
                    .write(toFile: directory + "/secret.yaml", atomically: true, encoding: .utf8)
                let secretApplied = try await meshctl(["apply", "-f", directory + "/secret.yaml"] + server, in: directory)
                #expect(secretApplied.status == 0 && secretApplied.output.contains("Secret tai-system/coordinator-credential created"), "\(secretApplied.output)")
                let hidden = try await meshctl(["get", "secret", "coordinator-credential", "-n", "tai-system", "-o", "yaml"] + server, in: directory)
                #expect(hidden.status == 0 && hidden.output.contains("meshd.io/redacted: tls.crt,tls.key") && !hidden.output.contains("\ndata:"), "\(hidden.output)")
                let revealed = try await meshctl(["get", "secret", "coordinator-credential", "-n", "tai-system", "--reveal", "-o", "yaml"] + server, in: directory)
                #expect(revealed.status == 0 && revealed.output.contains(Data(serverKey.utf8).base64EncodedString()), "\(revealed.output)")
                let mode = (try FileManager.default.attributesOfItem(atPath: data + "/config.db")[.posixPermissions] as? NSNumber)?.intValue ?? 0
                #expect(mode & 0o077 == 0, "the store holding Secrets is 0600: \(String(mode, radix: 8))")
                #expect(!meshd.log.contains(keyLine), "no key material in meshd's log")

                for (name, host) in [("coordinator-v1", 4), ("coordinator-v2", 5)] {
                    apps.append(try await TestHTTPApp.start(name: name, host: "127.0.2.\(host)", port: 8080))
                }
                for (workload, host) in [("governor-v1", 2), ("coordinator-v1", 4), ("coordinator-v2", 5)] {
                    // As the README runs a sidecar: the launcher fetches the bootstrap from meshd.
                    let envoy = try EnvoyProcess.start(
                        name: workload, workload: "tai-system/\(workload)", adminAddress: HostPort(host: "127.0.0.\(host)", port: 15000),
                        directory: directory, meshctlArguments: ["--xds-address", "\(xds)"] + server + (MeshHarness.deltaByDefault ? ["--delta"] : []))
                    envoys.append(envoy)
                    try await envoy.waitUntilReady()
                }
                func call(canary: Bool, path: String = "/tai.Governor/Status") async throws -> HTTPProbe.Response {
                    try await HTTPProbe.request(HostPort(host: "127.0.1.2", port: 8080), authority: "coordinator", path: path, headers: canary ? [("user-agent", "canary-tester")] : [])
                }
                func checkTraffic() async throws {
                    var last = ""
                    do {
                        try await Eventually.wait(timeout: .seconds(10), what: "the canary route") {
                            let response = try await call(canary: true)
                            last = "\(response.status) \(response.headers) \(response.body)"
                            return response.body.trimmingCharacters(in: .whitespacesAndNewlines) == "coordinator-v2"
                        }
                    } catch {
                        Issue.record("the canary route: last answer \(last)")
                        throw error
                    }
                    var seen: [String: Int] = [:]
                    for _ in 0..<30 { seen[try await call(canary: false).body.trimmingCharacters(in: .whitespacesAndNewlines), default: 0] += 1 }
                    #expect((seen["coordinator-v1"] ?? 0) >= 20 && Set(seen.keys).isSubset(of: ["coordinator-v1", "coordinator-v2"]), "90/10: \(seen)")
                    #expect(try await call(canary: false, path: "/other").status == 403, "coordinator-authz holds")
                }
                try await checkTraffic()
                let xfcc = try #require(apps[0].requests.last?.headers["x-forwarded-client-cert"])
                #expect(xfcc.contains("spiffe://cluster.local/ns/tai-system/sa/governor"), "the call really used mTLS: \(xfcc)")
                // governor called coordinator only: the suggested Sidecar imports coordinator (from
                // governor's load reports) and istio-system, as Istio does. Envoy counts a cluster
                // from the report after it arrived, so governor keeps calling until one names it.
                var suggested = ""
                try await Eventually.wait(timeout: .seconds(20), interval: .milliseconds(300), what: "a load report of governor naming coordinator") {
                    _ = try await call(canary: false)
                    suggested = try await meshctl(["sidecar", "suggest", "tai-system/governor-v1"] + server, in: directory).output
                    return suggested.contains("#   tai-system/coordinator.tai-system.svc.cluster.local (requests seen)")
                }
                #expect(suggested.contains("#   istio-system/* (the root namespace, as Istio imports it)"), "\(suggested)")
                #expect(!suggested.contains("scheduler.tai-system"), "\(suggested)")
                #expect(suggested.contains("kind: Sidecar") && suggested.contains("bind: 127.0.1.2"), "governor's own Sidecar, its bind kept: \(suggested)")
                let described = try await meshctl(["describe", "tai-system/governor-v1"] + server, in: directory)
                let coordinatorLine = described.output.split(separator: "\n").first { $0.hasPrefix("coordinator.tai-system.svc.cluster.local") } ?? ""
                #expect(coordinatorLine.contains("mTLS") && coordinatorLine.contains("STRICT") && !coordinatorLine.contains("fails"), "describe agrees with what Envoy negotiated: \(described.output)")
                try await Eventually.wait(timeout: .seconds(10), what: "proxy-status SYNCED for the three sidecars") {
                    let status = try await meshctl(["proxy-status"] + server, in: directory)
                    return status.output.split(separator: "\n").filter { $0.hasPrefix("sidecar~") && $0.components(separatedBy: "SYNCED").count == 6 }.count == 3
                }
                let before = try await meshctl(["get", "virtualservices", "-n", "tai-system", "-o", "json"] + server, in: directory)
                /// Each proxy's accepted version per xDS type.
                func acceptedVersions() async throws -> [String: [String: String]] {
                    let status = try await meshctl(["proxy-status", "-o", "json"] + server, in: directory)
                    let proxies = try JSONSerialization.jsonObject(with: Data(status.output.utf8)) as? [[String: Any]] ?? []
                    var out: [String: [String: String]] = [:]
                    for proxy in proxies {
                        let types = proxy["types"] as? [String: [String: Any]] ?? [:]
                        out[proxy["proxyID"] as? String ?? ""] = types.compactMapValues { $0["acceptedVersion"] as? String }
                    }
                    return out
                }
                let versionsBefore = try await acceptedVersions()

                // SIGKILL and restart on the same data directory: what was applied is served again
                // with the same versions (every sidecar, SotW or delta, is SYNCED again without a
                // push), and the traffic is the same.
                await meshd.killNow()
                meshd = try await startMeshd()
                let after = try await meshctl(["get", "virtualservices", "-n", "tai-system", "-o", "json"] + server, in: directory)
                #expect(after.output == before.output, "the applied config survives the restart")
                let secrets = try await meshctl(["get", "secrets", "-n", "tai-system"] + server, in: directory)
                #expect(secrets.output.contains("coordinator-credential"), "the Secret survives the restart: \(secrets.output)")
                let listed = try await meshctl(["get", "pa", "-A", "-o", "wide"] + server, in: directory)
                #expect(listed.output.contains("tai-system  default") && listed.output.contains("api"), "\(listed.output)")
                try await Eventually.wait(timeout: .seconds(30), interval: .milliseconds(250), what: "the sidecars to reconnect") {
                    let status = try await meshctl(["proxy-status"] + server, in: directory)
                    return status.output.split(separator: "\n").filter { $0.hasPrefix("sidecar~") && $0.components(separatedBy: "SYNCED").count == 6 }.count == 3
                }
                let versionsAfter = try await acceptedVersions()
                #expect(versionsAfter == versionsBefore && versionsBefore.values.allSatisfy { $0.count == 5 }, "before: \(versionsBefore)\nafter: \(versionsAfter)")
                try await checkTraffic()
            } catch {
                for envoy in envoys { await envoy.stop() }
                for app in apps { await app.stop() }
                await meshd.killNow()
                throw error
            }
            for envoy in envoys { await envoy.stop() }
            for app in apps { await app.stop() }
            #expect(await meshd.stop(timeout: .seconds(5)) == 0, "meshd exits with 0 within 5 s of SIGTERM")
            try? FileManager.default.removeItem(atPath: directory)
        }

        @Test("writes: validation with the field path, resourceVersion conflicts, read-only files, dry run, roles, rate limits, audit")
        func writes() async throws {
            try await MeshHarness("api-writes", files: Self.files, configure: { $0.adminRateLimit = 1; $0.adminRateBurst = 25 }).run { mesh in
                // Invalid: refused with the field path; nothing stored.
                let invalid = try await mesh.admin(Self.vsPath, method: "POST", body: #"{"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "bad"}, "spec": {"hostz": ["server"]}}"#)
                #expect(invalid.status == 400, "\(invalid.body)")
                #expect(Self.object(invalid)["field"] as? String == "spec.hostz", "\(invalid.body)")
                #expect(try await mesh.admin(Self.vsPath + "/bad").status == 404)
                let revision = mesh.controlPlane.store.revision

                // YAML body; create, conflict on create, replace with the current and a stale version.
                let created = try await mesh.admin(Self.vsPath, method: "POST", body: "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: web}\nspec: {hosts: [server], http: [{route: [{destination: {host: server}}]}]}\n", headers: [("content-type", "application/yaml")])
                #expect(created.status == 201, "\(created.body)")
                let version = try #require(Self.resourceVersion(created))
                #expect(mesh.controlPlane.store.revision == revision + 1)
                #expect(try await mesh.admin(Self.vsPath, method: "POST", body: Self.virtualService("web")).status == 409)
                let stale = try await mesh.admin(Self.vsPath + "/web", method: "PUT", body: Self.virtualService("web", prefix: "/v2", extra: #", "resourceVersion": "0""#))
                #expect(stale.status == 409 && stale.body.contains("resourceVersion"), "\(stale.body)")
                let replaced = try await mesh.admin(Self.vsPath + "/web", method: "PUT", body: Self.virtualService("web", prefix: "/v2", extra: #", "resourceVersion": "\#(version)""#))
                #expect(replaced.status == 200, "\(replaced.body)")
                let current = try #require(Self.resourceVersion(replaced))
                #expect(current != version)
                let fetched = try await mesh.admin(Self.vsPath + "/web")
                #expect(fetched.body.contains("/v2") && fetched.body.contains("\"meshd.io/source\": \"api\""), "\(fetched.body)")

                // Dry run changes nothing.
                let dry = try await mesh.admin(Self.vsPath + "?dryRun=All", method: "POST", body: Self.virtualService("dry"))
                #expect(dry.status == 200, "\(dry.body)")
                #expect(try await mesh.admin(Self.vsPath + "/dry").status == 404)

                // Resources from the config directory are read-only here.
                let filePath = "/apis/networking.istio.io/v1/namespaces/ops/serviceentries/server"
                let fileResource = try await mesh.admin(filePath)
                #expect(fileResource.body.contains("file "), "\(fileResource.body)")
                let readOnly = try await mesh.admin(filePath, method: "DELETE")
                #expect(readOnly.status == 409 && readOnly.body.contains("read-only"), "\(readOnly.body)")

                // A file may not define what the API did; the change is refused whole.
                try mesh.writeConfig("clash.yaml", "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: web, namespace: ops}\nspec: {hosts: [server]}\n")
                try await Eventually.wait(timeout: .seconds(5), what: "the clashing file to be refused") {
                    try await mesh.admin("/debug/config").body.contains("also applied through the API")
                }
                #expect(try await mesh.admin(Self.vsPath + "/web").body.contains("/v2"), "the API's resource is still served")
                try FileManager.default.removeItem(atPath: mesh.configDirectory + "/clash.yaml")

                // Delete: a stale version is refused, then it goes.
                #expect(try await mesh.admin(Self.vsPath + "/web?resourceVersion=0", method: "DELETE").status == 409)
                #expect(try await mesh.admin(Self.vsPath + "/web?resourceVersion=\(current)", method: "DELETE").status == 200)
                #expect(try await mesh.admin(Self.vsPath + "/web").status == 404)

                // Roles.
                let anonymous = try await HTTPProbe.request(mesh.adminAddress, authority: "meshd", path: Self.vsPath)
                #expect(anonymous.status == 401)
                let minted = try await mesh.admin("/v1/tokens", method: "POST", body: #"{"role": "reader"}"#)
                #expect(minted.status == 201, "\(minted.body)")
                let reader = try #require(Self.object(minted)["token"] as? String)
                #expect(try await mesh.admin(Self.vsPath, token: reader).status == 200)
                #expect(try await mesh.admin("/metrics", token: reader).status == 200)
                #expect(try await mesh.admin(Self.vsPath, method: "POST", body: Self.virtualService("x"), token: reader).status == 403)
                let workloadToken = try mesh.token(Self.namespace, "client")
                #expect(try await mesh.admin(Self.vsPath, token: workloadToken).status == 403)
                #expect(try await HTTPProbe.request(mesh.adminAddress, authority: "meshd", path: "/healthz").status == 200, "health stays open")

                // The audit log is fail-closed: a change whose line cannot be written is refused
                // with 503 and changes nothing.
                let auditPath = mesh.controlPlane.audit.path
                try FileManager.default.moveItem(atPath: auditPath, toPath: auditPath + ".kept")
                try FileManager.default.createDirectory(atPath: auditPath, withIntermediateDirectories: false)
                let unaudited = try await mesh.admin(Self.vsPath, method: "POST", body: Self.virtualService("unaudited"))
                #expect(unaudited.status == 503 && unaudited.body.contains("audit log"), "\(unaudited.body)")
                #expect(try await mesh.admin(Self.vsPath + "/unaudited").status == 404)
                try FileManager.default.removeItem(atPath: auditPath)
                try FileManager.default.moveItem(atPath: auditPath + ".kept", toPath: auditPath)

                // A failure of the token store is a 500 with its reason, not an empty answer.
                let tokensPath = mesh.controlPlane.options.dataDirectory + "/tokens.json"
                try FileManager.default.moveItem(atPath: tokensPath, toPath: tokensPath + ".kept")
                try FileManager.default.createDirectory(atPath: tokensPath, withIntermediateDirectories: false)
                let storeDown = try await mesh.admin("/v1/tokens", method: "POST", body: #"{"role": "reader"}"#)
                #expect(storeDown.status == 500 && (Self.object(storeDown)["message"] as? String ?? "").contains("POST /v1/tokens failed"), "\(storeDown.body)")
                try FileManager.default.removeItem(atPath: tokensPath)
                try FileManager.default.moveItem(atPath: tokensPath + ".kept", toPath: tokensPath)

                // A burst of changes is cut off with 429, which says when to retry.
                var statuses: [Int] = []
                var retryAfter: [String] = []
                for index in 0..<30 {
                    let answer = try await mesh.admin(Self.vsPath + "/none-\(index)", method: "DELETE")
                    statuses.append(answer.status)
                    if answer.status == 429 { retryAfter.append(answer.headers["retry-after"] ?? "none") }
                }
                #expect(statuses.contains(429) && statuses.contains(404), "\(statuses)")
                #expect(!retryAfter.isEmpty && retryAfter.allSatisfy { (Int($0) ?? 0) >= 1 }, "Retry-After: \(retryAfter)")

                // Every change and refusal is in the audit log, and meshctl shows it.
                let audit = try await meshctl(["audit", "--server", "http://\(mesh.adminAddress)", "--data-dir", mesh.controlPlane.options.dataDirectory], in: mesh.directory)
                #expect(audit.status == 0, "\(audit.output)")
                for action in ["resource.create", "resource.replace", "resource.delete", "forbidden", "rate limited", "token.create"] {
                    #expect(audit.output.contains(action), "the audit log shows \(action): \(audit.output)")
                }
            }
        }

        @Test("meshctl apply of 500 documents succeeds: it waits as 429's Retry-After says")
        func largeApply() async throws {
            try await MeshHarness("api-large-apply", files: Self.files, configure: { $0.adminRateLimit = 25; $0.adminRateBurst = 20 }).run { mesh in
                let documents = (0..<500).map { index in
                    """
                    apiVersion: networking.istio.io/v1
                    kind: ServiceEntry
                    metadata: {name: external-\(index), namespace: ops}
                    spec: {hosts: [external-\(index).example.com], location: MESH_EXTERNAL, resolution: DNS, ports: [{number: 443, name: tls, protocol: TLS}]}
                    """
                }
                let file = mesh.directory + "/many.yaml"
                try documents.joined(separator: "\n---\n").write(toFile: file, atomically: true, encoding: .utf8)
                let applied = try await meshctl(
                    ["apply", "-f", file, "--server", "http://\(mesh.adminAddress)", "--data-dir", mesh.controlPlane.options.dataDirectory], in: mesh.directory,
                    timeout: .seconds(120))
                #expect(applied.status == 0, "\(applied.output.suffix(2000))")
                #expect(applied.output.contains("[500/500] ServiceEntry ops/external-499 created"), "\(applied.output.suffix(500))")
                let listed = try await mesh.admin("/apis/networking.istio.io/v1/namespaces/ops/serviceentries")
                #expect(listed.body.components(separatedBy: ".example.com").count - 1 == 500)
                #expect(try await mesh.admin("/metrics").status == 200)
                let limited = mesh.controlPlane.audit.entries().filter { $0.result == "rate limited" }.count
                #expect(limited > 0, "the apply went faster than the limit allows, so it must have been turned away and retried")
            }
        }

        @Test("proxy-status: SYNCED everywhere, then ERROR with Envoy's message for a route Envoy rejects; proxy-config shows what was sent, never a key")
        func proxyStatus() async throws {
            try await MeshHarness("api-status", files: Self.files).run { mesh in
                try await mesh.startApp("server", host: "127.29.2.2", port: 8080)
                try await mesh.startSidecar(Self.namespace, "server")
                try await mesh.startSidecar(Self.namespace, "client")
                let server = ["--server", "http://\(mesh.adminAddress)", "--data-dir", mesh.controlPlane.options.dataDirectory]
                try await Eventually.wait(timeout: .seconds(10), what: "every proxy SYNCED") {
                    let status = try await meshctl(["proxy-status"] + server, in: mesh.directory)
                    let rows = status.output.split(separator: "\n").filter { $0.hasPrefix("sidecar~") }
                    return rows.count == 2 && rows.allSatisfy { $0.components(separatedBy: "SYNCED").count == 6 }
                }
                // RE2 has no look-behind: meshd passes the regex on, Envoy rejects the routes.
                let rejected = try await mesh.admin(Self.vsPath, method: "POST", body: """
                    {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "lookbehind"},
                     "spec": {"hosts": ["server"], "http": [{"match": [{"uri": {"regex": "(?<=a)b"}}], "route": [{"destination": {"host": "server"}}]}]}}
                    """)
                #expect(rejected.status == 201, "\(rejected.body)")
                try await Eventually.wait(timeout: .seconds(10), what: "the client's RDS in ERROR with Envoy's message") {
                    let status = try await meshctl(["proxy-status"] + server, in: mesh.directory)
                    return status.output.contains("ERROR") && status.output.contains("RDS rejected:")
                }
                #expect(mesh.controlPlane.metricsText().contains("pilot_total_xds_rejects{type=\"rds\"} 1") || mesh.controlPlane.metricsText().contains("pilot_total_xds_rejects{type=\"rds\"} 2"))
                let routes = try await meshctl(["proxy-config", "route", "ops/client"] + server, in: mesh.directory)
                #expect(routes.status == 0 && routes.output.contains("server.ops.svc.cluster.local"), "\(routes.output)")
                let secrets = try await meshctl(["proxy-config", "secret", "ops/client", "-o", "json"] + server, in: mesh.directory)
                #expect(secrets.status == 0 && secrets.output.contains("[redacted]") && !secrets.output.contains("PRIVATE KEY"), "\(secrets.output.prefix(400))")
                let clusters = try await meshctl(["proxy-config", "cluster", "ops/client"] + server, in: mesh.directory)
                #expect(clusters.output.contains("outbound|8080||server.ops.svc.cluster.local"), "\(clusters.output)")
                // Back to a valid configuration: SYNCED again.
                #expect(try await mesh.admin(Self.vsPath + "/lookbehind", method: "DELETE").status == 200)
                try await Eventually.wait(timeout: .seconds(10), what: "SYNCED again") {
                    !(try await meshctl(["proxy-status"] + server, in: mesh.directory)).output.contains("ERROR")
                }
                let metrics = mesh.controlPlane.metricsText()
                for name in ["pilot_xds 2", "pilot_xds_pushes{type=\"cds\"}", "pilot_proxy_convergence_time", "pilot_xds_push_time", "citadel_server_csr_count"] {
                    #expect(metrics.contains(name), "/metrics has \(name)")
                }
            }
        }

        @Test("meshctl diff and apply --dry-run: the proxies a change would touch, field by field, nothing applied; a no-op changes no proxy and exits 0")
        func diff() async throws {
            try await MeshHarness("api-diff", files: Self.files).run { mesh in
                let server = ["--server", "http://\(mesh.adminAddress)", "--data-dir", mesh.controlPlane.options.dataDirectory]
                let change = mesh.directory + "/timeout.yaml"
                try """
                    apiVersion: networking.istio.io/v1
                    kind: VirtualService
                    metadata: {name: server-timeout, namespace: ops}
                    spec: {hosts: [server], http: [{timeout: 3s, route: [{destination: {host: server}}]}]}
                    """.write(toFile: change, atomically: true, encoding: .utf8)
                let diff = try await meshctl(["diff", "-f", change] + server, in: mesh.directory)
                #expect(diff.status == 1, "\(diff.output)")
                #expect(diff.output.contains("proxy ops/client:") && diff.output.contains("~ rds 8080") && diff.output.contains("timeout: \"0s\" → \"3s\""), "\(diff.output)")
                let json = try await meshctl(["diff", "-f", change, "-o", "json"] + server, in: mesh.directory)
                let parsed = try #require(try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any], "\(json.output)")
                #expect((parsed["proxies"] as? [[String: Any]])?.compactMap { $0["workload"] as? String }.contains("ops/client") == true)
                // kubectl's spelling, --dry-run=server, is the same.
                let dryRun = try await meshctl(["apply", "--dry-run=server", "-f", change] + server, in: mesh.directory)
                #expect(dryRun.status == 0 && dryRun.output.contains("VirtualService ops/server-timeout created (dry run)") && dryRun.output.contains("proxy ops/client:"), "\(dryRun.output)")
                #expect(try await mesh.admin(Self.vsPath + "/server-timeout").status == 404, "nothing applied")
                let same = try await meshctl(["diff", "-f", mesh.configDirectory + "/services.yaml"] + server, in: mesh.directory)
                #expect(same.status == 0 && same.output.contains("No proxy's configuration would change"), "\(same.output)")
            }
        }

        @Test("analyze: quiet on a clean mesh; finds unknown hosts and subsets, conflicting hosts, empty subsets, rules for unknown hosts, and STRICT servers told to take plaintext")
        func analyze() async throws {
            try await MeshHarness("api-analyze", files: Self.files).run { mesh in
                let server = ["analyze", "--server", "http://\(mesh.adminAddress)", "--data-dir", mesh.controlPlane.options.dataDirectory]
                let clean = try await meshctl(server, in: mesh.directory)
                #expect(clean.status == 0 && clean.output.contains("No validation issues"), "\(clean.output)")
                try mesh.writeConfig("problems.yaml", """
                    apiVersion: networking.istio.io/v1
                    kind: VirtualService
                    metadata: {name: to-nowhere, namespace: ops}
                    spec: {hosts: [server], http: [{route: [{destination: {host: nowhere}}, {destination: {host: server, subset: v9}}]}]}
                    ---
                    apiVersion: networking.istio.io/v1
                    kind: VirtualService
                    metadata: {name: also-server, namespace: ops}
                    spec: {hosts: [server.ops.svc.cluster.local], http: [{route: [{destination: {host: server}}]}]}
                    ---
                    apiVersion: networking.istio.io/v1
                    kind: DestinationRule
                    metadata: {name: server, namespace: ops}
                    spec:
                      host: server
                      trafficPolicy: {tls: {mode: DISABLE}}
                      subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
                    ---
                    apiVersion: networking.istio.io/v1
                    kind: DestinationRule
                    metadata: {name: ghost, namespace: ops}
                    spec: {host: ghost.ops.svc.cluster.local}
                    ---
                    apiVersion: security.istio.io/v1
                    kind: PeerAuthentication
                    metadata: {name: strict, namespace: ops}
                    spec: {mtls: {mode: STRICT}}
                    """)
                try await Eventually.wait(timeout: .seconds(5), what: "the seeded config to be served") {
                    mesh.controlPlane.store.publisher.current.destinationRules.count == 2
                }
                let found = try await meshctl(server, in: mesh.directory)
                #expect(found.status == 1, "errors make analyze exit 1: \(found.output)")
                for expected in [
                    "[IST0101] (VirtualService ops/to-nowhere) spec.http[0].route[0].destination.host",
                    "[IST0101] (VirtualService ops/to-nowhere) spec.http[0].route[1].destination.subset",
                    "[IST0109] (VirtualService ops/also-server)", "[IST0109] (VirtualService ops/to-nowhere)",
                    "[IST0173] (DestinationRule ops/server) spec.subsets[1] v2",
                    "Warning [IST0174] (DestinationRule ops/ghost)",
                    "[IST0113] (DestinationRule ops/server)",
                ] {
                    #expect(found.output.contains(expected), "analyze reports \(expected): \(found.output)")
                }
                #expect(!found.output.contains("subsets[0]"), "subset v1 selects the server")
            }
        }

        @Test("the OpenAPI document holds against the running server under schemathesis: no 5xx, no schema or status violations")
        func openAPI() async throws {
            try await MeshHarness("api-openapi", files: Self.files, configure: { $0.adminRateBurst = 100_000; $0.adminRateLimit = 100_000 }).run { mesh in
                let process = try ProcessHandle(
                    executable: try TestTools.schemathesis(),
                    arguments: [
                        "run", "http://\(mesh.adminAddress)/openapi.json", "--header", "Authorization: Bearer \(mesh.adminToken)",
                        "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
                        "--max-examples", "12", "--seed", "1", "--workers", "1",
                    ],
                    logPath: mesh.directory + "/schemathesis.log", environment: ProcessInfo.processInfo.environment.merging(["NO_COLOR": "1"]) { $1 })
                #expect(await process.waitForExit(timeout: .seconds(240)), "schemathesis finishes")
                #expect(process.terminationStatus == 0, "schemathesis found problems:\n\(process.log.suffix(6000))")
                #expect(process.log.contains("passed") || process.log.contains("Passed"), "\(process.log.suffix(2000))")
            }
        }

        @Test("a real Prometheus scrapes /metrics with a reader token: up is 1 and pilot_xds is the number of connected Envoys")
        func prometheus() async throws {
            try await MeshHarness("api-prometheus", files: Self.files).run { mesh in
                try await mesh.startApp("server", host: "127.29.2.2", port: 8080)
                try await mesh.startSidecar(Self.namespace, "server")
                try await mesh.startSidecar(Self.namespace, "client")
                let minted = try await mesh.admin("/v1/tokens", method: "POST", body: #"{"role": "reader"}"#)
                let reader = try #require(Self.object(minted)["token"] as? String)
                let directory = mesh.directory + "/prometheus"
                try FileManager.default.createDirectory(atPath: directory + "/data", withIntermediateDirectories: true)
                try reader.write(toFile: directory + "/token", atomically: true, encoding: .utf8)
                try """
                    global: {scrape_interval: 1s, evaluation_interval: 1s}
                    scrape_configs:
                    - job_name: meshd
                      metrics_path: /metrics
                      authorization: {type: Bearer, credentials_file: \(directory)/token}
                      static_configs: [{targets: ["\(mesh.adminAddress)"]}]
                    """.write(toFile: directory + "/prometheus.yml", atomically: true, encoding: .utf8)
                let listen = HostPort(host: "127.29.0.9", port: 9090)
                let prometheus = try ProcessHandle(
                    executable: try TestTools.prometheus(),
                    arguments: ["--config.file", directory + "/prometheus.yml", "--storage.tsdb.path", directory + "/data", "--web.listen-address", "\(listen)"],
                    logPath: directory + "/prometheus.log")
                defer { Task { await prometheus.killNow() } }
                func query(_ expression: String) async -> Double? {
                    let path = "/api/v1/query?query=" + (expression.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
                    guard let response = try? await HTTPProbe.request(listen, authority: "\(listen)", path: path),
                          let object = try? JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any],
                          let result = (object["data"] as? [String: Any])?["result"] as? [[String: Any]], let value = result.first?["value"] as? [Any],
                          let text = value.last as? String
                    else { return nil }
                    return Double(text)
                }
                try await Eventually.wait(timeout: .seconds(40), interval: .milliseconds(500), what: "Prometheus to scrape meshd (log \(directory)/prometheus.log)") {
                    guard prometheus.isRunning else { throw HTTPProbe.Failure(description: "prometheus exited: \(prometheus.log.suffix(1000))") }
                    let up = await query("up{job=\"meshd\"}")
                    let proxies = await query("pilot_xds{job=\"meshd\"}")
                    return up == 1 && proxies == 2
                }
                await prometheus.killNow()
            }
        }
    }
}
