public import Logging
public import MeshConfig
public import CertificateAuthority
internal import MeshModel
internal import AdminAPI
internal import XDSServer
internal import GRPCCore
internal import GRPCNIOTransportCore
internal import Hummingbird
internal import ServiceLifecycle
internal import UnixSignals
internal import Prometheus
internal import Metrics
internal import Synchronization
internal import Foundation
internal import X509

/// One meshd: the config source, the CA, the xDS server and the admin API, wired together.
public final class ControlPlane: Sendable {
    /// The options it runs with.
    public let options: ControlPlaneOptions
    /// The configuration store (all-or-nothing changes).
    public let store: ConfigStore
    /// The config directory being watched.
    public let configDirectory: String
    /// Connected proxies and their status.
    public let proxyStatus: ProxyStatusRegistry
    /// The certificate authority.
    public let certificates: CertificateService
    /// Proxy and renewal-job tokens.
    public let tokens: TokenAuthority
    /// The certificates proxies got over SDS.
    public let proxyCertificates: ProxyCertificates
    /// The administrator's credential.
    public let adminCredential: AdminCredential
    /// The audit log.
    public let audit: AuditLog
    let provider: MeshProxyProvider
    /// Makes and removes the WorkloadEntries of proxies registering into WorkloadGroups.
    let registrar: WorkloadAutoRegistrar
    /// Requests per cluster each workload's proxies reported (Envoy's load reports).
    let traffic = TrafficLedger()
    /// The snapshots proxies are pushed: the store's, debounced.
    public let pushes: DebouncedPublisher
    /// Orders mTLS mode changes across proxies (between the debounced pushes and the proxies).
    let rollout: MTLSRolloutStage
    let peers = PeerCertificates()
    let xdsTLS: TLSContextHolder?
    let serving: XDSServingCertificate?
    /// The CA over time: rotations, renewals, plug-in reloads.
    public let lifecycle: CALifecycle
    let maintenance: CertificateMaintenance
    /// Fetches the key sets RequestAuthentications name.
    let jwks: JWKSResolver
    private let metricsRegistry: PrometheusCollectorRegistry
    /// Istio's standard metrics, from the proxies' access log streams.
    public let standardMetrics: StandardMetrics
    /// The keys proxies report those metrics with.
    let reportKeys: MetricsReportKeys
    /// Their traffic totals over time, for the service graph.
    let trafficHistory = TrafficHistory()
    private let metricsFactory: PrometheusMetricsFactory
    let logger: Logger
    private let bound = BoundAddresses()
    /// The services of `run()`, while it runs.
    private let running = Mutex<ServiceGroup?>(nil)

