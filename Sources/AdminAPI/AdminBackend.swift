public import MeshConfig
public import MeshClient
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

// Each route collection reads from and asks of the control plane through its own protocol;
// `AdminBackend` is all of them, what the running control plane provides.

/// Who a token belongs to, and the audit log every change and every refused change is written to.
public protocol CallerBackend: Sendable {
    /// Who a bearer token belongs to; `nil` for none, an unknown, a revoked or an expired token.
    func authenticate(_ token: String?) -> Principal?
    /// Records an administrative action in the audit log.
    func audit(who: String, action: String, target: String, result: String)
    /// Why the audit log cannot be written now, or `nil` when it can (checked before a change).
    func auditProblem() -> String?
}

/// The served resources (``ResourceRoutes``).
public protocol ResourceBackend: Sendable {
    /// The mesh snapshot being served.
    var snapshot: MeshSnapshot { get }
    /// Where a served resource comes from (`api`, or `file <path>, document <n>`).
    func source(of key: ResourceKey) -> String?
    /// Applies a change through the resource store; with `dryRun`, only checks it.
    func apply(_ change: ResourceChange, dryRun: Bool) throws(ResourceChangeError) -> MeshResource?
    /// Counts and logs a refused change (`reason`: invalid, conflict, not_found, storage).
    func recordRejection(of resource: String, reason: String, message: String)
}

/// The connected proxies and what applies to workloads (``ProxyRoutes``).
public protocol ProxyBackend: Sendable {
    /// Every connected proxy and its per-type xDS status.
    var proxies: [ProxyStatus] { get }
    /// What meshd last sent a proxy, by type short name, as Envoy JSON (secrets without keys);
    /// `nil` when no such proxy is connected.
    func proxyConfig(proxyID: String) -> String?
    /// What applies to a workload and whether its connections use mTLS; throws ``APIError``
    /// (not found, invalid).
    func describe(workload: String) throws -> WorkloadDescription
    /// Problems in the served configuration.
    func analyze() -> [AnalysisMessage]
    /// Problems in the served configuration with `candidates` added (replacing resources of the
    /// same kind, namespace and name), as `istioctl analyze -f` does; nothing is applied.
    func analyze(adding candidates: [MeshResource]) -> [AnalysisMessage]
    /// What adding `candidates` would change in every proxy's configuration; nothing is applied.
    func diff(adding candidates: [MeshResource]) -> ConfigurationDiff
    /// One request walked through the served configuration; throws ``APIError`` (invalid: an
    /// unknown workload, a URL that cannot be simulated).
    func simulate(_ request: RequestSimulation.Request) throws -> RequestSimulation
    /// A Sidecar scoping a workload (`namespace/name`) to what it uses; throws ``APIError``
    /// (not found).
    func sidecarSuggestion(workload: String) throws -> SidecarSuggestion.Report
}



/// Tokens and the bootstraps that carry them (``TokenRoutes``).
public protocol TokenBackend: Sendable {
    /// Mints a token: a workload token for a namespace and service account, or a reader or admin token.
    /// With `workloadGroup` (`namespace/name`), a workload token for the group's namespace and
    /// service account that admits only proxies registering into that group.
    func mintToken(role: String, namespace: String?, serviceAccount: String?, workloadGroup: String?, ttl: TimeInterval?) throws -> MintedToken
    /// Every token record (never the tokens themselves).
    func tokens() -> [TokenInfo]
    /// Revokes a token; `false` if there is no such token.
    func revokeToken(id: String) throws -> Bool
    /// An Envoy bootstrap for a workload (JSON), with a freshly minted token; throws
    /// ``APIError`` (not found, invalid).
    func bootstrap(_ request: BootstrapRequest) throws -> String
}

/// The CA itself (``CARoutes``).
public protocol CABackend: Sendable {
    /// The CA's status.
    func caStatus() -> CertificateService.Status
    /// The trust bundle (PEM).
    func trustBundlePEM() throws -> String
    /// Starts a root rotation; the error says why not (one in progress, plugged-in CA).
    func rotateRoot() throws(CAError) -> CertificateService.Status
}

/// Certificates issued and asked for (``CertificateRoutes``).
public protocol CertificateBackend: Sendable {
    /// Every issued certificate, oldest first.
    func issuedCertificates() -> [IssuanceLedger.Entry]
    /// Signs a CSR for the token's identity; the error carries the refusal (already counted and logged).
    func signCSR(_ csr: String, ttlSeconds: Int64, token: String?) throws(CAError) -> [String]
}

/// Health, metrics, the configuration source's state and the audit log (``DebugRoutes``).
public protocol DebugBackend: Sendable {
    /// The state of the configuration source.
    var configStatus: ConfigStatus { get }
    /// Prometheus text exposition of every metric.
    func metricsText() -> String
    /// The audit log, oldest first.
    func auditRecords() -> [AuditRecord]
}

/// The service graph (``UIRoutes``).
public protocol GraphBackend: Sendable {
    /// The mesh's nodes and the traffic between them over the last minute.
    func serviceGraph() -> ServiceGraph
    /// One edge's figures over time; nil for an edge never seen.
    func edgeSeries(id: String) -> EdgeSeries?
}

/// What the admin API reads from and asks of the running control plane.
public typealias AdminBackend = CallerBackend & ResourceBackend & ProxyBackend & TokenBackend & CABackend & CertificateBackend & DebugBackend & GraphBackend
