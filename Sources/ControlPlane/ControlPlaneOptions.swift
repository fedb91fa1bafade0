public import MeshModel

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

    /// Options with meshd's defaults.
    public init(
        configDirectory: String? = nil, dataDirectory: String = ".meshd",
        xdsAddress: HostPort = HostPort(host: "127.0.0.1", port: 15010),
        adminAddress: HostPort = HostPort(host: "127.0.0.1", port: 15014),
        pollInterval: Duration = .milliseconds(250), settings: MeshSettings = MeshSettings(),
        allowExternalListeners: Bool = false
    ) {
        self.configDirectory = configDirectory
        self.dataDirectory = dataDirectory
        self.xdsAddress = xdsAddress
        self.adminAddress = adminAddress
        self.pollInterval = pollInterval
        self.settings = settings
        self.allowExternalListeners = allowExternalListeners
    }
}
