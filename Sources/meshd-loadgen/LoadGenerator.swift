import ArgumentParser
import CertificateAuthority
import ControlPlane
import EnvoyAPI
import Foundation
import GRPCCore
import Logging
import MeshConfig
import MeshModel
import MeshTranslation
import Metrics
import SwiftProtobuf
import X509
import XDSTesting

/// meshd's load generator and benchmarks (docs/BENCHMARKS.md).
@main
struct LoadGenerator: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meshd-loadgen",
        abstract: "Benchmarks for meshd: N simulated proxies over plain xDS, translation time, certificate issuance.",
        subcommands: [Mesh.self, XDS.self, Translate.self, Issue.self, AccessLogs.self])
}

/// Writes a generated mesh and its node list.
struct Mesh: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write a generated mesh (S services x W workloads) as YAML, and nodes.json.")
    @Option(help: "Number of services (ten per namespace).") var services = 100
    @Option(help: "Workloads per service.") var workloads = 1
    @Option(name: .customLong("config-dir"), help: "A config directory for meshd to write generated.yaml and bench.yaml into (created).") var configDirectory: String
    @Option(help: "Where to write the node list for `meshd-loadgen xds`.") var nodes: String

    func run() throws {
        let mesh = GeneratedMesh(services: services, workloads: workloads)
        try FileManager.default.createDirectory(atPath: configDirectory, withIntermediateDirectories: true)
        try mesh.yaml.write(toFile: configDirectory + "/generated.yaml", atomically: true, encoding: .utf8)
        try GeneratedMesh.benchService(round: 0).write(toFile: configDirectory + "/bench.yaml", atomically: true, encoding: .utf8)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try encoder.encode(mesh.nodes).write(to: URL(fileURLWithPath: nodes))
        print("wrote \(services) services and \(services * workloads) workloads to \(configDirectory), the node list to \(nodes)")
    }
}