    /// Prepares a control plane: the data directory, the admin token, the CA (made on first start
    /// or plugged in), the example mesh when no config directory is given, and the first load of
    /// the configuration.
    ///
    /// - Throws: ``StartupError`` when the initial configuration or the CA is unusable or an
    ///   address is not allowed; meshd refuses to start rather than serve an incomplete mesh.
    public init(options: ControlPlaneOptions, logger: Logger) throws {
        self.options = options
        self.logger = logger
        for (flag, address) in [("--xds-address", options.xdsAddress), ("--admin-address", options.adminAddress)] {
            guard options.allowExternalListeners || Self.isLoopback(address.host) else {
                throw StartupError(message: "\(flag) \(address) is not a loopback address; pass --allow-external-listeners to listen beyond this machine")
            }
        }
        if options.settings.fips {
            if options.xdsPlaintext {
                throw StartupError(message: "--fips needs TLS on xDS (certificates and keys travel over it); leave out --xds-plaintext")
            }
            if !Self.isLoopback(options.adminAddress.host) {
                throw StartupError(message: "--fips keeps the admin API on loopback: it is plain HTTP and carries tokens and revealed Secrets; put a TLS proxy on loopback in front of it to reach it from elsewhere")
            }
        }
        if options.xdsPlaintext && !Self.isLoopback(options.xdsAddress.host) {
            throw StartupError(message: "plaintext xDS is only allowed on loopback; \(options.xdsAddress) is not")
        }
        try Self.checkDataDirectory(options.dataDirectory)
        if let directory = options.configDirectory {
            configDirectory = directory
        } else {
            configDirectory = (options.dataDirectory as NSString).appendingPathComponent("config")
            if !FileManager.default.fileExists(atPath: configDirectory) {
                try ExampleMesh.write(to: configDirectory)
                logger.notice("no --config-dir given: wrote the example mesh (the ADR's tai-system) to \(configDirectory); edit those files and meshd applies each change")
            }
        }
        metricsRegistry = PrometheusCollectorRegistry()
        metricsFactory = PrometheusMetricsFactory(registry: metricsRegistry)

        let admin = try AdminCredential.loadOrCreate(dataDirectory: options.dataDirectory, random: options.random)
        adminCredential = admin.credential
        if admin.created { logger.notice("wrote the admin token to \(admin.credential.path) (mode 0600); meshctl reads it from there") }
        audit = AuditLog(dataDirectory: options.dataDirectory, clock: options.clock)

        do throws(CAError) {
            let source: CALifecycle.Source = options.caDirectory.map { .pluggedIn(directory: $0) }
                ?? .selfSigned(algorithm: options.caKeyAlgorithm, trustDomain: options.settings.trustDomain)
            lifecycle = try CALifecycle(
                dataDirectory: options.dataDirectory, source: source, clock: options.clock, random: options.random, fips: options.settings.fips,
                logger: logger, metrics: metricsFactory)
        } catch {
            throw StartupError(message: "the CA cannot be used: \(error.message)")
        }
        let authority = lifecycle.authority
        if let caDirectory = options.caDirectory {
            logger.info("using the plugged-in CA", metadata: ["directory": "\(caDirectory)", "signer": "\(authority.certificate.subject)"])
        }
        certificates = CertificateService(
            authority: authority,
            options: .init(
                defaultTTL: options.workloadCertificateTTL, maximumTTL: options.maximumWorkloadCertificateTTL,
                trustDomain: options.settings.trustDomain, copiesDirectory: options.issuedCertificateCopies, fips: options.settings.fips),
            ledger: IssuanceLedger(path: options.dataDirectory + "/ca/issued.jsonl"), clock: options.clock, random: options.random,
            logger: logger, metrics: metricsFactory)
        certificates.replace(authority, crossSigned: lifecycle.crossSigned)
        tokens = try TokenAuthority(dataDirectory: options.dataDirectory, clock: options.clock, random: options.random)
        proxyCertificates = try ProxyCertificates(
            dataDirectory: options.dataDirectory, service: certificates, rotationRatio: options.certificateRotationRatio,
            rotationJitter: options.certificateRotationJitter, clock: options.clock, random: options.random)

        let resourceStore: SQLiteResourceStore
        do throws(ResourceChangeError) {
            resourceStore = try SQLiteResourceStore(path: options.dataDirectory + "/config.db", clock: options.clock)
        } catch {
            throw StartupError(message: error.description)
        }
        store = ConfigStore(
            settings: options.settings, resourceStore: resourceStore, credentialCheck: { [fips = options.settings.fips] in CredentialMaterial.problems(of: $0, fips: fips) }, logger: logger, metrics: metricsFactory)
        do throws(ResourceChangeError) {
            try store.loadStoredResources()
        } catch {
            throw StartupError(message: "the resources applied through the API cannot be loaded: \(error)")
        }
        let grace = options.workloadEntryGracePeriod.components
        registrar = WorkloadAutoRegistrar(
            store: store, grace: TimeInterval(grace.seconds) + TimeInterval(grace.attoseconds) / 1e18, healthPath: options.dataDirectory + "/health.json",
            clock: options.clock, logger: logger)
        proxyStatus = ProxyStatusRegistry()
        pushes = DebouncedPublisher(
            source: store.publisher, debounce: Debounce(quiet: options.debounceAfter, maximum: options.debounceMax), metrics: metricsFactory)
        rollout = MTLSRolloutStage(source: pushes.output, stepTimeout: options.mtlsRolloutStepTimeout, logger: logger, metrics: metricsFactory)
        standardMetrics = StandardMetrics()
        let flush = options.istioMetricsFlushInterval.components
        let flushMilliseconds = UInt32(clamping: flush.seconds * 1000 + flush.attoseconds / 1_000_000_000_000_000)
        reportKeys = try MetricsReportKeys(dataDirectory: options.dataDirectory, random: options.random)
        let provider = MeshProxyProvider(
            publisher: rollout.output, tokens: tokens, certificates: proxyCertificates,
            allowUnauthenticated: options.allowUnauthenticatedProxies, status: proxyStatus, clock: options.clock, random: options.random,
            limits: options.proxyLimits,
            adminCredential: adminCredential, registrar: registrar, controllerName: "meshd@\(ProcessInfo.processInfo.hostName)",
            peers: peers, metricsReporting: flushMilliseconds > 0 ? (reportKeys, flushMilliseconds) : nil, logger: logger, metrics: metricsFactory)
        self.provider = provider
        rollout.attach(provider)
        _ = tokens.onRevocation { provider.sessions.revoked(tokenID: $0) }

        if options.xdsPlaintext {
            xdsTLS = nil
            serving = nil
            logger.warning("serving xDS without TLS on \(options.xdsAddress) (--xds-plaintext)")
        } else {
            let ips = [options.xdsAddress.host, "127.0.0.1", "::1"].filter { IPAddress($0) != nil }
            let serving = XDSServingCertificate(
                dataDirectory: options.dataDirectory, service: certificates, dnsNames: [BootstrapBuilder.xdsServerName], ipAddresses: ips,
                ttl: 30 * 86400, clock: options.clock)
            let current = try serving.current()
            self.serving = serving
            xdsTLS = try TLSContextHolder(
                chainPEM: current.chainPEM, keyPEM: current.keyPEM, trustBundlePEM: try certificates.trustBundlePEM(), fips: options.settings.fips)
        }
        maintenance = CertificateMaintenance(
            lifecycle: lifecycle, service: certificates, provider: provider, proxyCertificates: proxyCertificates, serving: serving,
            tls: xdsTLS, clock: options.clock, logger: logger, metrics: metricsFactory)
        do {
            jwks = JWKSResolver(
                store: store, fetcher: try HTTPJWKSFetcher(extraRootsPEM: options.jwksExtraRootsPEM, allowHTTP: options.settings.jwksAllowHTTP, fips: options.settings.fips), refresh: options.jwksRefreshInterval,
                path: options.dataDirectory + "/jwks.json", clock: options.clock, logger: logger, metrics: metricsFactory)
        } catch {
            throw StartupError(message: "--jwks-ca: cannot read the certificates: \(error)")
        }
        if let error = watcher.loadNow() {
            throw StartupError(message: "the configuration in \(configDirectory) is invalid: \(error)")
        }
    }

