public import MeshModel

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

    /// The name meshd's serving certificate carries and bootstraps verify.
    public static let xdsServerName = "meshd.istio-system.svc"

    /// A builder for `workload`.
    public init(
        workload: WorkloadInstance, xdsAddress: HostPort, adminAddress: HostPort? = nil, trustDomain: String = "cluster.local",
        token: String? = nil, xdsTrustBundlePEM: String? = nil, certificateDirectory: String? = nil
    ) {
        self.certificateDirectory = certificateDirectory
        self.workload = workload
        self.xdsAddress = xdsAddress
        self.adminAddress = adminAddress
        self.trustDomain = trustDomain
        self.token = token
        self.xdsTrustBundlePEM = xdsTrustBundlePEM
    }

    /// The admin address the bootstrap uses.
    public var effectiveAdminAddress: HostPort {
        adminAddress ?? HostPort(host: workload.address, port: 15000)
    }

    /// The node id of the sidecar.
    public var nodeID: String {
        NodeIdentity.nodeID(workload: ServiceRegistry.WorkloadID(namespace: workload.namespace, name: workload.name), address: workload.address)
    }

    /// The bootstrap as a JSON/YAML tree (Envoy's proto3 JSON field names).
    public var configValue: ConfigValue {
        let labels = ConfigObject(workload.labels.keys.sorted().map { ($0, .string(workload.labels[$0]!)) })
        var metadata = ConfigObject([
            ("NAMESPACE", .string(workload.namespace)),
            ("NAME", .string(workload.name)),
            ("SERVICE_ACCOUNT", .string(workload.serviceAccount)),
            ("INSTANCE_IPS", .string(workload.address)),
            ("LABELS", .object(labels)),
            ("MESH_ID", .string(trustDomain)),
        ])
        if let certificateDirectory { metadata[NodeIdentity.certificateDirectoryKey] = .string(certificateDirectory) }
        let node = object([
            ("id", .string(nodeID)),
            ("cluster", .string("\(workload.labels["app"] ?? workload.name).\(workload.namespace)")),
            ("metadata", .object(metadata)),
        ])
        let ads = object([("ads", object([])), ("resource_api_version", .string("V3"))])
        let xdsIsIP = IPAddress(xdsAddress.host) != nil
        var xdsCluster = object([
            ("name", .string("xds-grpc")),
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
                    ("common_tls_context", object([
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
        return object([
            ("node", node),
            ("admin", object([("address", socketAddress(effectiveAdminAddress))])),
            ("dynamic_resources", object([
                ("ads_config", object([
                    ("api_type", .string("GRPC")),
                    ("transport_api_version", .string("V3")),
                    ("set_node_on_first_message_only", .bool(true)),
                    ("grpc_services", .array([.object(grpcService)])),
                ])),
                ("cds_config", ads),
                ("lds_config", ads),
            ])),
            ("static_resources", object([("clusters", .array([xdsCluster]))])),
        ])
    }

    private func socketAddress(_ address: HostPort) -> ConfigValue {
        object([("socket_address", object([("address", .string(address.host)), ("port_value", .int(Int64(address.port)))]))])
    }

    private func object(_ pairs: [(String, ConfigValue)]) -> ConfigValue {
        .object(ConfigObject(pairs))
    }
}
