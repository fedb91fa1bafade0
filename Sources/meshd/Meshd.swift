import ArgumentParser
import ControlPlane
import Logging
import MeshModel
import MeshConfig
import CertificateAuthority
import Foundation

@main
struct Meshd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meshd",
        abstract: "An Istio-compatible service-mesh control plane: Istio YAML in, Envoy config out over ADS.",
        discussion: """
            With no --config-dir, meshd writes the ADR's example mesh (tai-system) to <data-dir>/config \
            on first start and serves it; edit those files and each change is applied. Nothing listens \
            beyond loopback unless --allow-external-listeners is given.
            """)

    @Option(name: .customLong("config-dir"), help: "Directory of Istio YAML to load and watch (default: <data-dir>/config, seeded with the example mesh).")
    var configDirectory: String?

    @Option(name: .customLong("data-dir"), help: "Where meshd keeps its state.")
    var dataDirectory = ".meshd"

    @Option(name: .customLong("xds-address"), help: "Where the xDS (ADS) and CA gRPC server listens (host:port); TLS unless --xds-plaintext.")
    var xdsAddress = "127.0.0.1:15012"

    @Flag(name: .customLong("xds-plaintext"), help: "Serve xDS without TLS (loopback addresses only).")
    var xdsPlaintext = false

    @Flag(name: .customLong("dev-allow-unauthenticated-proxies"), help: "Development only: admit proxies that send no token.")
    var allowUnauthenticated = false

    @Option(name: .customLong("ca-dir"), help: "A plugged-in CA in Istio's layout (ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem).")
    var caDirectory: String?

    @Option(name: .customLong("ca-key-algorithm"), help: "Key of the self-signed root made on first start: ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072 or rsa-4096.")
    var caKeyAlgorithm = "ecdsa-p256"

    @Option(name: .customLong("workload-cert-ttl"), help: "Lifetime of workload certificates (e.g. 24h).")
    var workloadCertificateTTL = "24h"

    @Option(name: .customLong("max-workload-cert-ttl"), help: "Longest lifetime a CSR may ask for (e.g. 90d).")
    var maximumWorkloadCertificateTTL = "90d"

    @Option(name: .customLong("cert-rotation-ratio"), help: "Replace a workload certificate when this share of its lifetime is left.")
    var rotationRatio = 0.5

    @Option(name: .customLong("cert-rotation-jitter"), help: "How much the rotation ratio varies per certificate (±).")
    var rotationJitter = 0.01

    @Option(name: .customLong("cert-check-interval"), help: "How often certificate rotations, CA renewal and plug-in files are checked (e.g. 1s).")
    var certificateCheckInterval = "1s"

    @Option(name: .customLong("debounce-after"), help: "Quiet time after a config change before proxies are pushed (Istio's PILOT_DEBOUNCE_AFTER).")
    var debounceAfter = "100ms"

    @Option(name: .customLong("debounce-max"), help: "Longest a config change waits for quiet before it is pushed (Istio's PILOT_DEBOUNCE_MAX).")
    var debounceMax = "10s"

    @Option(name: .customLong("xds-connection-rate"), help: "New xDS streams admitted per second (0: no limit); beyond, RESOURCE_EXHAUSTED.")
    var xdsConnectionRate = 500.0

    @Option(name: .customLong("xds-connection-burst"), help: "New xDS streams admitted at once.")
    var xdsConnectionBurst = 1000

    @Option(name: .customLong("xds-max-connection-age"), help: "End xDS streams after this age (±10 %) so proxies reconnect and spread over replicas (e.g. 30m; default: never).")
    var xdsMaxConnectionAge: String?

    @Option(name: .customLong("push-concurrency"), help: "How many proxies' configurations are computed at once (default: 2 per core).")
    var pushConcurrency: Int?

    @Option(name: .customLong("admin-address"), help: "Where the admin HTTP API listens (host:port).")
    var adminAddress = "127.0.0.1:15014"

    @Option(name: .customLong("poll-interval"), help: "How often to look for config changes (e.g. 250ms, 1s).")
    var pollInterval = "250ms"

    @Option(name: .customLong("keep-issued-certificates"), help: "Keep a PEM copy of every issued certificate chain in this directory.")
    var issuedCertificateCopies: String?

    @Option(name: .customLong("root-namespace"), help: "Istio's root namespace: policies there apply mesh-wide.")
    var rootNamespace = "istio-system"

    @Option(name: .customLong("trust-domain"), help: "The SPIFFE trust domain of workload identities.")
    var trustDomain = "cluster.local"

    @Flag(name: .customLong("allow-external-listeners"), help: "Allow --xds-address/--admin-address beyond loopback.")
    var allowExternalListeners = false

    @Flag(name: .customLong("fips"), help: "Approved algorithms only (FIPS 140-3): pinned TLS parameters on every Envoy TLS context and on meshd's xDS port, CSRs, plugged-in CAs and gateway credentials checked. Not a validated module: see docs/FIPS.md.")
    var fips = false

    @Flag(name: .customLong("jwks-allow-http"), help: "Let RequestAuthentications name http:// key sets (jwksUri); by default only https:// is accepted.")
    var jwksAllowHTTP = false

    @Option(name: .customLong("jwks-ca"), help: "A PEM file of CA certificates trusted, beside the system's, when fetching https key sets.")
    var jwksCA: String?

    @Option(name: .customLong("jwks-refresh-interval"), help: "How often each jwksUri is fetched again (Istio: 20m).")
    var jwksRefreshInterval = "20m"

    @Option(name: .customLong("traffic-report-interval"), help: "How often proxies report the requests they sent per cluster, for meshctl sidecar suggest (0: never).")
    var trafficReportInterval = "30s"

    @Option(name: .customLong("istio-metrics-flush-interval"), help: "How long sidecars buffer the entries of Istio's standard metrics (istio_requests_total, ...) before streaming them to meshd (0: no Istio metrics).")
    var istioMetricsFlushInterval = "1s"

    @Option(name: .customLong("workload-entry-grace-period"), help: "How long the WorkloadEntry of an auto-registered proxy outlives its last connection (Istio's PILOT_WORKLOAD_ENTRY_GRACE_PERIOD: 10s).")
    var workloadEntryGracePeriod = "10s"

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel = "info"

    func run() async throws {
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw ValidationError("unknown --log-level \(logLevel)")
        }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "meshd")
        guard let xds = HostPort(xdsAddress, allowZeroPort: true) else { throw ValidationError("--xds-address must be host:port, got \(xdsAddress)") }
        guard let admin = HostPort(adminAddress, allowZeroPort: true) else { throw ValidationError("--admin-address must be host:port, got \(adminAddress)") }
        guard let interval = IstioDuration(parsing: pollInterval), interval.nanoseconds > 0 else {
            throw ValidationError("--poll-interval must be a duration such as 250ms, got \(pollInterval)")
        }
        guard let algorithm = KeyAlgorithm(rawValue: caKeyAlgorithm) else {
            throw ValidationError("--ca-key-algorithm must be one of \(KeyAlgorithm.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard rotationRatio > 0, rotationRatio < 1, rotationJitter >= 0, rotationJitter < min(rotationRatio, 1 - rotationRatio) else {
            throw ValidationError("--cert-rotation-ratio must be between 0 and 1 and --cert-rotation-jitter smaller than its distance to either end")
        }
        guard let check = IstioDuration(parsing: certificateCheckInterval), check.nanoseconds > 0 else {
            throw ValidationError("--cert-check-interval must be a duration such as 1s, got \(certificateCheckInterval)")
        }
        guard let quiet = IstioDuration(parsing: debounceAfter), let longest = IstioDuration(parsing: debounceMax), quiet.nanoseconds <= longest.nanoseconds else {
            throw ValidationError("--debounce-after and --debounce-max must be durations such as 100ms and 10s, the first not longer than the second")
        }
        let ttl = try Self.seconds(workloadCertificateTTL, flag: "--workload-cert-ttl")
        let maximum = try Self.seconds(maximumWorkloadCertificateTTL, flag: "--max-workload-cert-ttl")
        var options = ControlPlaneOptions(
            configDirectory: configDirectory, dataDirectory: dataDirectory, xdsAddress: xds, adminAddress: admin,
            pollInterval: .nanoseconds(interval.nanoseconds),
            settings: MeshSettings(rootNamespace: rootNamespace, trustDomain: trustDomain, fips: fips, jwksAllowHTTP: jwksAllowHTTP),
            allowExternalListeners: allowExternalListeners, caDirectory: caDirectory, caKeyAlgorithm: algorithm,
            workloadCertificateTTL: ttl, maximumWorkloadCertificateTTL: maximum, xdsPlaintext: xdsPlaintext,
            allowUnauthenticatedProxies: allowUnauthenticated, issuedCertificateCopies: issuedCertificateCopies)
        options.certificateRotationRatio = rotationRatio
        options.certificateRotationJitter = rotationJitter
        options.certificateCheckInterval = .nanoseconds(check.nanoseconds)
        options.proxyLimits.connectionsPerSecond = xdsConnectionRate
        options.proxyLimits.connectionBurst = xdsConnectionBurst
        if let pushConcurrency { options.proxyLimits.pushConcurrency = pushConcurrency }
        if let text = xdsMaxConnectionAge {
            guard let age = IstioDuration(parsing: text), age.nanoseconds > 0 else {
                throw ValidationError("--xds-max-connection-age must be a duration such as 30m, got \(text)")
            }
            options.proxyLimits.maximumConnectionAge = .nanoseconds(age.nanoseconds)
        }
        guard let refresh = IstioDuration(parsing: jwksRefreshInterval), refresh.nanoseconds > 0 else {
            throw ValidationError("--jwks-refresh-interval must be a duration such as 20m, got \(jwksRefreshInterval)")
        }
        options.jwksRefreshInterval = .nanoseconds(refresh.nanoseconds)
        guard let reports = IstioDuration(parsing: trafficReportInterval), reports.nanoseconds >= 0 else {
            throw ValidationError("--traffic-report-interval must be a duration such as 30s (0 to turn reports off), got \(trafficReportInterval)")
        }
        options.trafficReportInterval = .nanoseconds(reports.nanoseconds)
        guard let flush = istioMetricsFlushInterval == "0" ? IstioDuration(parsing: "0s") : IstioDuration(parsing: istioMetricsFlushInterval),
              flush.nanoseconds >= 0, flush.nanoseconds % 1_000_000 == 0 else {
            throw ValidationError("--istio-metrics-flush-interval must be a duration in milliseconds such as 1s or 500ms (0 to turn Istio metrics off), got \(istioMetricsFlushInterval)")
        }
        options.istioMetricsFlushInterval = .nanoseconds(flush.nanoseconds)
        guard let grace = IstioDuration(parsing: workloadEntryGracePeriod), grace.nanoseconds >= 0 else {
            throw ValidationError("--workload-entry-grace-period must be a duration such as 10s, got \(workloadEntryGracePeriod)")
        }
        options.workloadEntryGracePeriod = .nanoseconds(grace.nanoseconds)
        if let jwksCA {
            do {
                options.jwksExtraRootsPEM = try String(contentsOfFile: jwksCA, encoding: .utf8)
            } catch {
                throw ValidationError("--jwks-ca: cannot read \(jwksCA): \(error.localizedDescription)")
            }
        }
        options.debounceAfter = .nanoseconds(quiet.nanoseconds)
        options.debounceMax = .nanoseconds(longest.nanoseconds)
        if fips {
            logger.notice("FIPS mode: approved algorithms only; the cryptographic modules in this build (BoringSSL in swift-crypto, swift-nio-ssl and Envoy) are not FIPS-validated builds (docs/FIPS.md)")
        }
        // Every reason not to start is one line naming the path or address, and exit status 1.
        let controlPlane: ControlPlane
        do {
            controlPlane = try ControlPlane(options: options, logger: logger)
        } catch let error as ControlPlane.StartupError {
            logger.critical("meshd cannot start: \(error.message)")
            throw ExitCode(1)
        } catch {
            logger.critical("meshd cannot start: \(error)")
            throw ExitCode(1)
        }
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await controlPlane.run(handleSignals: true) }
                group.addTask {
                    let xdsPort = await controlPlane.boundXDSPort()
                    let adminPort = await controlPlane.boundAdminPort()
                    if xdsPort > 0 && adminPort > 0 { printWelcome(controlPlane, xdsPort: xdsPort, adminPort: adminPort) }
                }
                try await group.waitForAll()
            }
        } catch let error as ControlPlane.StartupError {
            logger.critical("meshd cannot start: \(error.message)")
            throw ExitCode(1)
        }
    }

    private func printWelcome(_ controlPlane: ControlPlane, xdsPort: Int, adminPort: Int) {
        let snapshot = controlPlane.store.publisher.current
        let workloads = snapshot.registry.workloads.keys.sorted()
        let first = workloads.first.map(\.description) ?? "<namespace>/<workload>"
        let namespace = workloads.first?.namespace ?? snapshot.serviceEntries.first?.metadata.namespace ?? "default"
        let adminURL = "http://\(options(adminAddress).host):\(adminPort)"
        let text = """

            meshd is serving \(snapshot.resources.count) resources from \(controlPlane.configDirectory)
              services:  \(snapshot.registry.services.map(\.hostname).joined(separator: ", "))
              workloads: \(workloads.map(\.description).joined(separator: ", "))
              xDS (ADS): \(options(xdsAddress).host):\(xdsPort)
              admin API: \(adminURL)   (try: swift run meshctl get serviceentries -n \(namespace) --server \(adminURL) --data-dir \(dataDirectory))

            Next, in another terminal: start a sidecar for a workload and watch it take its config:
              swift run meshctl proxy run --server \(adminURL) --data-dir \(dataDirectory) --workload \(first) --envoy $(scripts/envoy-path.sh)
              swift run meshctl proxy-status --server \(adminURL) --data-dir \(dataDirectory)
            (the launcher fetches a bootstrap with a token minted for the workload's service account and runs Envoy
            with the drain settings that make policy changes reach open connections; the sidecar gets its
            certificate over SDS and speaks mTLS to the others. The admin token is in \(dataDirectory)/admin-token.)
            Edit a file in \(controlPlane.configDirectory): meshd applies valid changes within a second and refuses invalid ones, keeping the old config.

            """
        FileHandle.standardError.write(Data(text.utf8))
    }

    /// A duration flag in seconds: Go-style units plus `d` for days (`90d`).
    static func seconds(_ text: String, flag: String) throws -> TimeInterval {
        if text.hasSuffix("d"), let days = Double(text.dropLast()), days > 0 { return days * 86400 }
        guard let duration = IstioDuration(parsing: text), duration.nanoseconds > 0 else {
            throw ValidationError("\(flag) must be a duration such as 24h, 90m or 90d, got \(text)")
        }
        return duration.secondsValue
    }

    private func options(_ text: String) -> HostPort {
        HostPort(text, allowZeroPort: true) ?? HostPort(host: "127.0.0.1", port: 0)
    }
}
