import CertificateAuthority
import ControlPlane
import EnvoyAPI
import GRPCCore
import SwiftProtobuf
import Foundation
import MeshConfig
import MeshModel
import Synchronization
import SwiftASN1
import Testing
import X509
import XDSTesting

extension EndToEnd {
    /// Certificate rotation under load with STRICT mTLS and real Envoys (addresses 127.28.x.y):
    /// a client sidecar calls a server sidecar in a loop, one TLS handshake per request, and not
    /// one request may fail.
    @Suite("Certificate rotation with zero failed requests")
    struct Rotation {
        static let namespace = "rot"
        static let files: [String: String] = [
            "server.yaml": workloadYAML("server", namespace: namespace, block: 28, host: 2, labels: ["app": "server"], serviceAccount: "server"),
            "client.yaml": workloadYAML("client", namespace: namespace, block: 28, host: 4, labels: ["app": "client"], serviceAccount: "client"),
            "observer.yaml": workloadYAML("observer", namespace: namespace, block: 28, host: 6, labels: ["app": "observer"], serviceAccount: "observer"),
            "service.yaml": serviceYAML("server", namespace: namespace) + """
                ---
                apiVersion: security.istio.io/v1
                kind: PeerAuthentication
                metadata: {name: strict, namespace: rot}
                spec: {mtls: {mode: STRICT}}
                ---
                apiVersion: networking.istio.io/v1
                kind: DestinationRule
                metadata: {name: server, namespace: rot}
                spec:
                  host: server.rot.svc.cluster.local
                  trafficPolicy: {connectionPool: {http: {maxRequestsPerConnection: 1}}}
                """,
        ]
        static let serverAddress = "127.28.2.2"

        /// Starts the app and both sidecars and a request loop from the client.
        static func startMesh(_ mesh: MeshHarness, serverCertificates: String? = nil) async throws -> (server: EnvoyProcess, client: EnvoyProcess, load: RequestLoop) {
            try await mesh.startApp("server", host: serverAddress, port: 8080)
            let server = try await mesh.startSidecar(namespace, "server", certificateDirectory: serverCertificates)
            let client = try await mesh.startSidecar(namespace, "client")
            let load = RequestLoop(to: HostPort(host: "127.28.1.4", port: 8080), authority: "server.rot.svc.cluster.local")
            try await Eventually.wait(timeout: .seconds(10), what: "the first requests through mTLS") { load.counts.ok >= 5 }
            return (server, client, load)
        }

        /// Stops the loop and requires that nothing failed.
        static func expectNoFailures(_ load: RequestLoop, atLeast: Int) async {
            let counts = await load.stop()
            #expect(counts.failures.isEmpty, "\(counts.failures.count) failed requests of \(counts.ok + counts.failures.count): \(counts.failures.prefix(5))")
            #expect(counts.ok >= atLeast, "only \(counts.ok) requests succeeded")
        }

        @Test("workload TTL 60 s: three rotations on open streams, a new serial in Envoy's /certs each time, no failed request")
        func workloadRotation() async throws {
            try await MeshHarness("rotation", files: Self.files, configure: { $0.workloadCertificateTTL = 60 }).run { mesh in
                let (server, client, load) = try await Self.startMesh(mesh)
                var serials: [String: [String]] = [:]
                try await Eventually.wait(timeout: .seconds(140), interval: .milliseconds(500), what: "three rotations on both sidecars") {
                    for envoy in [server, client] {
                        let serial = try await Self.leafSerial(envoy)
                        if serial != serials[envoy.name]?.last { serials[envoy.name, default: []].append(serial) }
                    }
                    return serials.values.count == 2 && serials.values.allSatisfy { $0.count >= 4 }
                }
                for (name, list) in serials {
                    #expect(Set(list).count == list.count, "\(name): every rotation brings a new serial: \(list)")
                }
                let rotations = Self.metric(mesh.controlPlane.metricsText(), "meshd_workload_cert_rotations_total")
                #expect(rotations >= 6, "rotations counted: \(rotations)")
                for envoy in [server, client] {
                    // One connection for ADS (Envoy's main thread) and one for the metrics stream
                    // (its worker thread), neither ever closed.
                    let connections = try await envoy.stats(filter: "xds-grpc.upstream_cx_")
                    #expect(connections["cluster.xds-grpc.upstream_cx_total"] ?? 0 <= 2, "\(envoy.name): \(connections)")
                    #expect(connections["cluster.xds-grpc.upstream_cx_destroy"] == 0, "\(envoy.name): the ADS stream was never restarted: \(connections)")
                }
                await Self.expectNoFailures(load, atLeast: 500)
            }
        }

