public import MeshModel
public import MeshTranslation
internal import MeshClient

/// Builds the Envoy bootstrap of a sidecar: who it is (node id and metadata that identify its
/// WorkloadEntry), where its admin interface listens, and the ADS cluster (gRPC over HTTP/2)
/// through which it gets everything else from meshd.
public struct BootstrapBuilder: Sendable {
    /// The workload the sidecar serves.
    public var workload: WorkloadInstance
    /// meshd's xDS address.
    public var xdsAddress: HostPort
    /// Where Envoy's admin interface listens; default `<workload address>:15000`.
    public var adminAddress: HostPort?
    /// The trust domain, written into the node metadata.
    public var trustDomain: String
    /// The token the sidecar authenticates its ADS stream with (gRPC initial metadata).
    public var token: String?
    /// When meshd serves xDS over TLS: the trust bundle that verifies meshd's certificate.
    public var xdsTrustBundlePEM: String?
    /// Where a renewal job keeps the sidecar's certificate (`MESHD_CERT_DIR` node metadata).
    public var certificateDirectory: String?
    /// Delta (incremental) xDS instead of state of the world.
    public var delta: Bool
    /// A sidecar, or a gateway (node id `router~...`) when a Gateway selects the workload.
    public var kind: ProxyKind
    /// FIPS mode: the TLS to meshd pins ``FIPSPolicy``'s parameters.
    public var fips: Bool
    /// The WorkloadGroup (in the workload's namespace) the proxy registers into
    /// (`AUTO_REGISTER_GROUP` node metadata), if any.
    public var autoRegisterGroup: String?
    /// The group's readiness probe, for the proxy's agent (`meshctl proxy run`) to run
    /// (``probeMetadataKey`` node metadata).
    public var probe: ReadinessProbe?

    /// The node metadata key carrying the WorkloadGroup's probe (its YAML shape).
    public static let probeMetadataKey = "MESHD_PROBE"

    /// The clusters a bootstrap defines itself (meshd, the Prometheus listener's admin route):
    /// not the mesh's, so load reports about them are not traffic between workloads.
    public static let bootstrapClusters: Set<String> = ["xds-grpc", "prometheus_stats"]

    /// The name meshd's serving certificate carries and bootstraps verify.
    public static let xdsServerName = MeshEndpoints.xdsServerName

    /// A builder for `workload`.
    public init(
        workload: WorkloadInstance, xdsAddress: HostPort, adminAddress: HostPort? = nil, trustDomain: String = "cluster.local",
        token: String? = nil, xdsTrustBundlePEM: String? = nil, certificateDirectory: String? = nil, delta: Bool = false,
        kind: ProxyKind = .sidecar, fips: Bool = false, autoRegisterGroup: String? = nil, probe: ReadinessProbe? = nil
    ) {
        self.autoRegisterGroup = autoRegisterGroup
        self.probe = probe
        self.fips = fips
        self.delta = delta
        self.kind = kind
        self.certificateDirectory = certificateDirectory
        self.workload = workload
        self.xdsAddress = xdsAddress
        self.adminAddress = adminAddress
        self.trustDomain = trustDomain
        self.token = token
        self.xdsTrustBundlePEM = xdsTrustBundlePEM
    }

    /// ``FIPSPolicy``'s TLS parameters in Envoy's JSON.
    static var fipsParameters: ConfigValue {
        .object(ConfigObject([
            ("tls_minimum_protocol_version", .string("TLSv1_2")), ("tls_maximum_protocol_version", .string("TLSv1_3")),
            ("cipher_suites", .array(FIPSPolicy.tls12CipherSuites.map(ConfigValue.string))),
            ("ecdh_curves", .array(FIPSPolicy.ecdhCurves.map(ConfigValue.string))),
            ("compliance_policies", .array([.string("FIPS_202205")])),
        ]))
    }

    /// The admin address the bootstrap uses.
    public var effectiveAdminAddress: HostPort {
        adminAddress ?? HostPort(host: workload.address, port: 15000)
    }

    /// The node id of the sidecar.
    public var nodeID: String {
        NodeIdentity.nodeID(workload: ServiceRegistry.WorkloadID(namespace: workload.namespace, name: workload.name), address: workload.address, kind: kind)
    }

    /// The node metadata that names `workload` as Istio's bootstraps do (``NodeIdentity`` reads it).
    static func workloadMetadata(_ workload: WorkloadInstance) -> ConfigObject {
        ConfigObject([
            ("NAMESPACE", .string(workload.namespace)),
            ("NAME", .string(workload.name)),
            ("SERVICE_ACCOUNT", .string(workload.serviceAccount)),
            ("INSTANCE_IPS", .string(workload.address)),
            ("LABELS", .object(ConfigObject(workload.labels.keys.sorted().map { ($0, .string(workload.labels[$0]!)) }))),
        ])
    }