    /// Removes the auto-registered entries whose grace period is over now (tests; the job does it
    /// every second).
    public func sweepWorkloadEntries() {
        registrar.sweep()
    }

    /// Fetches the key sets due now (tests; the job does it every second).
    public func refreshJWKS() async {
        await jwks.check()
    }

    private static func isLoopback(_ host: String) -> Bool {
        IPAddress(host)?.isLoopback ?? (host == "localhost")
    }

    private var watcher: ConfigDirectoryWatcher {
        ConfigDirectoryWatcher(
            directory: ConfigDirectory(path: configDirectory, excluding: [options.dataDirectory]), store: store, interval: options.pollInterval, logger: logger)
    }

    /// Creates the data directory (0700) if needed and checks that meshd can write in it.
    static func checkDataDirectory(_ path: String) throws(StartupError) {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let probe = (path as NSString).appendingPathComponent(".write-check-\(getpid())")
            guard FileManager.default.createFile(atPath: probe, contents: Data()) else {
                throw StartupError(message: "cannot use the data directory \(path): cannot create files in it (\(String(cString: strerror(errno))))")
            }
            try FileManager.default.removeItem(atPath: probe)
        } catch let error as StartupError {
            throw error
        } catch {
            throw StartupError(message: "cannot use the data directory \(path): \(StartupError.reason(error))")
        }
    }

    /// Binds each address meshd will listen on once, so that a port in use is reported at once
    /// with its address instead of as a server that never comes up.
    static func checkListenable(_ addresses: [(name: String, address: HostPort)]) throws(StartupError) {
        for (name, address) in addresses where address.port != 0 {
            if let problem = SocketCheck.bindProblem(host: address.host, port: Int(address.port)) {
                throw StartupError(message: "cannot listen on \(address) (\(name)): \(problem)")
            }
        }
    }

    /// Serves until cancelled or until SIGTERM/SIGINT when `handleSignals` is set.
    /// - Throws: ``StartupError`` at once when an address cannot be bound.
    public func run(handleSignals: Bool = false) async throws {
        do {
            try Self.checkListenable([("--xds-address", options.xdsAddress), ("--admin-address", options.adminAddress)])
        } catch {
            bound.fail()
            throw error
        }
        let ads = AggregatedDiscoveryService(provider: provider, logger: logger, metrics: metricsFactory)
        let csr = IstioCertificateGRPCService(requests: CertificateRequests(service: certificates, tokens: tokens, clock: options.clock), peers: peers)
        // The transport resets streams whose messages are over its limit without a status; keep its
        // limit above the services' own (AggregatedDiscoveryService.maximumRequestBytes), which
        // answer RESOURCE_EXHAUSTED with the reason.
        var transportConfig = HTTP2ServerTransport.Custom<XDSListenerFactory>.Config.defaults
        transportConfig.rpc.maxRequestPayloadSize = 32 * 1024 * 1024
        let transport = HTTP2ServerTransport.Custom(
            listenerFactory: XDSListenerFactory(host: options.xdsAddress.host, port: Int(options.xdsAddress.port), tls: xdsTLS, peers: peers),
            config: transportConfig)
        let loadReports = LoadReportingGRPCService(provider: provider, ledger: traffic, interval: options.trafficReportInterval, logger: logger)
        let accessLogs = AccessLogGRPCService(
            keys: reportKeys, metrics: standardMetrics, attributions: .init(current: { [publisher = provider.publisher] in publisher.current }), logger: logger)
        let grpc = GRPCServer(transport: transport, services: [ads, csr, loadReports, accessLogs])
        let admin = Application(
            router: AdminRoutes.router(
                backend: AdminBackendAdapter(controlPlane: self),
                limiter: RateLimiter(ratePerSecond: options.adminRateLimit, burst: options.adminRateBurst, clock: options.clock)),
            configuration: ApplicationConfiguration(address: .hostname(options.adminAddress.host, port: Int(options.adminAddress.port)), serverName: "meshd"),
            onServerRunning: { [bound] channel in
                if let port = channel.localAddress?.port { bound.setAdmin(port) }
            },
            logger: logger)
        var configuration = ServiceGroupConfiguration(
            services: [
                .init(service: GRPCServerService(server: grpc)),
                .init(service: admin),
                .init(service: ConfigWatcherService(watcher: watcher)),
                .init(service: DebounceService(pushes: pushes)),
                .init(service: MTLSRolloutService(stage: rollout)),
                .init(service: CertificateMaintenanceService(maintenance: maintenance, interval: options.certificateCheckInterval)),
                .init(service: JWKSResolverService(resolver: jwks, interval: options.jwksCheckInterval)),
                .init(service: AutoRegistrationSweep(registrar: registrar)),
                .init(service: TrafficSampler(metrics: standardMetrics, history: trafficHistory, clock: options.clock)),
                .init(service: XDSAddressReporter(transport: transport, bound: bound), successTerminationBehavior: .ignore),
            ],
            gracefulShutdownSignals: handleSignals ? [.sigterm, .sigint] : [],
            logger: logger)
        configuration.maximumGracefulShutdownDuration = .seconds(2)
        let group = ServiceGroup(configuration: configuration)
        running.withLock { $0 = group }
        try await group.run()
    }

    /// Stops a running meshd as SIGTERM does: the xDS server first stops taking connections and
    /// streams (GOAWAY), and what is still running is cancelled after 2 s. Returns whether it was
    /// running; `run()` returns soon after. (Cancelling `run()`'s task instead cancels at once,
    /// and NIO traps on an xDS stream that arrived but was not yet taken.)
    @discardableResult
    public func shutdown() async -> Bool {
        guard let group = running.withLock({ $0 }) else { return false }
        await group.triggerGracefulShutdown()
        return true
    }

    /// Whether proxies are being served the newest accepted configuration exactly as configured:
    /// nothing waits in the debounce or in an mTLS rollout.
    public var servesNewestConfiguration: Bool {
        rollout.isIdle && rollout.output.current.revision == store.revision && rollout.output.current.mtlsStaging.entries.isEmpty
    }

    /// The xDS port actually bound (useful when the options asked for port 0); waits until bound.
    public func boundXDSPort() async -> Int { await bound.waitForXDS() }

    /// The xDS port bound so far (0 before the server listens).
    var boundXDSPortNow: Int { bound.currentXDS }

    /// The admin port actually bound; waits until bound.
    public func boundAdminPort() async -> Int { await bound.waitForAdmin() }

    /// Starts a root rotation (self-signed CA); the maintenance job drives its phases.
    public func startRootRotation() throws(CAError) {
        let update = try lifecycle.startRootRotation()
        certificates.replace(update.authority, crossSigned: lifecycle.crossSigned)
        provider.sessions.resendSecrets()
    }

    /// Runs one round of certificate maintenance now (tests; the job runs it every interval).
    public func checkCertificates() {
        maintenance.check()
    }

    /// Prometheus text of every metric.
    public func metricsText() -> String {
        metricsRegistry.emitToString() + standardMetrics.prometheusText()
    }

    /// Why meshd will not start.
    public struct StartupError: Error, CustomStringConvertible, Sendable {
        /// The reason.
        public var message: String
        public var description: String { message }

        /// The operating system's words for a Foundation file error (`Not a directory`, ...).
        static func reason(_ error: any Error) -> String {
            let nsError = error as NSError
            if let underlying = (nsError.userInfo[NSUnderlyingErrorKey] as? any Error).map({ $0 as NSError }), underlying.domain == NSPOSIXErrorDomain {
                return String(cString: strerror(Int32(underlying.code)))
            }
            if nsError.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(nsError.code))) }
            return "\(error)"
        }
    }
}