        @Test("root rotation A→B under load: phases visible, bundle ends with B alone, every leaf from B, a sidecar that trusts only A still reaches meshd")
        func rootRotation() async throws {
            try await MeshHarness("root-rotation", files: Self.files).run { mesh in
                let oldRoot = try #require(mesh.controlPlane.certificates.signingAuthority.roots.first)
                let oldTrust = try mesh.controlPlane.certificates.trustBundlePEM()
                let (server, client, load) = try await Self.startMesh(mesh)
                let unauthenticated = try await HTTPProbe.request(mesh.adminAddress, authority: "meshd", path: "/v1/ca/rotate-root", method: "POST", body: "{}")
                #expect(unauthenticated.status == 401)
                let rotated = try await meshctl(
                    ["ca", "rotate-root", "--wait", "--timeout", "60s", "--server", "http://\(mesh.adminAddress)", "--data-dir", mesh.controlPlane.options.dataDirectory],
                    in: mesh.directory)
                #expect(rotated.status == 0, "\(rotated.output)")
                #expect(rotated.output.contains("root rotation started: 1-distributing-trust") && rotated.output.contains("root rotation complete"), "\(rotated.output)")
                let audit = try String(contentsOfFile: mesh.controlPlane.options.dataDirectory + "/audit.log", encoding: .utf8)
                #expect(audit.contains("ca.rotate-root"), "the rotation is audited")
                try await Eventually.wait(timeout: .seconds(30), interval: .milliseconds(200), what: "the rotation to complete") {
                    let roots = mesh.controlPlane.certificates.signingAuthority.roots
                    return mesh.controlPlane.lifecycle.rotation == nil && roots.count == 1 && roots != [oldRoot]
                }
                let newRoot = try #require(mesh.controlPlane.certificates.signingAuthority.roots.first)
                for envoy in [server, client] {
                    try await Eventually.wait(timeout: .seconds(10), what: "\(envoy.name) to hold the bundle with B alone and a leaf from B") {
                        let bundle = try await Self.rootBundle(envoy)
                        let leaf = try await Self.leafSerial(envoy)
                        let entry = mesh.controlPlane.proxyCertificates.lookup("\(Self.namespace)/\(envoy.name)")
                        return bundle == [newRoot] && entry?.serial == leaf && entry?.issuerKey == SigningAuthority.keyID(newRoot.publicKey)
                    }
                }
                // meshd now serves xDS with a certificate from B; a sidecar whose bootstrap trusts
                // only A verifies it through B signed by A, and gets its configuration.
                try await Eventually.wait(timeout: .seconds(5), what: "meshd's serving certificate from B") {
                    let stored = try String(contentsOfFile: mesh.controlPlane.options.dataDirectory + "/ca/xds-server.json", encoding: .utf8)
                    return stored.contains(SigningAuthority.keyID(newRoot.publicKey))
                }
                let observer = try await mesh.startSidecar(Self.namespace, "observer", xdsTrustBundlePEM: oldTrust)
                #expect(try await Self.rootBundle(observer) == [newRoot])
                await Self.expectNoFailures(load, atLeast: 50)
            }
        }

