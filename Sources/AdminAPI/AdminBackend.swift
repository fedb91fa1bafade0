public import MeshModel

/// What the admin API reads from the running control plane.
public protocol AdminBackend: Sendable {
    /// The mesh snapshot being served.
    var snapshot: MeshSnapshot { get }
    /// The state of the configuration source.
    var configStatus: ConfigStatus { get }
    /// Every connected proxy and its per-type xDS status, as JSON-encodable values.
    var proxies: [ProxyStatus] { get }
    /// Prometheus text exposition of every metric.
    func metricsText() -> String
}

/// The state of the configuration source, for `/debug/config`.
public struct ConfigStatus: Codable, Hashable, Sendable {
    /// The revision being served.
    public var revision: UInt64
    /// How many resources it holds.
    public var resources: Int
    /// The config directory watched, if any.
    public var configDirectory: String?
    /// How many changes were refused since start.
    public var rejectedChanges: Int
    /// The newest refusal, if the last change was refused.
    public var lastRejection: String?

    /// A status from its parts.
    public init(revision: UInt64, resources: Int, configDirectory: String?, rejectedChanges: Int, lastRejection: String?) {
        self.revision = revision
        self.resources = resources
        self.configDirectory = configDirectory
        self.rejectedChanges = rejectedChanges
        self.lastRejection = lastRejection
    }
}

/// One connected proxy, for `/debug/proxies` and `meshctl proxy-status`.
public struct ProxyStatus: Codable, Hashable, Sendable {
    /// One xDS type's state on the proxy.
    public struct TypeState: Codable, Hashable, Sendable {
        /// SYNCED, NOT SENT, STALE or ERROR.
        public var state: String
        /// The newest version sent.
        public var sentVersion: String?
        /// The version the proxy accepted.
        public var acceptedVersion: String?
        /// The proxy's rejection message, if it rejected the newest response.
        public var error: String?

        /// A state from its parts.
        public init(state: String, sentVersion: String?, acceptedVersion: String?, error: String?) {
            self.state = state
            self.sentVersion = sentVersion
            self.acceptedVersion = acceptedVersion
            self.error = error
        }
    }

    /// The node id.
    public var proxyID: String
    /// `namespace/name` of the workload.
    public var workload: String
    /// The peer address of the stream.
    public var peer: String
    /// By type (`cds`, `eds`, `lds`, `rds`, `sds`).
    public var types: [String: TypeState]

    /// A status from its parts.
    public init(proxyID: String, workload: String, peer: String, types: [String: TypeState]) {
        self.proxyID = proxyID
        self.workload = workload
        self.peer = peer
        self.types = types
    }
}
