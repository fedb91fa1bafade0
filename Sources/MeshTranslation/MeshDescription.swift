// The results of `meshctl describe` and `meshctl analyze` (computed in MeshAnalysis.swift).

/// `meshctl describe`: what applies to a workload.
public struct WorkloadDescription: Codable, Hashable, Sendable {
    /// One inbound port and its mTLS mode.
    public struct Port: Codable, Hashable, Sendable {
        /// The port.
        public var port: Int
        /// STRICT, PERMISSIVE or DISABLE, after Istio's precedence.
        public var mtlsMode: String
        /// The PeerAuthentication that decided it (`namespace/name`), or `default`.
        public var decidedBy: String

        /// A port.
        public init(port: Int, mtlsMode: String, decidedBy: String) {
            self.port = port
            self.mtlsMode = mtlsMode
            self.decidedBy = decidedBy
        }
    }

    /// A service the workload calls, on one port, and what happens to the connection.
    public struct Connection: Codable, Hashable, Sendable {
        /// The service host.
        public var host: String
        /// The port.
        public var port: Int
        /// What the client sends: `mTLS` or `plaintext`.
        public var client: String
        /// Why (a DestinationRule's `tls`, auto mTLS, ...).
        public var clientReason: String
        /// The servers' mTLS modes on that port.
        public var serverModes: [String]
        /// `mTLS`, `plaintext`, or `fails: <why>` when the two sides disagree.
        public var result: String

        /// A connection.
        public init(host: String, port: Int, client: String, clientReason: String, serverModes: [String], result: String) {
            self.host = host
            self.port = port
            self.client = client
            self.clientReason = clientReason
            self.serverModes = serverModes
            self.result = result
        }
    }

    /// `namespace/name`.
    public var workload: String
    /// Its SPIFFE identity.
    public var identity: String
    /// Labels.
    public var labels: [String: String]
    /// The services that select it.
    public var services: [String]
    /// Resources that apply to it, by kind (`namespace/name`).
    public var virtualServices: [String]
    public var destinationRules: [String]
    public var peerAuthentications: [String]
    public var authorizationPolicies: [String]
    public var requestAuthentications: [String]
    public var sidecar: String?
    /// The Gateways that select the workload: its proxy is a gateway serving them (empty: a sidecar).
    public var gateways: [String]
    /// Inbound mTLS per port.
    public var inbound: [Port]
    /// Outbound connections.
    public var outbound: [Connection]
    /// The WorkloadGroup it was auto-registered from (`namespace/name`), if it was.
    public var workloadGroup: String?
    /// Its readiness probe's state (`Healthy`, `Unhealthy: <reason>`, `Unknown: ...`), when its
    /// group has a probe.
    public var health: String?

    /// A description.
    public init(
        workload: String, identity: String, labels: [String: String], services: [String], virtualServices: [String], destinationRules: [String],
        peerAuthentications: [String], authorizationPolicies: [String], requestAuthentications: [String] = [], sidecar: String?, gateways: [String] = [],
        inbound: [Port], outbound: [Connection], workloadGroup: String? = nil, health: String? = nil
    ) {
        self.workloadGroup = workloadGroup
        self.health = health
        self.requestAuthentications = requestAuthentications
        self.gateways = gateways
        self.workload = workload
        self.identity = identity
        self.labels = labels
        self.services = services
        self.virtualServices = virtualServices
        self.destinationRules = destinationRules
        self.peerAuthentications = peerAuthentications
        self.authorizationPolicies = authorizationPolicies
        self.sidecar = sidecar
        self.inbound = inbound
        self.outbound = outbound
    }
}

/// One finding of `meshctl analyze`, with Istio's message codes where Istio has one.
public struct AnalysisMessage: Codable, Hashable, Sendable {
    /// `Error`, `Warning` or `Info`.
    public var level: String
    /// Istio's analyzer code (`IST0101`, ...)
    public var code: String
    /// The resource (`Kind namespace/name`).
    public var resource: String
    /// What is wrong.
    public var message: String

    /// A finding.
    public init(level: String, code: String, resource: String, message: String) {
        self.level = level
        self.code = code
        self.resource = resource
        self.message = message
    }
}