        @Test("a rotation that fails keeps the current certificate serving, is counted and logged, and is retried with back-off until it works")
        func failingRotation() async throws {
            try await MeshHarness("rotation-fails", files: Self.files, configure: { $0.workloadCertificateTTL = 24; $0.certificateRotationJitter = 0 }).run { mesh in
                let (server, _, load) = try await Self.startMesh(mesh)
                let first = try await Self.leafSerial(server)
                // The ledger cannot be written: meshd must not issue an unrecorded certificate.
                let ledger = mesh.controlPlane.certificates.ledger.path
                try FileManager.default.moveItem(atPath: ledger, toPath: ledger + ".saved")
                try FileManager.default.createDirectory(atPath: ledger, withIntermediateDirectories: false)
                try await Eventually.wait(timeout: .seconds(20), interval: .milliseconds(200), what: "failed rotations to be counted") {
                    Self.metric(mesh.controlPlane.metricsText(), "meshd_workload_cert_rotation_failures_total") >= 3
                }
                let failures = Self.metric(mesh.controlPlane.metricsText(), "meshd_workload_cert_rotation_failures_total")
                #expect(failures < 12, "retries back off (1 s, 2 s, 4 s ...), not every second: \(failures)")
                #expect(try await Self.leafSerial(server) == first, "the current certificate keeps serving")
                try FileManager.default.removeItem(atPath: ledger)
                try FileManager.default.moveItem(atPath: ledger + ".saved", toPath: ledger)
                try await Eventually.wait(timeout: .seconds(20), interval: .milliseconds(200), what: "the retried rotation to succeed") {
                    try await Self.leafSerial(server) != first
                }
                await Self.expectNoFailures(load, atLeast: 50)
            }
        }

        @Test("plug-in CA: a new intermediate is picked up without a restart; a new root goes through the phases; no failed request")
        func pluggedIn() async throws {
            let plugin = try TestTools.temporaryDirectory("plugin-ca")
            let first = try PluginCA.write(to: plugin, name: "first")
            try await MeshHarness("plugin-rotation", files: Self.files, configure: { $0.caDirectory = plugin }).run { mesh in
                let (server, client, load) = try await Self.startMesh(mesh)
                let second = try PluginCA.write(to: plugin, root: first.root, name: "second")
                try await Eventually.wait(timeout: .seconds(15), what: "leaves from the new intermediate on both sidecars") {
                    for envoy in [server, client] {
                        let entry = mesh.controlPlane.proxyCertificates.lookup("\(Self.namespace)/\(envoy.name)")
                        guard entry?.issuerKey == second.signer.keyID, try await Self.leafSerial(envoy) == entry?.serial else { return false }
                    }
                    return true
                }
                let third = try PluginCA.write(to: plugin, name: "third")
                try await Eventually.wait(timeout: .seconds(30), interval: .milliseconds(200), what: "the rotation to the new plug-in root") {
                    mesh.controlPlane.certificates.signingAuthority.roots == [third.root.certificate] && mesh.controlPlane.lifecycle.rotation == nil
                }
                for envoy in [server, client] {
                    try await Eventually.wait(timeout: .seconds(10), what: "\(envoy.name) on the new root") {
                        try await Self.rootBundle(envoy) == [third.root.certificate]
                    }
                }
                await Self.expectNoFailures(load, atLeast: 50)
            }
            try? FileManager.default.removeItem(atPath: plugin)
        }

        @Test("meshctl ca status --fail-within exits non-zero when a CA certificate expires within the window")
        func expiryCheck() async throws {
            try await MeshHarness("ca-status", files: Self.files).run { mesh in
                let server = ["--server", "http://\(mesh.adminAddress)", "--data-dir", mesh.controlPlane.options.dataDirectory]
                let healthy = try await meshctl(["ca", "status", "--fail-within", "30d"] + server, in: mesh.directory)
                #expect(healthy.status == 0, "\(healthy.output)")
                #expect(healthy.output.contains("root"))
                let paging = try await meshctl(["ca", "status", "--fail-within", "4000d"] + server, in: mesh.directory)
                #expect(paging.status == 1 && paging.output.contains("EXPIRING: root"), "\(paging.output)")
                #expect(mesh.controlPlane.metricsText().contains("citadel_server_root_cert_expiry_timestamp"))
            }
        }

