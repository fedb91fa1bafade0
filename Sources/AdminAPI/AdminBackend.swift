public import MeshConfig
public import MeshTranslation
public import MeshModel
public import CertificateAuthority
public import Foundation

/// Who is calling, from the bearer token.
public enum Principal: Hashable, Sendable, CustomStringConvertible {
    /// The administrator (the data directory's admin token, or an admin-role token).
    case admin(id: String)
    /// May read everything, change nothing.
    case reader(id: String)
    /// A workload's token: may ask for its own certificate.
    case workload(id: String, namespace: String, serviceAccount: String)

    /// The role's name.
    public var role: String {
        switch self {
        case .admin: "admin"
        case .reader: "reader"
        case .workload: "workload"
        }
    }

    /// For the audit log and rate limits.
    public var description: String {
        switch self {
        case .admin(let id): "admin:\(id)"
        case .reader(let id): "reader:\(id)"
        case .workload(let id, let namespace, let serviceAccount): "workload:\(id)(\(namespace)/\(serviceAccount))"
        }
    }
}

/// What the admin API reads from and asks of the running control plane.
public protocol AdminBackend: Sendable {
    /// The mesh snapshot being served.
    var snapshot: MeshSnapshot { get }
    /// The state of the configuration source.
    var configStatus: ConfigStatus { get }
    /// Every connected proxy and its per-type xDS status, as JSON-encodable values.
    var proxies: [ProxyStatus] { get }
    /// Prometheus text exposition of every metric.
    func metricsText() -> String

    /// Who a bearer token belongs to; `nil` for none, an unknown, a revoked or an expired token.
    func authenticate(_ token: String?) -> Principal?
    /// Records an administrative action in the audit log.
    func audit(who: String, action: String, target: String, result: String)
    /// Why the audit log cannot be written now, or `nil` when it can (checked before a change).
    func auditProblem() -> String?
    /// The audit log, oldest first.
    func auditRecords() -> [AuditRecord]

    /// Where a served resource comes from (`api`, or `file <path>, document <n>`).
    func source(of key: ResourceKey) -> String?
    /// Applies a change through the resource store; with `dryRun`, only checks it.
    func apply(_ change: ResourceChange, dryRun: Bool) throws(ResourceChangeError) -> MeshResource?

    /// Mints a token: a workload token for a namespace and service account, or a reader or admin token.
    func mintToken(role: String, namespace: String?, serviceAccount: String?, ttl: TimeInterval?) throws -> MintedToken
    /// Every token record (never the tokens themselves).
    func tokens() -> [TokenInfo]
    /// Revokes a token; `false` if there is no such token.
    func revokeToken(id: String) throws -> Bool

    /// The CA's status.
    func caStatus() -> CertificateService.Status
    /// The trust bundle (PEM).
    func trustBundlePEM() throws -> String
    /// Starts a root rotation; the error says why not (one in progress, plugged-in CA).
    func rotateRoot() throws(CAError) -> CertificateService.Status
    /// Every issued certificate, oldest first.
    func issuedCertificates() -> [IssuanceLedger.Entry]
    /// Signs a CSR for the token's identity; the error carries the refusal (already counted and logged).
    func signCSR(_ csr: String, ttlSeconds: Int64, token: String?) throws(CAError) -> [String]

    /// An Envoy bootstrap for a workload (JSON), with a freshly minted token.
    func bootstrap(_ request: BootstrapRequest) throws -> String

    /// What meshd last sent a proxy, by type short name, as Envoy JSON (secrets without keys);
    /// `nil` when no such proxy is connected.
    func proxyConfig(proxyID: String) -> String?
    /// What applies to a workload and whether its connections use mTLS.
    func describe(workload: String) throws -> WorkloadDescription
    /// Problems in the served configuration.
    func analyze() -> [AnalysisMessage]
}

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

    /// A minted token.
    public init(id: String, token: String, role: String, namespace: String?, serviceAccount: String?, expiresAt: Date?) {
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

    /// A record.
    public init(id: String, role: String, namespace: String?, serviceAccount: String?, createdAt: Date, expiresAt: Date?, revoked: Bool) {
        self.id = id
        self.role = role
        self.namespace = namespace
        self.serviceAccount = serviceAccount
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.revoked = revoked
    }
}

/// A request the backend refuses: the admin API answers 404 or 400 with the message.
public struct AdminRequestError: Error, CustomStringConvertible, Sendable {
    /// Not found (404) or invalid (400).
    public enum Kind: Sendable {
        case notFound
        case invalid
    }


    /// Which.
    public var kind: Kind
    /// Why.
    public var description: String

    /// A refusal.
    public init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }
}

/// What `POST /v1/bootstrap` takes.
public struct BootstrapRequest: Codable, Hashable, Sendable {
    /// `namespace/name` of the WorkloadEntry.
    public var workload: String
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

