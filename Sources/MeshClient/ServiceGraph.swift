/// The service graph `/ui/graph` draws (and `GET /ui/api/graph` serves): namespaces, services and
/// workloads as nodes, the traffic between them as edges over the last minute, from Istio's
/// standard metrics meshd counts.
public struct ServiceGraph: Codable, Hashable, Sendable {
    /// A workload, a service or a caller outside the mesh.
    public struct Node: Codable, Hashable, Sendable {
        /// `workload:<ns>/<name>`, `service:<host>` or `unknown`.
        public var id: String
        /// `workload`, `service` or `unknown`.
        public var kind: String
        /// Its namespace (`unknown` for a caller outside the mesh).
        public var namespace: String
        /// Its name (a service's host).
        public var name: String
        /// A workload's `app` and `version` labels.
        public var app: String?
        public var version: String?
        /// A workload's proxies' xDS state: `SYNCED`, the worst other state (`STALE`, `NOT SENT`,
        /// `ERROR`) with the types in it, or `not connected`.
        public var sync: String?

        /// A node from its parts.
        public init(id: String, kind: String, namespace: String, name: String, app: String? = nil, version: String? = nil, sync: String? = nil) {
            self.id = id
            self.kind = kind
            self.namespace = namespace
            self.name = name
            self.app = app
            self.version = version
            self.sync = sync
        }
    }

    /// Traffic from one node to another over the window.
    public struct Edge: Codable, Hashable, Sendable {
        /// Stable id (for `/ui/api/edge`).
        public var id: String
        /// Source and target node ids: caller → service, and service → the workload that answered.
        public var source: String
        public var target: String
        /// Requests per second.
        public var requestRate: Double
        /// The share of requests answered 5xx (0 to 1).
        public var errorRate: Double
        /// Latency quantiles in milliseconds, when requests were seen.
        public var p50: Double?
        public var p99: Double?
        /// `mutual_tls`, `none`, `mixed`, or `unknown` when the server side reported nothing.
        public var security: String
        /// `http`, `grpc`, `tcp`, or several joined by `,`.
        public var protocolName: String

        /// An edge from its parts.
        public init(
            id: String, source: String, target: String, requestRate: Double, errorRate: Double, p50: Double?, p99: Double?, security: String, protocolName: String
        ) {
            self.id = id
            self.source = source
            self.target = target
            self.requestRate = requestRate
            self.errorRate = errorRate
            self.p50 = p50
            self.p99 = p99
            self.security = security
            self.protocolName = protocolName
        }
    }

    /// A VirtualService's weighted split: configured and as it really happened.
    public struct Split: Codable, Hashable, Sendable {
        /// `namespace/name` of the VirtualService.
        public var virtualService: String
        /// The service host.
        public var service: String
        /// Per destination version (subset labels' `version`, else the subset): configured
        /// weight (percent) and observed share (percent of the window's requests).
        public var shares: [Share]

        /// One destination's share.
        public struct Share: Codable, Hashable, Sendable {
            public var version: String
            public var configured: Double?
            public var observed: Double

            /// A share from its parts.
            public init(version: String, configured: Double?, observed: Double) {
                self.version = version
                self.configured = configured
                self.observed = observed
            }
        }

        /// A split from its parts.
        public init(virtualService: String, service: String, shares: [Share]) {
            self.virtualService = virtualService
            self.service = service
            self.shares = shares
        }
    }

    /// When it was computed (seconds since 1970) and the window's length in seconds.
    public var generatedAt: Double
    public var windowSeconds: Double
    /// Every namespace with a node.
    public var namespaces: [String]
    public var nodes: [Node]
    public var edges: [Edge]
    public var splits: [Split]

    /// A graph from its parts.
    public init(generatedAt: Double, windowSeconds: Double, namespaces: [String], nodes: [Node], edges: [Edge], splits: [Split]) {
        self.generatedAt = generatedAt
        self.windowSeconds = windowSeconds
        self.namespaces = namespaces
        self.nodes = nodes
        self.edges = edges
        self.splits = splits
    }
}

/// One edge's figures over time (`GET /ui/api/edge?id=`), one point per sample interval.
public struct EdgeSeries: Codable, Hashable, Sendable {
    /// One interval.
    public struct Point: Codable, Hashable, Sendable {
        /// The interval's end (seconds since 1970).
        public var time: Double
        public var requestRate: Double
        public var errorRate: Double
        public var p99: Double?

        /// A point from its parts.
        public init(time: Double, requestRate: Double, errorRate: Double, p99: Double?) {
            self.time = time
            self.requestRate = requestRate
            self.errorRate = errorRate
            self.p99 = p99
        }
    }

    public var id: String
    public var source: String
    public var target: String
    public var points: [Point]

    /// A series from its parts.
    public init(id: String, source: String, target: String, points: [Point]) {
        self.id = id
        self.source = source
        self.target = target
        self.points = points
    }
}