    /// The bootstrap as a JSON/YAML tree (Envoy's proto3 JSON field names).
    public var configValue: ConfigValue {
        var metadata = Self.workloadMetadata(workload)
        metadata["MESH_ID"] = .string(trustDomain)
        if let certificateDirectory { metadata[NodeIdentity.certificateDirectoryKey] = .string(certificateDirectory) }
        if let autoRegisterGroup { metadata[AutoRegistration.nodeMetadataKey] = .string(autoRegisterGroup) }
        if let probe { metadata[Self.probeMetadataKey] = probe.configValue }
        let bindsUpstream = IPAddress(workload.address) != nil
        if bindsUpstream { metadata[NodeIdentity.upstreamBindKey] = .string(workload.address) }
        var nodeFields: [(String, ConfigValue)] = [
            ("id", .string(nodeID)),
            ("cluster", .string("\(workload.labels["app"] ?? workload.name).\(workload.namespace)")),
            ("metadata", .object(metadata)),
        ]
        if let locality = workload.locality, !locality.isEmpty {
            // Envoy's own view of where it runs (its stats and zone-aware routing); meshd orders
            // endpoints by the WorkloadEntry's locality.
            let parts = locality.split(separator: "/", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
            let keys = ["region", "zone", "sub_zone"]
            nodeFields.append(("locality", object(zip(keys, parts).filter { !$0.1.isEmpty }.map { ($0.0, .string($0.1)) })))
        }
        let node = object(nodeFields)
        let ads = object([("ads", object([])), ("resource_api_version", .string("V3"))])
        let xdsIsIP = IPAddress(xdsAddress.host) != nil
        var xdsCluster = object([
            ("name", .string("xds-grpc")),
            // meshd's address is reached as it was before the workload's bind (below) existed.
            ("upstream_bind_config", object([])),
            ("type", .string(xdsIsIP ? "STATIC" : "STRICT_DNS")),
            ("connect_timeout", .string("1s")),
            ("load_assignment", object([
                ("cluster_name", .string("xds-grpc")),
                ("endpoints", .array([object([("lb_endpoints", .array([object([
                    ("endpoint", object([("address", socketAddress(xdsAddress))])),
                ])]))])])),
            ])),
            ("typed_extension_protocol_options", object([
                ("envoy.extensions.upstreams.http.v3.HttpProtocolOptions", object([
                    ("@type", .string("type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions")),
                    ("explicit_http_config", object([("http2_protocol_options", object([]))])),
                ])),
            ])),
        ])
        if let bundle = xdsTrustBundlePEM, case .object(var cluster) = xdsCluster {
            cluster["transport_socket"] = object([
                ("name", .string("envoy.transport_sockets.tls")),
                ("typed_config", object([
                    ("@type", .string("type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext")),
                    ("sni", .string(Self.xdsServerName)),
                    ("common_tls_context", object((fips ? [("tls_params", Self.fipsParameters)] : []) + [
                        ("alpn_protocols", .array(["h2"])),
                        ("validation_context", object([
                            ("trusted_ca", object([("inline_string", .string(bundle))])),
                            ("match_typed_subject_alt_names", .array([object([
                                ("san_type", .string("DNS")), ("matcher", object([("exact", .string(Self.xdsServerName))])),
                            ])])),
                        ])),
                    ])),
                ])),
            ])
            xdsCluster = .object(cluster)
        }
        var grpcService = ConfigObject([("envoy_grpc", object([("cluster_name", .string("xds-grpc"))]))])
        if let token {
            grpcService["initial_metadata"] = .array([object([("key", .string("authorization")), ("value", .string("Bearer \(token)"))])])
        }
        var staticListeners: [ConfigValue] = []
        var staticClusters: [ConfigValue] = [xdsCluster]
        if bindsUpstream {
            staticListeners.append(prometheusListener)
            staticClusters.append(prometheusCluster)
        }
        var bootstrap = ConfigObject([
            ("node", node),
            ("admin", object([("address", socketAddress(effectiveAdminAddress))])),
            ("stats_config", statsConfig),
            ("dynamic_resources", object([
                ("ads_config", object([
                    ("api_type", .string(delta ? "DELTA_GRPC" : "GRPC")),
                    ("transport_api_version", .string("V3")),
                    ("set_node_on_first_message_only", .bool(true)),
                    ("grpc_services", .array([.object(grpcService)])),
                ])),
                ("cds_config", ads),
                ("lds_config", ads),
            ])),
            ("static_resources", object([("listeners", .array(staticListeners)), ("clusters", .array(staticClusters))])),
        ])
        // Load reports to meshd (which clusters the proxy sends requests to, for `meshctl sidecar
        // suggest`); meshd says how often when the stream opens, or never.
        var clusterManager = ConfigObject([("load_stats_config", object([
            ("api_type", .string("GRPC")),
            ("transport_api_version", .string("V3")),
            ("grpc_services", .array([.object(grpcService)])),
        ]))])
        if bindsUpstream {
            // Upstream connections come from the workload's address (servers see who calls);
            // said once here rather than in every cluster, so proxies share their clusters.
            clusterManager["upstream_bind_config"] = object([
                ("source_address", object([("address", .string(workload.address)), ("port_value", .int(0))])),
            ])
        }
        bootstrap["cluster_manager"] = .object(clusterManager)
        return .object(bootstrap)
    }

    /// The port where the sidecar serves its Prometheus stats (Istio's 15090).
    public static let prometheusPort: UInt32 = 15090

    /// Tags Envoy extracts from stat names, so that Istio's cluster names
    /// (`outbound|8080|v1|reviews.ns.svc.cluster.local`) become Prometheus labels: `direction`,
    /// `destination_port`, `destination_subset`, `destination_service`; plus the response code
    /// and class, and the connection manager's prefix. Stats of clusters and connection managers
    /// a Telemetry turned off are dropped.
    var statsConfig: ConfigValue {
        let mesh = "(?:inbound|outbound)"
        // A host has dots too: it ends where the cluster's own stat names begin.
        let statGroups = ["upstream_", "lb_", "membership_", "max_host_weight", "retry_or_shadow_abandoned", "update_", "version",
                          "bind_errors", "original_dst_host_invalid", "assignment_", "init_fetch_timeout", "warming_state",
                          "circuit_breakers\\.", "outlier_detection\\.", "health_check\\.", "zone\\.", "canary\\.", "internal\\.",
                          "external\\.", "ssl\\.", "http1\\.", "http2\\.", "http3\\.", "client_ssl_socket_factory\\.", "[A-Za-z0-9_-]+\\.total_match_count"]
        let tags: [(String, String?)] = [
            ("direction", "^cluster\\.((inbound|outbound)\\|)"),
            ("destination_port", "^cluster\\.\(mesh)\\|((\\d+)\\|)"),
            ("destination_subset", "^cluster\\.\(mesh)\\|\\d+\\|(([^|]*)\\|)"),
            ("destination_service", "^cluster\\.\(mesh)\\|\\d+\\|[^|]*\\|((.*?)\\.)(?=\(statGroups.joined(separator: "|")))"),
            ("response_code", "_rq(_(\\d{3}))$"), ("response_code_class", "_rq(_(\\dxx))$"),
            ("envoy.http_conn_manager_prefix", "^http\\.(((?:inbound|outbound)_[0-9a-f.:]+_\\d+)\\.)"),
            ("envoy.http_conn_manager_prefix", "^listener\\..*?\\.http\\.(((?:inbound|outbound)_[0-9a-f.:]+_\\d+)\\.)"),
            ("route_config", "^http\\..*?\\.rds\\.((.*?)\\.)\\w+?$"),
            ("envoy.listener_address", nil), ("envoy.tcp_prefix", nil),
        ]
        let disabled = ["cluster.", "http.", "tcp."].map { object([("prefix", .string($0 + "meshd_disabled."))]) }
        return object([
            ("use_all_default_tags", .bool(false)),
            ("stats_tags", .array(tags.map { name, regex in
                regex.map { object([("tag_name", .string(name)), ("regex", .string($0))]) } ?? object([("tag_name", .string(name))])
            })),
            ("stats_matcher", object([("exclusion_list", object([("patterns", .array(disabled))]))])),
        ])
    }

    /// `<workload address>:15090/stats/prometheus`, served from Envoy's admin interface.
    var prometheusListener: ConfigValue {
        let router = object([
            ("name", .string("envoy.filters.http.router")),
            ("typed_config", object([("@type", .string("type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"))])),
        ])
        let routes = object([("virtual_hosts", .array([object([
            ("name", .string("prometheus")), ("domains", .array(["*"])),
            ("routes", .array([object([
                ("match", object([("prefix", .string("/stats/prometheus"))])),
                ("route", object([("cluster", .string("prometheus_stats"))])),
            ])])),
        ])]))])
        let manager = object([
            ("@type", .string("type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager")),
            ("stat_prefix", .string("stats")), ("route_config", routes), ("http_filters", .array([router])),
        ])
        return object([
            ("name", .string("prometheus_stats")),
            ("address", socketAddress(HostPort(host: workload.address, port: Self.prometheusPort))),
            ("filter_chains", .array([object([("filters", .array([object([
                ("name", .string("envoy.filters.network.http_connection_manager")), ("typed_config", manager),
            ])]))])])),
        ])
    }

    var prometheusCluster: ConfigValue {
        object([
            ("name", .string("prometheus_stats")), ("type", .string("STATIC")), ("connect_timeout", .string("1s")),
            ("upstream_bind_config", object([])),
            ("load_assignment", object([
                ("cluster_name", .string("prometheus_stats")),
                ("endpoints", .array([object([("lb_endpoints", .array([object([
                    ("endpoint", object([("address", socketAddress(effectiveAdminAddress))])),
                ])]))])])),
            ])),
        ])
    }

    private func socketAddress(_ address: HostPort) -> ConfigValue {
        object([("socket_address", object([("address", .string(address.host)), ("port_value", .int(Int64(address.port)))]))])
    }

    private func object(_ pairs: [(String, ConfigValue)]) -> ConfigValue {
        .object(ConfigObject(pairs))
    }
}
