public import Logging
internal import MeshModel
public import MeshConfig
internal import AdminAPI
internal import XDSServer
internal import GRPCCore
internal import GRPCNIOTransportHTTP2
internal import Hummingbird
internal import ServiceLifecycle
internal import UnixSignals
internal import Prometheus
internal import Metrics
internal import Synchronization
internal import Foundation

/// One meshd: the config source, the xDS server and the admin API, wired together.
public final class ControlPlane: Sendable {
    /// The options it runs with.
    public let options: ControlPlaneOptions
    /// The configuration store (all-or-nothing changes).
    public let store: ConfigStore
    /// The config directory being watched.
    public let configDirectory: String
    /// Connected proxies and their status.
    public let proxyStatus: ProxyStatusRegistry
    private let provider: MeshProxyProvider
    private let metricsRegistry: PrometheusCollectorRegistry
    private let metricsFactory: PrometheusMetricsFactory
    private let logger: Logger
    private let bound = BoundAddresses()

    /// Prepares a control plane: creates the data directory, writes the example mesh when no
    /// config directory is given, and loads the configuration once.
    ///
    /// - Throws: ``StartupError`` when the initial configuration is invalid or an address is not
    ///   allowed; meshd refuses to start rather than serve an incomplete mesh.
    public init(options: ControlPlaneOptions, logger: Logger) throws {
        self.options = options
        self.logger = logger
        for (flag, address) in [("--xds-address", options.xdsAddress), ("--admin-address", options.adminAddress)] {
            guard options.allowExternalListeners || (IPAddress(address.host)?.isLoopback ?? (address.host == "localhost")) else {
                throw StartupError(message: "\(flag) \(address) is not a loopback address; pass --allow-external-listeners to listen beyond this machine")
            }
        }
        try FileManager.default.createDirectory(atPath: options.dataDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
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
        store = ConfigStore(settings: options.settings, logger: logger, metrics: metricsFactory)
        proxyStatus = ProxyStatusRegistry()
        provider = MeshProxyProvider(publisher: store.publisher, status: proxyStatus, logger: logger)
        if let error = watcher.loadNow() {
            throw StartupError(message: "the configuration in \(configDirectory) is invalid: \(error)")
        }
    }

    private var watcher: ConfigDirectoryWatcher {
        ConfigDirectoryWatcher(directory: ConfigDirectory(path: configDirectory), store: store, interval: options.pollInterval, logger: logger)
    }

    /// Serves until cancelled or until SIGTERM/SIGINT when `handleSignals` is set.
    public func run(handleSignals: Bool = false) async throws {
        let ads = AggregatedDiscoveryService(provider: provider, logger: logger, metrics: metricsFactory)
        let grpc = GRPCServer(
            transport: .http2NIOPosix(
                address: .ipv4(host: options.xdsAddress.host, port: Int(options.xdsAddress.port)),
                transportSecurity: .plaintext),
            services: [ads])
        let admin = Application(
            router: AdminRoutes.router(backend: AdminBackendAdapter(controlPlane: self)),
            configuration: ApplicationConfiguration(address: .hostname(options.adminAddress.host, port: Int(options.adminAddress.port)), serverName: "meshd"),
            onServerRunning: { [bound] channel in
                if let port = channel.localAddress?.port { bound.setAdmin(port) }
            },
            logger: logger)
        let addressReporter = XDSAddressReporter(server: grpc, bound: bound)
        var configuration = ServiceGroupConfiguration(
            services: [
                .init(service: GRPCServerService(server: grpc)),
                .init(service: admin),
                .init(service: ConfigWatcherService(watcher: watcher)),
                .init(service: addressReporter, successTerminationBehavior: .ignore),
            ],
            gracefulShutdownSignals: handleSignals ? [.sigterm, .sigint] : [],
            logger: logger)
        configuration.maximumGracefulShutdownDuration = .seconds(2)
        try await ServiceGroup(configuration: configuration).run()
    }

    /// The xDS port actually bound (useful when the options asked for port 0); waits until bound.
    public func boundXDSPort() async -> Int { await bound.waitForXDS() }

    /// The admin port actually bound; waits until bound.
    public func boundAdminPort() async -> Int { await bound.waitForAdmin() }

    /// Prometheus text of every metric.
    public func metricsText() -> String {
        metricsRegistry.emitToString()
    }

    /// Why meshd will not start.
    public struct StartupError: Error, CustomStringConvertible, Sendable {
        /// The reason.
        public var message: String
        public var description: String { message }
    }
}

/// Reports the bound xDS port once the gRPC server listens.
struct XDSAddressReporter: Service {
    let server: GRPCServer<HTTP2ServerTransport.Posix>
    let bound: BoundAddresses

    func run() async throws {
        if let address = try? await server.listeningAddress, let ipv4 = address.ipv4 {
            bound.setXDS(ipv4.port)
        }
    }
}

/// The ports the servers bound, for callers that asked for port 0.
final class BoundAddresses: Sendable {
    private let xds = Atomic<Int>(0)
    private let admin = Atomic<Int>(0)

    func setXDS(_ port: Int) { xds.store(port, ordering: .releasing) }
    func setAdmin(_ port: Int) { admin.store(port, ordering: .releasing) }

    func waitForXDS() async -> Int { await wait(for: xds) }
    func waitForAdmin() async -> Int { await wait(for: admin) }

    private func wait(for value: borrowing Atomic<Int>) async -> Int {
        for _ in 0..<1000 {
            let port = value.load(ordering: .acquiring)
            if port != 0 { return port }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return 0
    }
}

/// Gives the admin API its read access.
struct AdminBackendAdapter: AdminBackend {
    let controlPlane: ControlPlane

    var snapshot: MeshSnapshot { controlPlane.store.publisher.current }

    var configStatus: ConfigStatus {
        let store = controlPlane.store
        return ConfigStatus(
            revision: store.revision, resources: store.publisher.current.resources.count,
            configDirectory: controlPlane.configDirectory, rejectedChanges: store.rejectionCount,
            lastRejection: store.lastRejection.map(String.init(describing:)))
    }

    var proxies: [ProxyStatus] {
        controlPlane.proxyStatus.proxies.map { proxy in
            ProxyStatus(
                proxyID: proxy.proxyID, workload: proxy.workload, peer: proxy.peer,
                types: proxy.types.mapValues {
                    ProxyStatus.TypeState(state: $0.state, sentVersion: $0.sentVersion, acceptedVersion: $0.acceptedVersion, error: $0.rejection)
                })
        }
    }

    func metricsText() -> String { controlPlane.metricsText() }
}
