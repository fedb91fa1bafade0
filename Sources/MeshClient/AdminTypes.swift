public import Foundation

// The admin API's answers and requests, as both sides read them: meshd (AdminAPI) and meshctl.

/// One line of the audit log.
public struct AuditRecord: Codable, Hashable, Sendable {
    /// When.
    public var time: Date
    /// Who.
    public var who: String
    /// What.
    public var action: String
    /// On what.
    public var target: String
    /// How it ended.
    public var result: String

    /// A record.
    public init(time: Date, who: String, action: String, target: String, result: String) {
        self.time = time
        self.who = who
        self.action = action
        self.target = target
        self.result = result
    }
}

/// A token as minted: the secret is shown once.
public struct MintedToken: Codable, Hashable, Sendable {
    /// The token's id.
    public var id: String
    /// The token.
    public var token: String
    /// `workload`, `reader` or `admin`.
    public var role: String
    /// Namespace (workload tokens).
    public var namespace: String?
    /// Service account (workload tokens).
    public var serviceAccount: String?
    /// Expiry, if any.
    public var expiresAt: Date?
    /// The WorkloadGroup (`namespace/name`) the token is limited to, if any.
    public var workloadGroup: String?

    /// A minted token.
    public init(id: String, token: String, role: String, namespace: String?, serviceAccount: String?, expiresAt: Date?, workloadGroup: String? = nil) {
        self.workloadGroup = workloadGroup
        self.id = id
        self.token = token
        self.role = role
        self.namespace = namespace
        self.serviceAccount = serviceAccount
        self.expiresAt = expiresAt
    }
}

/// A token's record without the token.
public struct TokenInfo: Codable, Hashable, Sendable {
    /// Id.
    public var id: String
    /// `workload`, `reader` or `admin`.
    public var role: String
    /// Namespace (workload tokens).
    public var namespace: String?
    /// Service account (workload tokens).
    public var serviceAccount: String?
    /// Minted at.
    public var createdAt: Date
    /// Expiry, if any.
    public var expiresAt: Date?
    /// Revoked?
    public var revoked: Bool
    /// The WorkloadGroup (`namespace/name`) the token is limited to, if any.
    public var workloadGroup: String?

    /// A record.
    public init(id: String, role: String, namespace: String?, serviceAccount: String?, createdAt: Date, expiresAt: Date?, revoked: Bool, workloadGroup: String? = nil) {
        self.workloadGroup = workloadGroup
        self.id = id
        self.role = role
        self.namespace = namespace
        self.serviceAccount = serviceAccount
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.revoked = revoked
    }
}

/// What `POST /v1/bootstrap` takes.
public struct BootstrapRequest: Codable, Hashable, Sendable {
    /// `namespace/name` of the WorkloadEntry (or give ``workloadGroup`` and ``address``).
    public var workload: String?
    /// `namespace/name` of a WorkloadGroup the proxy registers into when it connects (Istio's
    /// auto-registration); its token admits only proxies of that group.
    public var workloadGroup: String?
    /// The proxy's IP address (with ``workloadGroup``): its entry's address and name.
    public var address: String?
    /// meshd's xDS address as the sidecar reaches it (default: where meshd listens).
    public var xdsAddress: String?
    /// Envoy's admin address (default `<workload address>:15000`).
    public var adminAddress: String?
    /// Lifetime of the token embedded in the bootstrap, seconds (default: no expiry; at most 10 years).
    public var tokenTTLSeconds: Int?
    /// An absolute directory where a renewal job (`meshctl cert renew`) keeps the sidecar's
    /// certificate; meshd then serves references to those files instead of a key it made.
    public var certificateDirectory: String?
    /// Use delta (incremental) xDS instead of state of the world.
    public var delta: Bool?
    /// gRPC's xDS bootstrap for a proxyless gRPC application instead of Envoy's (needs
    /// ``certificateDirectory``: the application connects with the certificate kept there).
    public var proxyless: Bool?
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
    /// Unresolved references of the served configuration (`Kind ns/name` → `field: reason`).
    public var warnings: [String: [String]]

    /// A status from its parts.
    public init(revision: UInt64, resources: Int, configDirectory: String?, rejectedChanges: Int, lastRejection: String?, warnings: [String: [String]] = [:]) {
        self.revision = revision
        self.resources = resources
        self.configDirectory = configDirectory
        self.rejectedChanges = rejectedChanges
        self.lastRejection = lastRejection
        self.warnings = warnings
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
    /// What the proxy's configuration is held for while an mTLS change is rolled out in order
    /// (the proxies that must acknowledge a step first), if anything.
    public var waiting: String?

    /// A status from its parts.
    public init(proxyID: String, workload: String, peer: String, types: [String: TypeState], waiting: String? = nil) {
        self.proxyID = proxyID
        self.workload = workload
        self.peer = peer
        self.types = types
        self.waiting = waiting
    }
}

/// The annotation responses carry to say where a resource comes from (`api`, or the file);
/// ignored when a resource is written back.
public let sourceAnnotation = "meshd.io/source"

/// The annotation a Secret answered without its data carries: the keys it holds, comma-separated.
public let redactedAnnotation = "meshd.io/redacted"