/// Opens N ADS streams and measures convergence, memory and CPU.
struct XDS: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "xds",
        abstract: "Open N ADS streams (SotW or delta) as Envoy would, change the config K times, and report convergence, memory and CPU.")
    @Option(help: "The ADS server (host:port), plaintext unless --ca-file.") var target = "127.0.0.1:15012"
    @Option(name: .customLong("ca-file"), help: "Verify the server's TLS certificate against this PEM bundle.") var caFile: String?
    @Option(help: "nodes.json from `meshd-loadgen mesh`.") var nodes: String
    @Option(name: .customLong("node-id"), help: "Node id pattern: {namespace}, {name}, {address}, {serviceAccount}, {index}.")
    var nodeID = "sidecar~{address}~{name}.{namespace}~{namespace}.svc.cluster.local"
    @Option(help: "How many proxies (streams); nodes are reused round-robin.") var proxies = 100
    @Flag(help: "Delta xDS instead of state of the world.") var delta = false
    @Option(help: "Types to subscribe: cds, eds, lds, rds (`none`: open the streams and send nothing).") var types = "cds,eds,lds,rds"
    @Option(name: .customLong("change-dir"), help: "Make each change by writing bench.yaml into this config directory.") var changeDirectory: String?
    @Option(name: .customLong("admin"), help: "Or by PUT through meshd's admin API at host:port...") var admin: String?
    @Option(name: .customLong("admin-token-file"), help: "...with this bearer token.") var adminTokenFile: String?
    @Option(help: "How many changes.") var changes = 5
    @Option(help: "The server's process id, for its memory and CPU (from /proc).") var pid: Int32?
    @Option(name: .customLong("connect-rate"), help: "New streams per second.") var connectRate = 500
    @Option(name: .customLong("server-metrics"), help: "meshd's admin API (host:port; token from --admin-token-file): read its server-side push time after each change.")
    var serverMetrics: String?
    @Option(name: .customLong("after-sync"), help: "A shell command to run once every proxy synced, before the first change (e.g. `callgrind_control -i on PID`).")
    var afterSync: String?
    @Option(name: .customLong("after-changes"), help: "A shell command to run once the last change reached every proxy.")
    var afterChanges: String?
    @Flag(help: "After the last change, check that every proxy holds byte for byte what a full translation of --change-dir gives its workload (exit 1 if not).")
    var verify = false
    @Option(name: .customLong("data-dir"), help: "With --verify: meshd's data directory, whose report keys meshd's listeners carry (Istio's standard metrics); without it the full translation has none.")
    var dataDirectory: String?
    @Flag(name: .customLong("bind-per-cluster"), help: "Send no MESHD_UPSTREAM_BIND node metadata, as a bootstrap made before meshd bound upstream connections in the bootstrap (meshd then binds each mesh cluster).")
    var bindPerCluster = false

    /// What the simulated proxy of `entry` says its bootstrap binds.
    func upstreamBind(_ entry: GeneratedMesh.Node) -> UpstreamBind {
        bindPerCluster ? UpstreamBind() : UpstreamBind(bootstrapAddress: entry.address)
    }

    func run() async throws {
        guard let address = HostPort(target) else { throw ValidationError("--target must be host:port") }
        let list = try JSONDecoder().decode([GeneratedMesh.Node].self, from: Data(contentsOf: URL(fileURLWithPath: nodes)))
        guard !list.isEmpty else { throw ValidationError("\(nodes) lists no node") }
        let security: XDSClientSecurity = try caFile.map { .tls(trustBundlePEM: try String(contentsOfFile: $0, encoding: .utf8)) } ?? .plaintext
        let names = ["cds": XDSTypeURL.cluster, "eds": XDSTypeURL.endpoint, "lds": XDSTypeURL.listener, "rds": XDSTypeURL.route]
        let subscribed = Set(types.split(separator: ",").compactMap { names[String($0)] })
        guard changeDirectory != nil || admin != nil else { throw ValidationError("give --change-dir or --admin to make changes") }

        if verify, changeDirectory == nil { throw ValidationError("--verify reads the configuration from --change-dir") }
        let recorder = Recorder(keepsResources: verify)
        let memoryBefore = pid.flatMap(ProcessFigures.residentBytes)
        let clock = ContinuousClock()
        let started = clock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<proxies {
                let entry = list[index % list.count]
                var node = Envoy_Config_Core_V3_Node()
                node.id = nodeID.replacingOccurrences(of: "{namespace}", with: entry.namespace).replacingOccurrences(of: "{name}", with: entry.name)
                    .replacingOccurrences(of: "{address}", with: entry.address).replacingOccurrences(of: "{serviceAccount}", with: entry.serviceAccount)
                    .replacingOccurrences(of: "{index}", with: String(index))
                if let bind = upstreamBind(entry).bootstrapAddress {
                    node.metadata.fields["MESHD_UPSTREAM_BIND"] = Google_Protobuf_Value(stringValue: bind)
                }
                let proxy = SimulatedProxy(index: index, node: node, address: address, security: security, metadata: [:], types: subscribed, recorder: recorder)
                group.addTask { await proxy.run(delta: delta) }
                if index % max(connectRate / 10, 1) == 0 { try await Task.sleep(for: .milliseconds(100)) }
            }
            try await wait(timeout: .seconds(600), what: "\(proxies) proxies to sync") {
                if !recorder.failures.isEmpty { throw ValidationError("streams failed: \(recorder.failures.prefix(3))") }
                return recorder.syncedCount == proxies
            }
            let connected = clock.now - started
            // Let the server settle before reading its memory.
            try await Task.sleep(for: .seconds(2))
            let memoryAfter = pid.flatMap(ProcessFigures.residentBytes)
            if let afterSync { try Self.shell(afterSync) }
            let cpuBefore = pid.flatMap(ProcessFigures.cpuSeconds)
            let ownCPUBefore = ProcessFigures.cpuSeconds(getpid())
            var latencies: [Duration] = []
            var perRoundMaximum: [Duration] = []
            var serverPushTimes: [Double] = []
            for round in 1...changes {
                let changed = clock.now
                try await applyChange(round: round)
                try await wait(timeout: .seconds(300), what: "change \(round) to reach \(proxies) proxies") {
                    recorder.converged(round: round).count == proxies
                }
                let times = recorder.converged(round: round).values.map { $0 - changed }
                latencies += times
                perRoundMaximum.append(times.max() ?? .zero)
                if let seconds = try await serverPushTime() { serverPushTimes.append(seconds) }
                try await Task.sleep(for: .milliseconds(500))
            }
            let cpuAfter = pid.flatMap(ProcessFigures.cpuSeconds)
            let ownCPUAfter = ProcessFigures.cpuSeconds(getpid())
            if let afterChanges { try Self.shell(afterChanges) }
            if verify, let changeDirectory {
                try await verifyAgainstFullTranslation(configDirectory: changeDirectory, nodes: list, types: subscribed, recorder: recorder)
            }
            group.cancelAll()

            latencies.sort()
            func percentile(_ p: Double) -> String { Self.milliseconds(latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))]) }
            print("proxies: \(proxies) (\(delta ? "delta" : "SotW"), types \(types)), all synced after \(Self.milliseconds(connected)) (\(recorder.retries) streams turned away and retried)")
            print("convergence over \(changes) changes (change applied -> every proxy acknowledged it; debounce included): p50 \(percentile(0.5)) p90 \(percentile(0.9)) p99 \(percentile(0.99)) max \(Self.milliseconds(latencies.last ?? .zero))")
            print("slowest proxy per change: \(perRoundMaximum.map(Self.milliseconds).joined(separator: ", "))")
            if let before = memoryBefore, let after = memoryAfter {
                print("server RSS: \(before / 1024) KiB before, \(after / 1024) KiB with \(proxies) proxies: \((after - before) / proxies / 1024) KiB per proxy")
            }
            if let before = cpuBefore, let after = cpuAfter {
                print(String(format: "server CPU: %.3f s per change (%.2f ms per proxy push)", (after - before) / Double(changes), (after - before) / Double(changes * proxies) * 1000))
            }
            if let before = ownCPUBefore, let after = ownCPUAfter {
                print(String(format: "load generator CPU: %.3f s per change (%.2f ms per simulated proxy)", (after - before) / Double(changes), (after - before) / Double(changes * proxies) * 1000))
            }
            if !serverPushTimes.isEmpty {
                print("server push time per change (publication -> last proxy's responses written): \(serverPushTimes.map { String(format: "%.1f ms", $0 * 1000) }.joined(separator: ", ")); max \(String(format: "%.1f ms", serverPushTimes.max()! * 1000))")
            }
        }
    }

    /// Waits (at most 60 s) until every proxy holds exactly, byte for byte, the resources of the
    /// subscribed types that `SidecarTranslator.translate` gives its workload from the
    /// configuration directory without a memo; throws naming the first proxy that does not.
    func verifyAgainstFullTranslation(configDirectory: String, nodes: [GeneratedMesh.Node], types: Set<String>, recorder: Recorder) async throws {
        let directory = ConfigDirectory(path: configDirectory)
        let snapshot = MeshSnapshot(revision: 1, mesh: try directory.loadMesh(), resources: try directory.load().map(\.resource))
        func workload(_ node: GeneratedMesh.Node) -> ServiceRegistry.WorkloadID { .init(namespace: node.namespace, name: node.name) }
        let keys = try dataDirectory.map { try MetricsReportKeys(dataDirectory: $0) }
        var expected: [ServiceRegistry.WorkloadID: [String: [Data]]] = [:]
        for node in (0..<proxies).map({ nodes[$0 % nodes.count] }) where expected[workload(node)] == nil {
            let reporting = keys.map { MetricsReporting(key: $0.key(for: workload(node))) }
            let configuration = try SidecarTranslator.translate(snapshot, workload: workload(node), upstreamBind: upstreamBind(node), reporting: reporting)
            expected[workload(node)] = Dictionary(uniqueKeysWithValues: types.map { type in
                (type, configuration.resources.sortedResources(ofType: type).map(\.body.value).sorted { $0.lexicographicallyPrecedes($1) })
            })
        }
        func firstDifference() -> String? {
            for index in 0..<proxies {
                let node = nodes[index % nodes.count]
                for type in types.sorted() {
                    let want = expected[workload(node)]![type]!
                    let have = recorder.held(index, type).values.sorted { $0.lexicographicallyPrecedes($1) }
                    if have != want {
                        return "proxy \(index) (\(node.namespace)/\(node.name)) holds \(have.count) \(XDSTypeURL.shortName(type)) resources, a full translation gives \(want.count)"
                            + " (\(Set(have).subtracting(want).count) held that the translation lacks)"
                    }
                }
            }
            return nil
        }
        let deadline = ContinuousClock.now + .seconds(60)
        while let difference = firstDifference() {
            guard ContinuousClock.now < deadline else { throw ValidationError("verification failed after 60 s: \(difference)") }
            try await Task.sleep(for: .milliseconds(200))
        }
        let count = expected.values.reduce(0) { $0 + $1.values.reduce(0) { $0 + $1.count } }
        print("verified: all \(proxies) proxies hold byte for byte what a full translation gives their workloads (\(count) resources over \(expected.count) workloads)")
    }

    /// Runs `command` with /bin/sh and waits for it; throws when it fails. (posix_spawn and
    /// waitpid: Foundation's Process can miss the exit of a shell that leaves a job running.)
    static func shell(_ command: String) throws {
        let words: [String] = ["/bin/sh", "-c", command]
        let arguments = words.map { strdup($0) }
        defer { arguments.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, "/bin/sh", nil, nil, arguments + [nil], environ)
        guard spawned == 0 else { throw ValidationError("cannot run `\(command)`: error \(spawned)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        // Exited normally with status 0.
        guard status & 0x7f == 0, (status >> 8) & 0xff == 0 else { throw ValidationError("`\(command)` failed (wait status \(status))") }
    }

    static func milliseconds(_ duration: Duration) -> String {
        String(format: "%.1f ms", Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15)
    }

    func wait(timeout: Duration, what: String, _ condition: () throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while try !condition() {
            guard ContinuousClock.now < deadline else { throw ValidationError("timed out after \(timeout) waiting for \(what)") }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// meshd's `meshd_push_last_change_seconds`, when --server-metrics is given.
    func serverPushTime() async throws -> Double? {
        guard let serverMetrics else { return nil }
        guard let address = HostPort(serverMetrics) else { throw ValidationError("--server-metrics must be host:port") }
        let token = try adminTokenFile.map { try String(contentsOfFile: $0, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
        let response = try await HTTPProbe.request(address, authority: serverMetrics, path: "/metrics", headers: [("authorization", "Bearer \(token)")])
        guard response.status == 200 else { throw ValidationError("/metrics answered \(response.status): \(response.body.prefix(200))") }
        return response.body.split(separator: "\n").first { $0.hasPrefix("meshd_push_last_change_seconds ") }
            .flatMap { $0.split(separator: " ").last.flatMap { Double($0) } }
    }

    func applyChange(round: Int) async throws {
        let yaml = GeneratedMesh.benchService(round: round)
        if let changeDirectory {
            try yaml.write(toFile: changeDirectory + "/bench.yaml", atomically: true, encoding: .utf8)
            return
        }
        guard let admin, let address = HostPort(admin) else { throw ValidationError("--admin must be host:port") }
        let token = try adminTokenFile.map { try String(contentsOfFile: $0, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
        let path = "/apis/networking.istio.io/v1/namespaces/\(GeneratedMesh.benchNamespace)/serviceentries"
        var response = try await HTTPProbe.request(
            address, authority: admin, path: path + "/bench", method: "PUT",
            headers: [("authorization", "Bearer \(token)"), ("content-type", "application/yaml")], body: yaml)
        if response.status == 404 {
            response = try await HTTPProbe.request(
                address, authority: admin, path: path, method: "POST",
                headers: [("authorization", "Bearer \(token)"), ("content-type", "application/yaml")], body: yaml)
        }
        guard (200..<300).contains(response.status) else { throw ValidationError("the admin API answered \(response.status): \(response.body)") }
    }
}

/// Times the translation of one proxy's configuration.
struct Translate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Time the translation of one proxy's config in a generated mesh.")
    @Option(help: "Number of services.") var services = 1000
    @Option(help: "Workloads per service.") var workloads = 1
    @Option(help: "Namespaces' Sidecars import only their own namespace (false: every proxy sees every service).") var scoped = false
    @Option(help: "Runs to time.") var runs = 20

    func run() throws {
        var mesh = GeneratedMesh(services: services, workloads: workloads)
        var yaml = mesh.yaml
        if !scoped {
            yaml = yaml.replacingOccurrences(of: "egress: [{hosts: [\"./*\", \"\(GeneratedMesh.benchNamespace)/*\"]}]", with: "egress: [{hosts: [\"*/*\"]}]")
        }
        mesh.services = services
        let snapshot = MeshSnapshot(revision: 1, resources: try ResourceDocuments.decode(yaml, source: "generated").map(\.resource))
        let workload = ServiceRegistry.WorkloadID(namespace: mesh.nodes[0].namespace, name: mesh.nodes[0].name)
        let clock = ContinuousClock()
        var times: [Duration] = []
        var resources = 0
        for _ in 0..<(runs + 2) {
            let start = clock.now
            let configuration = try SidecarTranslator.translate(snapshot, workload: workload)
            times.append(clock.now - start)
            resources = configuration.resources.count
        }
        times = Array(times.dropFirst(2)).sorted()
        let scope = scoped ? "Sidecar-scoped to its namespace" : "every service visible"
        print("translate one proxy, \(services) services (\(scope)), \(resources) resources: median \(XDS.milliseconds(times[times.count / 2])), min \(XDS.milliseconds(times[0])), max \(XDS.milliseconds(times.last!)) over \(runs) runs")

        // With a translation memo, as meshd serves: each round is a new revision in which one
        // service (bench's port) changed since the round before; the same snapshot translated
        // without the memo is the comparison (the two alternate which goes first).
        let base = try ResourceDocuments.decode(yaml, source: "generated").map(\.resource)
        let memo = TranslationMemo()
        var memoTimes: [Duration] = []
        var freshTimes: [Duration] = []
        for round in 0..<(runs + 2) {
            let bench = try ResourceDocuments.decode(GeneratedMesh.benchService(round: round), source: "bench").map(\.resource)
            let snapshot = MeshSnapshot(revision: UInt64(round + 1), resources: base + bench)
            for memoFirst in [round % 2 == 0, round % 2 != 0] {
                let start = clock.now
                _ = try SidecarTranslator.translate(snapshot, workload: workload, memo: memoFirst ? memo : nil)
                if memoFirst { memoTimes.append(clock.now - start) } else { freshTimes.append(clock.now - start) }
            }
        }
        memoTimes = Array(memoTimes.dropFirst(2)).sorted()
        freshTimes = Array(freshTimes.dropFirst(2)).sorted()
        let statistics = memo.statistics
        print("translate one proxy after one service changed, new snapshot each run, \(services) services (\(scope)): with the memo median \(XDS.milliseconds(memoTimes[memoTimes.count / 2])) (min \(XDS.milliseconds(memoTimes[0])), max \(XDS.milliseconds(memoTimes.last!))), without median \(XDS.milliseconds(freshTimes[freshTimes.count / 2])) over \(runs) runs; memo \(statistics.hits) hits, \(statistics.misses) misses")
    }
}

/// Certificate issuance rate on one core, next to what openssl does with the same curve.
struct Issue: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Issuance rate (SDS path and CSR path) against `openssl speed ecdsap256`.")
    @Option(help: "Seconds per measurement.") var seconds = 3.0

    func run() async throws {
        let directory = NSTemporaryDirectory() + "meshd-issue-bench-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var generator = SystemRandomNumberGenerator()
        let root = try SigningAuthority.makeSelfSignedRoot(algorithm: .ecdsaP256, trustDomain: "cluster.local", now: Date(), generator: &generator)
        let authority = try SigningAuthority(certificate: root.certificate, privateKey: root.key, chain: [], roots: [root.certificate], mode: .selfSigned)
        var logger = Logger(label: "bench")
        logger.logLevel = .critical
        let service = CertificateService(
            authority: authority, options: .init(), ledger: IssuanceLedger(path: directory + "/issued.jsonl"), logger: logger, metrics: NOOPMetricsHandler.instance)
        let identity = SpiffeID(trustDomain: "cluster.local", namespace: "bench", serviceAccount: "bench")
        let csr = try WorkloadCSR.make(privateKey: try KeyAlgorithm.ecdsaP256.generate(), identity: identity)

        func rate(_ body: () throws -> Void) throws -> Double {
            let clock = ContinuousClock()
            let deadline = clock.now + .milliseconds(Int64(seconds * 1000))
            var count = 0
            let start = clock.now
            while clock.now < deadline {
                try body()
                count += 1
            }
            let elapsed = clock.now - start
            return Double(count) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        }
        let sds = try rate { _ = try service.issueWithNewKey(identity: identity, caller: "bench") }
        let csrRate = try rate { _ = try service.sign(csrPEM: csr, requestedTTL: 0, caller: identity, callerDescription: "bench", path: "bench") }
        let signingOnly = try rate {
            let key = try KeyAlgorithm.ecdsaP256.generate()
            _ = try authority.issueWorkloadCertificate(publicKey: key.publicKey, identity: identity, ttl: 86400, now: Date(), generator: &generator)
        }

        // Where the time goes.
        let keyOnly = try rate { _ = try KeyAlgorithm.ecdsaP256.generate() }
        let fixedKey = try KeyAlgorithm.ecdsaP256.generate()
        let leafOnly = try rate { _ = try authority.issueWorkloadCertificate(publicKey: fixedKey.publicKey, identity: identity, ttl: 86400, now: Date(), generator: &generator) }
        let csrOnly = try rate { _ = try CSRPolicy.check(pem: csr, caller: identity) }

        let (sign, verify) = try await opensslSpeed()
        let sdsBound = 1 / (1 / sign + 1 / sign)
        let csrBound = 1 / (1 / verify + 1 / sign)
        print(String(format: "openssl speed ecdsap256 (%.0f s): %.0f sign/s, %.0f verify/s", seconds, sign, verify))
        print(String(format: "SDS path (P-256 key + signed leaf + ledger): %.0f/s; bound 1/(1/sign+1/sign) = %.0f/s; ratio %.0f %%", sds, sdsBound, sds / sdsBound * 100))
        print(String(format: "CSR path (CSR check + signed leaf + ledger): %.0f/s; bound 1/(1/verify+1/sign) = %.0f/s; ratio %.0f %%", csrRate, csrBound, csrRate / csrBound * 100))
        print(String(format: "SDS path without the ledger (key + leaf only): %.0f/s; ratio %.0f %%", signingOnly, signingOnly / sdsBound * 100))
        print(String(format: "parts: P-256 key generation %.0f/s, leaf certificate (build + sign) %.0f/s, CSR parse + check %.0f/s", keyOnly, leafOnly, csrOnly))
    }

    /// `openssl speed` times itself with SIGALRM: ProcessHandle starts it with no signal blocked.
    func opensslSpeed() async throws -> (sign: Double, verify: Double) {
        let log = NSTemporaryDirectory() + "meshd-openssl-speed-\(UUID().uuidString).txt"
        defer { try? FileManager.default.removeItem(atPath: log) }
        let process = try ProcessHandle(executable: "/usr/bin/openssl", arguments: ["speed", "-seconds", String(Int(seconds)), "ecdsap256"], logPath: log)
        guard await process.waitForExit(timeout: .seconds(Int64(seconds * 4) + 30)) else {
            await process.killNow()
            throw ValidationError("openssl speed did not finish")
        }
        // "256 bits ecdsa (nistp256)   0.0000s   0.0001s  41000.0  13000.0"
        guard let line = process.log.split(separator: "\n").last(where: { $0.contains("nistp256") }) else {
            throw ValidationError("unexpected openssl speed output: \(process.log)")
        }
        let numbers = line.split(separator: " ").compactMap { Double($0) }
        guard numbers.count >= 3, let verify = numbers.last else { throw ValidationError("unexpected openssl speed line: \(line)") }
        return (numbers[numbers.count - 2], verify)
    }
}