        @Test("meshd killed (SIGKILL) and restarted under load: proxies reconnect, no request fails, no re-issuance; a root rotation the kill interrupted resumes and completes")
        func killed() async throws {
            let directory = try TestTools.temporaryDirectory("killed")
            let config = directory + "/config"
            let data = directory + "/data"
            try FileManager.default.createDirectory(atPath: config, withIntermediateDirectories: true)
            for (name, text) in Self.files { try text.write(toFile: config + "/" + name, atomically: true, encoding: .utf8) }
            let admin = HostPort(host: "127.28.0.1", port: 15014)
            let xds = HostPort(host: "127.28.0.1", port: 15012)
            var generation = 0
            func startMeshd() async throws -> ProcessHandle {
                generation += 1
                let meshd = try ProcessHandle(
                    executable: try TestTools.productBinary("meshd"),
                    arguments: [
                        "--config-dir", config, "--data-dir", data, "--xds-address", "\(xds)", "--admin-address", "\(admin)",
                        "--poll-interval", "100ms", "--keep-issued-certificates", directory + "/issued",
                    ],
                    logPath: directory + "/meshd-\(generation).log")
                try await Eventually.wait(timeout: .seconds(20), what: "meshd to serve (log \(meshd.logPath))") {
                    guard meshd.isRunning else { throw HTTPProbe.Failure(description: "meshd exited: \(meshd.log.suffix(1000))") }
                    return (try? await HTTPProbe.request(admin, authority: "meshd", path: "/readyz"))?.status == 200
                }
                return meshd
            }
            var meshd = try await startMeshd()
            var envoys: [EnvoyProcess] = []
            let app = try await TestHTTPApp.start(name: "server", host: Self.serverAddress, port: 8080)
            var stuck: Task<Void, any Error>? = nil
            defer {
                stuck?.cancel()
            }
            do {
                let token = try String(contentsOfFile: data + "/admin-token", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
                let authorization = [("authorization", "Bearer \(token)")]
                for (name, host) in [("server", 2), ("client", 4)] {
                    let bootstrap = try await HTTPProbe.request(admin, authority: "meshd", path: "/v1/bootstrap", method: "POST", headers: authorization, body: "{\"workload\": \"rot/\(name)\"}")
                    #expect(bootstrap.status == 200, "\(bootstrap.body)")
                    let envoy = try EnvoyProcess.start(name: name, bootstrapJSON: bootstrap.body, adminAddress: HostPort(host: "127.28.0.\(host)", port: 15000), directory: directory)
                    envoys.append(envoy)
                    try await envoy.waitUntilReady()
                }
                let load = RequestLoop(to: HostPort(host: "127.28.1.4", port: 8080), authority: "server.rot.svc.cluster.local")
                try await Eventually.wait(timeout: .seconds(10), what: "the first requests") { load.counts.ok >= 5 }
                func sdsIssuances() throws -> Int {
                    try String(contentsOfFile: data + "/ca/issued.jsonl", encoding: .utf8).split(separator: "\n").filter { $0.contains("\"path\":\"sds\"") }.count
                }
                func connectedProxies() async -> Int {
                    let body = (try? await HTTPProbe.request(admin, authority: "meshd", path: "/debug/proxies", headers: authorization))?.body ?? ""
                    return ((try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [Any])?.count ?? 0
                }
                let issuedBefore = try sdsIssuances()
                #expect(issuedBefore == 2)

                await meshd.killNow()
                try await Task.sleep(for: .seconds(1))
                meshd = try await startMeshd()
                try await Eventually.wait(timeout: .seconds(30), interval: .milliseconds(200), what: "both sidecars to reconnect") { await connectedProxies() == 2 }
                #expect(try sdsIssuances() == issuedBefore, "reconnecting proxies reuse their valid certificates")

                // A proxy that never acknowledges its secrets holds the rotation in phase 1. (It keeps
                // its certificate in files, so meshd makes none for it: a leaf from A held by a
                // disconnected proxy would rightly hold phase 2 until it expires.)
                let minted = try await HTTPProbe.request(admin, authority: "meshd", path: "/v1/tokens", method: "POST", headers: authorization, body: "{\"namespace\": \"rot\", \"serviceAccount\": \"observer\"}")
                let observerToken = try #require(try JSONSerialization.jsonObject(with: Data(minted.body.utf8)) as? [String: Any])["token"] as? String
                let bundle = try await HTTPProbe.request(admin, authority: "meshd", path: "/v1/ca/root").body
                var silent = Envoy_Config_Core_V3_Node()
                silent.id = NodeIdentity.nodeID(workload: .init(namespace: Self.namespace, name: "observer"), address: "127.28.0.6")
                silent.metadata.fields[NodeIdentity.certificateDirectoryKey] = Google_Protobuf_Value(stringValue: directory + "/observer-certs")
                let node = silent
                stuck = Task {
                    try await ADSTestClient.withStream(to: xds, security: .tls(trustBundlePEM: bundle), metadata: ["authorization": "Bearer \(observerToken ?? "")"]) { stream in
                        stream.request(XDSTypeURL.cluster, node: node)
                        while true { _ = try await stream.receive(timeout: .seconds(120)) }
                    }
                }
                try await Eventually.wait(timeout: .seconds(10), what: "the silent proxy to connect") { await connectedProxies() == 3 }
                let started = try await HTTPProbe.request(admin, authority: "meshd", path: "/v1/ca/rotate-root", method: "POST", headers: authorization, body: "{}")
                #expect(started.status == 202, "\(started.body)")
                func caStatus() async throws -> CertificateService.Status {
                    try JSONDecoder.iso8601.decode(CertificateService.Status.self, from: Data(try await HTTPProbe.request(admin, authority: "meshd", path: "/v1/ca", headers: authorization).body.utf8))
                }
                try await Eventually.wait(timeout: .seconds(10), what: "phase 1 to wait for the silent proxy") {
                    try await caStatus().rotation?.waitingFor.contains("observer") == true
                }
                let status = try await caStatus()
                #expect(status.rotation?.phase == "1-distributing-trust" && status.roots.count == 2)
                let newRoot = try #require(status.roots.last).fingerprint

                await meshd.killNow()
                try await Task.sleep(for: .seconds(1))
                meshd = try await startMeshd()
                let resumed = try await caStatus()
                #expect(resumed.rotation != nil && resumed.roots.map(\.fingerprint).contains(newRoot), "the restart resumed the rotation: \(resumed)")
                try await Eventually.wait(timeout: .seconds(40), interval: .milliseconds(250), what: "the resumed rotation to complete") {
                    let now = try await caStatus()
                    return now.rotation == nil && now.roots.map(\.fingerprint) == [newRoot]
                }
                for envoy in envoys {
                    try await Eventually.wait(timeout: .seconds(10), what: "\(envoy.name) on the new root") {
                        try await Self.rootBundle(envoy).map(CALifecycle.fingerprint) == [newRoot]
                    }
                }
                await Self.expectNoFailures(load, atLeast: 100)
            } catch {
                for envoy in envoys { await envoy.stop() }
                await app.stop()
                await meshd.killNow()
                throw error
            }
            for envoy in envoys { await envoy.stop() }
            await app.stop()
            #expect(await meshd.stop(timeout: .seconds(10)) == 0)
            let report = try await CertificateChecks.checkDirectory(directory + "/issued")
            for (file, problems) in report where !problems.isEmpty { Issue.record("\(file): \(problems)") }
            try? FileManager.default.removeItem(atPath: directory)
        }

        @Test("the cron path: meshctl cert renew writes key, chain and bundle atomically, does nothing when not due, survives being killed mid-write, and a sidecar serves the files it rotates")
        func cronRenewal() async throws {
            try await MeshHarness("cron", files: Self.files).run { mesh in
                let directory = mesh.directory + "/certs/server"
                let common = [
                    "cert", "renew", "--dir", directory, "--server", "http://\(mesh.adminAddress)", "--xds-address", "\(mesh.xdsAddress)",
                    "--data-dir", mesh.controlPlane.options.dataDirectory,
                ]
                let token = try mesh.token(Self.namespace, "server")
                let first = try await meshctl(common + ["--token", token, "--namespace", Self.namespace, "--service-account", "server"], in: mesh.directory)
                #expect(first.status == 0 && first.output.contains("renewed"), "\(first.output)")
                let files = RenewalDirectory(path: directory)
                let issued = try #require(files.contents())
                #expect(permissions(directory + "/" + (try FileManager.default.destinationOfSymbolicLink(atPath: directory + "/..data")) + "/key.pem") == 0o600)
                try await Self.expectConsistent(directory, in: mesh.directory)
                let version = try FileManager.default.destinationOfSymbolicLink(atPath: directory + "/..data")

                let second = try await meshctl(common, in: mesh.directory)
                #expect(second.status == 0 && second.output.contains("not due"), "\(second.output)")
                #expect(try FileManager.default.destinationOfSymbolicLink(atPath: directory + "/..data") == version, "nothing was rewritten")

                let refused = try await meshctl(common + ["--token", "mdt_bogus", "--force"], in: mesh.directory)
                #expect(refused.status == 1 && refused.output.contains("refused"), "\(refused.output)")
                #expect(files.contents()?.leaf == issued.leaf)

                // Killed between writing the new files and swapping them in.
                let stalled = try ProcessHandle(
                    executable: try TestTools.productBinary("meshctl"), arguments: common + ["--token", token, "--force"],
                    logPath: mesh.directory + "/stalled.log", environment: ProcessInfo.processInfo.environment.merging(["MESHCTL_TEST_STALL_BEFORE_SWAP": "1"]) { $1 })
                try await Eventually.wait(timeout: .seconds(20), what: "meshctl to stall before the swap") { stalled.log.contains("stalled before swap") }
                await stalled.killNow()
                #expect(files.contents()?.leaf == issued.leaf, "the previous files are intact")
                try await Self.expectConsistent(directory, in: mesh.directory)

                // A sidecar serving the files; the client gets its certificate over SDS.
                let (server, _, load) = try await Self.startMesh(mesh, serverCertificates: directory)
                #expect(try await Self.leafSerial(server) == SerialNumbers.hex(issued.leaf.serialNumber))
                // Renewed with the certificate in the directory as the credential.
                let renewed = try await meshctl(common + ["--force"], in: mesh.directory)
                #expect(renewed.status == 0 && renewed.output.contains("renewed"), "\(renewed.output)")
                let next = try #require(files.contents())
                #expect(next.leaf.serialNumber != issued.leaf.serialNumber)
                try await Self.expectConsistent(directory, in: mesh.directory)
                try await Eventually.wait(timeout: .seconds(10), what: "Envoy to load the renewed files") {
                    try await Self.leafSerial(server) == SerialNumbers.hex(next.leaf.serialNumber)
                }
                let served = load.counts.ok
                try await Eventually.wait(timeout: .seconds(10), what: "requests on the renewed certificate") { load.counts.ok >= max(served + 40, 50) }
                let names = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasPrefix("..") }
                #expect(names.count == 2, "old versions and the killed run's leftovers are gone: \(names)")
                await Self.expectNoFailures(load, atLeast: 50)
            }
        }

        /// The directory's key matches its certificate, and the chain verifies against its bundle.
        static func expectConsistent(_ directory: String, in scratch: String) async throws {
            let contents = try #require(RenewalDirectory(path: directory).contents())
            let key = try Certificate.PrivateKey(pemEncoded: contents.keyPEM)
            #expect(key.publicKey == contents.leaf.publicKey, "key.pem belongs to cert-chain.pem")
            let verify = try ProcessHandle(
                executable: "/usr/bin/openssl", arguments: ["verify", "-CAfile", directory + "/root-cert.pem", directory + "/cert-chain.pem"],
                logPath: scratch + "/verify-\(UUID().uuidString.prefix(6)).log")
            #expect(await verify.waitForExit(timeout: .seconds(20)))
            #expect(verify.terminationStatus == 0, "\(verify.log)")
        }

        // MARK: Helpers

        /// The serial of the `default` certificate the sidecar holds (Envoy's /certs).
        static func leafSerial(_ envoy: EnvoyProcess) async throws -> String {
            let body = try await envoy.admin("/certs").body
            let json = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
            let serials = (json?["certificates"] as? [[String: Any]] ?? []).flatMap { entry in
                (entry["cert_chain"] as? [[String: Any]] ?? []).compactMap { $0["serial_number"] as? String }
            }
            guard let first = serials.first, Set(serials).count == 1 else {
                throw HTTPProbe.Failure(description: "\(envoy.name) holds \(Set(serials).count) different certificates: \(serials)")
            }
            return first
        }

        /// The trust bundle in the sidecar's `ROOTCA` secret (Envoy's config dump).
        static func rootBundle(_ envoy: EnvoyProcess) async throws -> [Certificate] {
            let dump = try await envoy.configDump()
            let configs = dump["configs"] as? [[String: Any]] ?? []
            let secrets = configs.flatMap { $0["dynamic_active_secrets"] as? [[String: Any]] ?? [] }
            guard let root = secrets.first(where: { $0["name"] as? String == "ROOTCA" }),
                  let secret = root["secret"] as? [String: Any], let validation = secret["validation_context"] as? [String: Any],
                  let trusted = validation["trusted_ca"] as? [String: Any]
            else { throw HTTPProbe.Failure(description: "\(envoy.name) has no ROOTCA secret") }
            let pem: String
            if let text = trusted["inline_string"] as? String {
                pem = text
            } else if let bytes = trusted["inline_bytes"] as? String, let data = Data(base64Encoded: bytes) {
                pem = String(decoding: data, as: UTF8.self)
            } else {
                throw HTTPProbe.Failure(description: "\(envoy.name)'s ROOTCA holds no inline bundle: \(trusted)")
            }
            return try PEMDocument.parseMultiple(pemString: pem).map { try Certificate(pemDocument: $0) }
        }

        /// The sum of a metric's samples in Prometheus text.
        static func metric(_ text: String, _ name: String) -> Double {
            text.split(separator: "\n").filter { $0.hasPrefix(name) && !$0.hasPrefix("#") }
                .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.reduce(0, +)
        }
    }
}

/// Requests in a loop through a sidecar, counting successes and failures, until stopped.
final class RequestLoop: Sendable {
    struct Counts: Sendable {
        var ok = 0
        var failures: [String] = []
    }

