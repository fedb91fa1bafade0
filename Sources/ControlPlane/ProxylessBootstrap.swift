public import MeshModel
public import MeshTranslation

/// gRPC's xDS bootstrap (`GRPC_XDS_BOOTSTRAP`) for a proxyless gRPC application of `workload`:
/// meshd as its xDS server, reached over TLS with the workload's certificate from
/// `certificateDirectory` (kept fresh by `meshctl cert renew`), which is also the `default`
/// certificate provider its mTLS clusters use; the node says `GENERATOR: grpc`, as Istio's
/// proxyless bootstraps do; an xDS server in the application asks for its listeners by Istio's
/// template. With plaintext xDS (`tls` false) the channel is insecure and the
/// application is admitted only by `--dev-allow-unauthenticated-proxies`.
public struct ProxylessBootstrap: Sendable {
    public var workload: WorkloadInstance
    public var xdsAddress: HostPort
    public var certificateDirectory: String
    public var tls: Bool

    public init(workload: WorkloadInstance, xdsAddress: HostPort, certificateDirectory: String, tls: Bool) {
        self.workload = workload
        self.xdsAddress = xdsAddress
        self.certificateDirectory = certificateDirectory
        self.tls = tls
    }

    /// The files `meshctl cert renew` writes, as gRPC's `file_watcher` plugin and TLS channel
    /// credentials name them.
    var files: ConfigObject {
        ConfigObject([
            ("certificate_file", .string(certificateDirectory + "/cert-chain.pem")),
            ("private_key_file", .string(certificateDirectory + "/key.pem")),
            ("ca_certificate_file", .string(certificateDirectory + "/root-cert.pem")),
        ])
    }

    public var configValue: ConfigValue {
        let credentials: ConfigValue = tls ? .object(ConfigObject([("type", .string("tls")), ("config", .object(files))])) : .object(ConfigObject([("type", .string("insecure"))]))
        let server = ConfigObject([
            ("server_uri", .string(xdsAddress.description)),
            ("channel_creds", .array([credentials])),
            ("server_features", .array([.string("xds_v3")])),
        ])
        var metadata = BootstrapBuilder.workloadMetadata(workload)
        metadata[NodeIdentity.generatorKey] = .string("grpc")
        var node = ConfigObject([
            ("id", .string(NodeIdentity.nodeID(workload: .init(namespace: workload.namespace, name: workload.name), address: workload.address))),
            ("metadata", .object(metadata)),
        ])
        if let locality = workload.locality {
            let parts = locality.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            var fields: [(String, ConfigValue)] = []
            for (key, part) in zip(["region", "zone", "sub_zone"], parts) where !part.isEmpty { fields.append((key, .string(part))) }
            node["locality"] = .object(ConfigObject(fields))
        }
        var provider = files
        provider["refresh_interval"] = .string("60s")
        return .object(ConfigObject([
            ("xds_servers", .array([.object(server)])),
            ("node", .object(node)),
            ("certificate_providers", .object(ConfigObject([
                (ProxylessTranslator.certificateProvider, .object(ConfigObject([("plugin_name", .string("file_watcher")), ("config", .object(provider))]))),
            ]))),
            ("server_listener_resource_name_template", .string(ProxylessTranslator.serverListenerTemplate)),
        ]))
    }
}
