public import MeshModel
public import CertificateAuthority
public import Foundation

/// How a meshd process is set up; every field has the default the `meshd` command uses.
public struct ControlPlaneOptions: Sendable {
    /// The directory of Istio YAML to load and watch; `nil` runs on the example mesh, written to
    /// `<data-dir>/config` on first start.
    public var configDirectory: String?
    /// Where meshd keeps its state (`.meshd`).
    public var dataDirectory: String
    /// Where the xDS (ADS) gRPC server listens.
    public var xdsAddress: HostPort
    /// Where the admin HTTP API listens.
    public var adminAddress: HostPort
    /// How often the config directory is checked for changes.
    public var pollInterval: Duration
    /// Mesh-wide settings.
    public var settings: MeshSettings
    /// Allow listening on non-loopback addresses (off by default: nothing listens beyond loopback
    /// unless asked for).
    public var allowExternalListeners: Bool
    /// A plugged-in CA in Istio's layout (`ca-cert.pem`, `ca-key.pem`, `root-cert.pem`,
    /// `cert-chain.pem`); `nil` makes (on first start) and uses a self-signed root in the data directory.
    public var caDirectory: String?
    /// Key type of a self-signed root made on first start.
    public var caKeyAlgorithm: KeyAlgorithm
    /// Workload certificate lifetime (24 h).
    public var workloadCertificateTTL: TimeInterval
    /// Longest lifetime a CSR may ask for (90 days).
    public var maximumWorkloadCertificateTTL: TimeInterval
    /// Serve xDS without TLS (only allowed on loopback).
    public var xdsPlaintext: Bool
    /// Admit proxies without a token (development only).
    public var allowUnauthenticatedProxies: Bool
    /// The clock (injected in tests).
    public var clock: @Sendable () -> Date
    /// The CA's randomness for serials and signatures (injected in tests; the system's otherwise).
    public var random: RandomSource = .system
    /// Keep a PEM copy of every issued certificate chain in this directory (`--keep-issued-certificates`).
    public var issuedCertificateCopies: String?
    /// The share of a workload certificate's lifetime left when it is replaced (0.5, as Istio).
    public var certificateRotationRatio: Double = 0.5
    /// How much the rotation ratio varies per certificate (±0.01).
    public var certificateRotationJitter: Double = 0.01
    /// How often rotations, renewals and plug-in files are checked.
    public var certificateCheckInterval: Duration = .seconds(1)
    /// How often proxies report the requests they sent per cluster (Envoy's load reporting), which
    /// `meshctl sidecar suggest` reads; zero: never.
    public var trafficReportInterval: Duration = .seconds(30)
    /// How long sidecars buffer the access log entries of Istio's standard metrics before they
    /// stream them to meshd (Envoy's default, 1 s); zero: no Istio metrics.
    public var istioMetricsFlushInterval: Duration = .seconds(1)
    /// How often each `jwksUri` is fetched again (Istio's PILOT_JWT_PUB_KEY_REFRESH_INTERVAL, 20 min).
    public var jwksRefreshInterval: Duration = .seconds(20 * 60)
    /// PEM certificates trusted beside the system's roots when fetching `https` key sets (`--jwks-ca`).
    public var jwksExtraRootsPEM: String?
    /// How often the key sets due are fetched.
    public var jwksCheckInterval: Duration = .seconds(1)
    /// How long the WorkloadEntry of an auto-registered proxy outlives its last connection
    /// (Istio's PILOT_WORKLOAD_ENTRY_GRACE_PERIOD).
    public var workloadEntryGracePeriod: Duration = .seconds(10)
    /// Quiet time after a config change before proxies are pushed (Istio's PILOT_DEBOUNCE_AFTER).
    public var debounceAfter: Duration = .milliseconds(100)
    /// Longest a config change waits for quiet (Istio's PILOT_DEBOUNCE_MAX).
    public var debounceMax: Duration = .seconds(10)
    /// How long one step of an mTLS rollout waits for the proxies it concerns to acknowledge it
    /// before going on without them.
    public var mtlsRolloutStepTimeout: Duration = .seconds(5)
    /// Back-pressure for proxies: new streams per second, maximum connection age, push concurrency.
    public var proxyLimits = MeshProxyProvider.Limits()
    /// Changes and CSRs per second each admin API caller may make (sustained).
    public var adminRateLimit: Double = 20
    /// Changes and CSRs each caller may make at once.
    public var adminRateBurst: Int = 40

    /// Options with meshd's defaults.
    public init(
        configDirectory: String? = nil, dataDirectory: String = ".meshd",
        xdsAddress: HostPort = HostPort(host: "127.0.0.1", port: 15012),
        adminAddress: HostPort = HostPort(host: "127.0.0.1", port: 15014),
        pollInterval: Duration = .milliseconds(250), settings: MeshSettings = MeshSettings(),
        allowExternalListeners: Bool = false, caDirectory: String? = nil, caKeyAlgorithm: KeyAlgorithm = .ecdsaP256,
        workloadCertificateTTL: TimeInterval = 86400, maximumWorkloadCertificateTTL: TimeInterval = 90 * 86400,
        xdsPlaintext: Bool = false, allowUnauthenticatedProxies: Bool = false, clock: @escaping @Sendable () -> Date = Date.init,
        issuedCertificateCopies: String? = nil
    ) {
        self.configDirectory = configDirectory
        self.dataDirectory = dataDirectory
        self.xdsAddress = xdsAddress
        self.adminAddress = adminAddress
        self.pollInterval = pollInterval
        self.settings = settings
        self.allowExternalListeners = allowExternalListeners
        self.caDirectory = caDirectory
        self.caKeyAlgorithm = caKeyAlgorithm
        self.workloadCertificateTTL = workloadCertificateTTL
        self.maximumWorkloadCertificateTTL = maximumWorkloadCertificateTTL
        self.xdsPlaintext = xdsPlaintext
        self.allowUnauthenticatedProxies = allowUnauthenticatedProxies
        self.clock = clock
        self.issuedCertificateCopies = issuedCertificateCopies
    }
}