    final class Tally: Sendable {
        let state = Mutex(Counts())
    }

    private let tally = Tally()
    private let task: Task<Void, Never>

    init(to address: HostPort, authority: String, interval: Duration = .milliseconds(20)) {
        let tally = self.tally
        task = Task {
            var index = 0
            while !Task.isCancelled {
                index += 1
                do {
                    let response = try await HTTPProbe.request(address, authority: authority, path: "/load/\(index)", timeout: .seconds(5))
                    if response.status == 200 {
                        tally.state.withLock { $0.ok += 1 }
                    } else {
                        let line = "#\(index): \(response.status) \(response.headers["x-envoy-response-flags"] ?? "") \(response.body.prefix(200))"
                        tally.state.withLock { $0.failures.append(line) }
                    }
                } catch {
                    if Task.isCancelled { break }
                    tally.state.withLock { $0.failures.append("#\(index): \(error)") }
                }
                try? await Task.sleep(for: interval)
            }
        }
    }

    var counts: Counts { tally.state.withLock { $0 } }

    func stop() async -> Counts {
        task.cancel()
        await task.value
        return counts
    }
}

extension JSONDecoder {
    static var iso8601: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}

/// A file's permission bits.
func permissions(_ path: String) -> Int? {
    (try? FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue
}

/// Runs meshctl and returns its exit status and output.
func meshctl(_ arguments: [String], in directory: String, environment: [String: String]? = nil, timeout: Duration = .seconds(30)) async throws -> (status: Int32, output: String) {
    let process = try ProcessHandle(
        executable: try TestTools.productBinary("meshctl"), arguments: arguments,
        logPath: directory + "/meshctl-\(UUID().uuidString.prefix(6)).log", environment: environment)
    #expect(await process.waitForExit(timeout: timeout))
    return (process.terminationStatus ?? -1, process.log)
}
