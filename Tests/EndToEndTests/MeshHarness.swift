import CertificateAuthority
import ControlPlane
import Foundation
import Logging
import MeshConfig
import MeshModel
import MeshTranslation
import Testing
import XDSTesting

/// The parent of every suite that runs real processes: they run one at a time.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct EndToEnd {}

/// One in-process meshd on ephemeral loopback ports, the Envoys and apps a test starts, and
/// teardown in the right order (Envoys, then apps, then meshd).
final class MeshHarness: @unchecked Sendable {
    let directory: String
    let configDirectory: String
    private(set) var controlPlane: ControlPlane
    private var task: Task<Void, any Error>
    private(set) var envoys: [EnvoyProcess] = []
    private(set) var apps: [TestHTTPApp] = []
    private(set) var xdsPort: Int
    private(set) var adminPort: Int
    private let logger: Logger

    /// Starts meshd on `files` (name -> YAML); `configure` adjusts the options (TLS xDS and
    /// token-authenticated proxies by default, as in production).
    init(_ label: String, files: [String: String], pollInterval: Duration = .milliseconds(100), configure: (inout ControlPlaneOptions) -> Void = { _ in }) async throws {
        directory = try TestTools.temporaryDirectory(label)
        configDirectory = directory + "/config"
        try FileManager.default.createDirectory(atPath: configDirectory, withIntermediateDirectories: true)
        for (name, text) in files {
            try text.write(toFile: "\(configDirectory)/\(name)", atomically: true, encoding: .utf8)
        }
        var logger = Logger(label: "meshd-\(label)")
        logger.logLevel = ProcessInfo.processInfo.environment["MESHD_TEST_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
        var options = ControlPlaneOptions(
            configDirectory: configDirectory, dataDirectory: directory + "/data",
            xdsAddress: HostPort(host: "127.0.0.1", port: 0), adminAddress: HostPort(host: "127.0.0.1", port: 0),
            pollInterval: pollInterval, issuedCertificateCopies: directory + "/issued")
        configure(&options)
        self.logger = logger
        let controlPlane = try ControlPlane(options: options, logger: logger)
        self.controlPlane = controlPlane
        task = Task { try await controlPlane.run() }
        xdsPort = await controlPlane.boundXDSPort()
        adminPort = await controlPlane.boundAdminPort()
        guard xdsPort > 0, adminPort > 0 else {
            task.cancel()
            throw HTTPProbe.Failure(description: "meshd did not start listening")
        }
    }

    var xdsAddress: HostPort { HostPort(host: "127.0.0.1", port: UInt32(xdsPort)) }

    /// Stops meshd and starts it again on the same data directory and ports, with the Envoys and
    /// apps left running (they reconnect as they would to a restarted meshd).
    func restartControlPlane() async throws {
        await stopControlPlane()
        var options = controlPlane.options
        options.xdsAddress.port = UInt32(xdsPort)
        options.adminAddress.port = UInt32(adminPort)
        // The old listeners may take a moment to close.
        var failure = ""
        for _ in 0..<50 {
            let restarted = try ControlPlane(options: options, logger: logger)
            controlPlane = restarted
            task = Task { try await restarted.run() }
            let ports = (await restarted.boundXDSPort(), await restarted.boundAdminPort())
            if ports == (xdsPort, adminPort) { return }
            if case .failure(let error) = await task.result { failure = "\(error)" }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw HTTPProbe.Failure(description: "the restarted meshd did not listen on its ports again: \(failure)")
    }

    /// Stops meshd as SIGTERM would (cancelling only when it is not serving yet) and waits for it.
    func stopControlPlane() async {
        if !(await controlPlane.shutdown()) { task.cancel() }
        _ = await task.result
    }

    /// How a test client reaches the xDS port (TLS verified against meshd's root, unless plaintext).
    var security: XDSClientSecurity {
        controlPlane.options.xdsPlaintext ? .plaintext : .tls(trustBundlePEM: (try? controlPlane.certificates.trustBundlePEM()) ?? "")
    }

    /// A token for a namespace and service account, as `meshctl token create` mints it.
    func token(_ namespace: String, _ serviceAccount: String) throws -> String {
        try controlPlane.tokens.mint(namespace: namespace, serviceAccount: serviceAccount, ttl: nil).token
    }
    var adminAddress: HostPort { HostPort(host: "127.0.0.1", port: UInt32(adminPort)) }

    /// Whether sidecars use delta xDS: `MESHD_TEST_XDS=delta` runs the end-to-end suites in delta
    /// mode (scripts/test.sh runs them in both modes).
    static let deltaByDefault = ProcessInfo.processInfo.environment["MESHD_TEST_XDS"] == "delta"

    /// Starts the sidecar of a workload of the current configuration and waits until it is ready.
    @discardableResult
    ///
    /// With `legacyBind` the bootstrap is the one meshd made before it bound upstream connections
    /// in the bootstrap: no `cluster_manager` bind and no `MESHD_UPSTREAM_BIND` metadata (meshd
    /// then binds each mesh cluster itself).
    func startSidecar(
        _ namespace: String, _ name: String, as label: String? = nil, certificateDirectory: String? = nil, xdsTrustBundlePEM: String? = nil,
        delta: Bool = MeshHarness.deltaByDefault, legacyBind: Bool = false
    ) async throws -> EnvoyProcess {
        let snapshot = controlPlane.store.publisher.current
        let workload = try #require(snapshot.registry.workload(.init(namespace: namespace, name: name)))
        // As meshd's bootstrap endpoint: a gateway when a Gateway selects the workload.
        let bootstrap = BootstrapBuilder(
            workload: workload, xdsAddress: xdsAddress, token: try token(workload.namespace, workload.serviceAccount),
            xdsTrustBundlePEM: controlPlane.options.xdsPlaintext ? nil : try xdsTrustBundlePEM ?? controlPlane.certificates.trustBundlePEM(),
            certificateDirectory: certificateDirectory, delta: delta, kind: ProxyKind.of(workload, in: snapshot), fips: snapshot.settings.fips)
        var config = bootstrap.configValue
        if legacyBind, case .object(var object) = config, case .object(var node)? = object["node"], case .object(var metadata)? = node["metadata"] {
            object["cluster_manager"] = nil
            metadata[NodeIdentity.upstreamBindKey] = nil
            node["metadata"] = .object(metadata)
            object["node"] = .object(node)
            config = .object(object)
        }
        let envoy = try EnvoyProcess.start(
            name: label ?? name, bootstrapJSON: ConfigJSON.encode(config, pretty: true),
            adminAddress: bootstrap.effectiveAdminAddress, directory: directory)
        envoys.append(envoy)
        try await envoy.waitUntilReady()
        return envoy
    }

    /// Starts a proxy that registers into WorkloadGroup `group` at `address` (Istio's
    /// auto-registration), with a bootstrap as `meshctl bootstrap --workload-group` makes it plus
    /// `labels` (node `LABELS`, which the entry takes); waits until it is ready unless `wait` is
    /// false. `token` defaults to one limited to the group.
    @discardableResult
    func startRegisteredSidecar(
        _ namespace: String, group: String, address: String, labels: [String: String] = [:], as label: String, token: String? = nil, wait: Bool = true
    ) async throws -> EnvoyProcess {
        let snapshot = controlPlane.store.publisher.current
        let workloadGroup = try #require(snapshot.workloadGroups[.init(namespace: namespace, name: group)])
        var template = workloadGroup.spec.template
        template.address = address
        template.labels = (template.labels ?? [:]).merging(labels) { $1 }
        let workload = WorkloadInstance(entry: template, name: AutoRegistration.entryName(group: group, address: address), namespace: namespace, source: nil)
        let token = try token ?? controlPlane.tokens.mint(
            namespace: namespace, serviceAccount: workload.serviceAccount, ttl: nil, workloadGroup: "\(namespace)/\(group)").token
        let bootstrap = BootstrapBuilder(
            workload: workload, xdsAddress: xdsAddress, token: token,
            xdsTrustBundlePEM: controlPlane.options.xdsPlaintext ? nil : try controlPlane.certificates.trustBundlePEM(),
            delta: Self.deltaByDefault, fips: snapshot.settings.fips, autoRegisterGroup: group, probe: workloadGroup.spec.probe)
        let envoy = try EnvoyProcess.start(
            name: label, bootstrapJSON: ConfigJSON.encode(bootstrap.configValue, pretty: true), adminAddress: bootstrap.effectiveAdminAddress, directory: directory)
        envoys.append(envoy)
        if wait { try await envoy.waitUntilReady() }
        return envoy
    }

    /// Keeps `envoy` to stop it with the others.
    func adopt(_ envoy: EnvoyProcess) {
        envoys.append(envoy)
    }

    /// Starts an app answering with `name`.
    @discardableResult
    func startApp(_ name: String, host: String, port: Int) async throws -> TestHTTPApp {
        let app = try await TestHTTPApp.start(name: name, host: host, port: port)
        apps.append(app)
        return app
    }

    /// Writes (or replaces) a config file.
    func writeConfig(_ name: String, _ text: String) throws {
        try text.write(toFile: "\(configDirectory)/\(name)", atomically: true, encoding: .utf8)
    }

    /// The admin token meshd wrote in its data directory.
    var adminToken: String {
        (try? String(contentsOfFile: controlPlane.adminCredential.path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
    }

    /// Calls the admin API as the administrator (or with `token`).
    func admin(_ path: String, method: String = "GET", body: String? = nil, token: String? = nil, headers: [(String, String)] = []) async throws -> HTTPProbe.Response {
        try await HTTPProbe.request(
            adminAddress, authority: "\(adminAddress)", path: path, method: method,
            headers: [("authorization", "Bearer \(token ?? adminToken)")] + headers, body: body)
    }

    /// Stops everything: Envoys first, then the apps, then meshd; checks every certificate meshd
    /// issued (`openssl verify`, pkilint); removes the test's files unless `keepFiles` (set it to
    /// look at logs after a failure).
    func stop(keepFiles: Bool = false) async {
        for envoy in envoys { await envoy.stop() }
        for app in apps { await app.stop() }
        await stopControlPlane()
        do {
            let report = try await CertificateChecks.checkDirectory(directory + "/issued")
            #expect(!report.isEmpty, "meshd issued no certificate in this test")
            for (file, problems) in report.sorted(by: { $0.key < $1.key }) where !problems.isEmpty {
                Issue.record("issued certificate \(file) fails the checks: \(problems)")
            }
        } catch {
            Issue.record("cannot check the issued certificates: \(error)")
        }
        if !keepFiles && ProcessInfo.processInfo.environment["MESHD_TEST_KEEP"] == nil {
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    /// Runs `body` and stops the harness afterwards (keeping its files when `body` failed).
    func run(_ body: (MeshHarness) async throws -> Void) async throws {
        do {
            try await body(self)
        } catch {
            await stop(keepFiles: true)
            throw error
        }
        await stop()
    }

    /// Every Envoy's config problems (warming, error_state) and rejected-update counters.
    func envoyHealthProblems() async throws -> [String] {
        var problems: [String] = []
        for envoy in envoys {
            problems += try await envoy.configProblems().map { "\(envoy.name): \($0)" }
            let rejected = try await envoy.stats(filter: "update_rejected").filter { $0.value != 0 }
            problems += rejected.map { "\(envoy.name): \($0.key) = \($0.value)" }
        }
        return problems
    }
}

/// Sidecar-mode YAML for a workload on loopback: its WorkloadEntry and a Sidecar that binds its
/// egress on `127.X.1.N`, its ingress on `127.X.0.N`, and sends inbound traffic to `127.X.2.N`.
func workloadYAML(
    _ name: String, namespace: String, block: Int, host: Int, labels: [String: String], serviceAccount: String, ports: [Int] = [8080], protocol: String = "HTTP",
    egressHosts: [String] = ["./*"], locality: String? = nil
) -> String {
    let labelText = labels.keys.sorted().map { "\($0): \(labels[$0]!)" }.joined(separator: ", ")
    return """
        apiVersion: networking.istio.io/v1
        kind: WorkloadEntry
        metadata: {name: \(name), namespace: \(namespace)}
        spec: {address: 127.\(block).0.\(host), serviceAccount: \(serviceAccount), labels: {\(labelText)}\(locality.map { ", locality: \($0)" } ?? "")}
        ---
        \(sidecarYAML(name, namespace: namespace, block: block, host: host, labels: labels, ports: ports, protocol: `protocol`, egressHosts: egressHosts))
        """
}

/// The Sidecar of ``workloadYAML(_:namespace:block:host:labels:serviceAccount:ports:protocol:egressHosts:locality:)``
/// alone (for a workload whose entry meshd makes).
func sidecarYAML(
    _ name: String, namespace: String, block: Int, host: Int, labels: [String: String], ports: [Int] = [8080], protocol: String = "HTTP",
    egressHosts: [String] = ["./*"]
) -> String {
    let labelText = labels.keys.sorted().map { "\($0): \(labels[$0]!)" }.joined(separator: ", ")
    let ingress = ports.map { port in
        "  - port: {number: \(port), protocol: \(`protocol`), name: \(`protocol`.lowercased())-\(port)}\n    defaultEndpoint: 127.\(block).2.\(host):\(port)\n"
    }.joined()
    return """
        apiVersion: networking.istio.io/v1
        kind: Sidecar
        metadata: {name: \(name), namespace: \(namespace)}
        spec:
          workloadSelector: {labels: {\(labelText)}}
          ingress:
        \(ingress)  egress:
          - bind: 127.\(block).1.\(host)
            captureMode: NONE
            hosts: [\(egressHosts.map { "\"\($0)\"" }.joined(separator: ", "))]

        """
}

/// A MESH_INTERNAL service selecting `app`, HTTP unless `protocol` says otherwise.
func serviceYAML(_ name: String, namespace: String, port: Int = 8080, app: String? = nil, portName: String = "http", protocol: String = "HTTP") -> String {
    """
    apiVersion: networking.istio.io/v1
    kind: ServiceEntry
    metadata: {name: \(name), namespace: \(namespace)}
    spec:
      hosts: [\(name).\(namespace).svc.cluster.local]
      location: MESH_INTERNAL
      resolution: STATIC
      ports: [{number: \(port), name: \(portName), protocol: \(`protocol`)}]
      workloadSelector: {labels: {app: \(app ?? name)}}

    """
}

/// Sends `count` requests to `address`, `parallel` at a time; counts the answers by body (without
/// its final newline), by `status N` when not 200, and `error` when none came within `timeout`.
func tallyAnswers(
    _ count: Int, parallel: Int, to address: HostPort, authority: String, path: String = "/", timeout: Duration = .seconds(5),
    headers: @escaping @Sendable (Int) -> [(String, String)] = { _ in [] }
) async -> [String: Int] {
    await withTaskGroup(of: String.self) { group in
        var next = 0
        var tally: [String: Int] = [:]
        func add() {
            let index = next
            next += 1
            group.addTask {
                guard let response = try? await HTTPProbe.request(address, authority: authority, path: path, headers: headers(index), timeout: timeout) else { return "error" }
                return response.status == 200 ? response.body.trimmingCharacters(in: .newlines) : "status \(response.status)"
            }
        }
        for _ in 0..<min(parallel, count) { add() }
        while let answer = await group.next() {
            tally[answer, default: 0] += 1
            if next < count { add() }
        }
        return tally
    }
}