/// Reports the bound xDS port once the gRPC server listens.
struct XDSAddressReporter: Service {
    let transport: HTTP2ServerTransport.Custom<XDSListenerFactory>
    let bound: BoundAddresses

    func run() async throws {
        if let address = await transport.listeningAddress {
            bound.setXDS(address.ipv4?.port ?? address.ipv6?.port ?? 0)
        }
    }
}

/// The ports the servers bound, for callers that asked for port 0.
final class BoundAddresses: Sendable {
    private let xds = Atomic<Int>(0)
    private let admin = Atomic<Int>(0)
    private let failed = Atomic<Bool>(false)

    func setXDS(_ port: Int) { xds.store(port, ordering: .releasing) }
    func setAdmin(_ port: Int) { admin.store(port, ordering: .releasing) }
    /// The servers will not listen: waiters get 0 at once.
    func fail() { failed.store(true, ordering: .releasing) }

    func waitForXDS() async -> Int { await wait(for: xds) }
    var currentXDS: Int { xds.load(ordering: .acquiring) }
    func waitForAdmin() async -> Int { await wait(for: admin) }

    private func wait(for value: borrowing Atomic<Int>) async -> Int {
        for _ in 0..<1000 {
            let port = value.load(ordering: .acquiring)
            if port != 0 || failed.load(ordering: .acquiring) { return port }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return 0
    }
}
