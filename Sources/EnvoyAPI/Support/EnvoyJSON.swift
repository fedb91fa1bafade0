public import SwiftProtobuf

/// Envoy's JSON form of resources meshd made (what `meshctl proxy-config` prints). Nested
/// `typed_config`s print as objects with their `@type`, because every message type meshd packs
/// into an `Any` is registered with SwiftProtobuf once, on the first print; packing itself touches
/// no global state.
public enum EnvoyJSON {
    /// Every message type meshd packs into an `Any` (the translation tests print every resource
    /// of hundreds of generated meshes, so a type missing here fails them).
    static let packedTypes: [any SwiftProtobuf.Message.Type] = [
        Envoy_Config_Cluster_V3_Cluster.self,
        Envoy_Config_Endpoint_V3_ClusterLoadAssignment.self,
        Envoy_Config_Listener_V3_Listener.self,
        Envoy_Config_Route_V3_RouteConfiguration.self,
        Envoy_Extensions_TransportSockets_Tls_V3_Secret.self,
        Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager.self,
        Envoy_Extensions_Filters_Network_TcpProxy_V3_TcpProxy.self,
        Envoy_Extensions_Filters_Network_Rbac_V3_RBAC.self,
        Envoy_Extensions_Filters_Http_Rbac_V3_RBAC.self,
        Envoy_Extensions_Filters_Http_JwtAuthn_V3_JwtAuthentication.self,
        Envoy_Extensions_Filters_Http_ExtAuthz_V3_ExtAuthz.self,
        Envoy_Extensions_Filters_Network_ExtAuthz_V3_ExtAuthz.self,
        Envoy_Extensions_Filters_Http_Router_V3_Router.self,
        Envoy_Extensions_Filters_Http_Cors_V3_Cors.self,
        Envoy_Extensions_Filters_Http_Cors_V3_CorsPolicy.self,
        Envoy_Extensions_Filters_Http_Fault_V3_HTTPFault.self,
        Envoy_Extensions_Filters_Http_DynamicForwardProxy_V3_FilterConfig.self,
        Envoy_Extensions_Clusters_DynamicForwardProxy_V3_ClusterConfig.self,
        Envoy_Extensions_Upstreams_Http_V3_HttpProtocolOptions.self,
        Envoy_Extensions_Retry_Host_PreviousHosts_V3_PreviousHostsPredicate.self,
        Envoy_Extensions_Retry_Priority_PreviousPriorities_V3_PreviousPrioritiesConfig.self,
        Envoy_Extensions_AccessLoggers_File_V3_FileAccessLog.self,
        Envoy_Config_Trace_V3_ZipkinConfig.self,
        Envoy_Config_Trace_V3_OpenTelemetryConfig.self,
        Envoy_Extensions_TransportSockets_RawBuffer_V3_RawBuffer.self,
        Envoy_Extensions_TransportSockets_Tls_V3_DownstreamTlsContext.self,
        Envoy_Extensions_TransportSockets_Tls_V3_UpstreamTlsContext.self,
        Envoy_Extensions_Filters_Listener_TlsInspector_V3_TlsInspector.self,
        Envoy_Extensions_Filters_Listener_HttpInspector_V3_HttpInspector.self,
        Envoy_Extensions_Filters_Http_GrpcStats_V3_FilterConfig.self,
    ]

    private static let registration: Void = {
        for type in packedTypes { _ = Google_Protobuf_Any.register(messageType: type) }
    }()

    /// Registers ``packedTypes`` with SwiftProtobuf (once; later calls do nothing), for code that
    /// prints messages holding `Any`s as JSON other than through ``string(_:)``.
    public static func registerPackedTypes() {
        _ = registration
    }

    /// The JSON of a packed resource (`{"@type": ..., ...}`), with proto field names.
    public static func string(_ any: Google_Protobuf_Any) throws -> String {
        registerPackedTypes()
        var options = JSONEncodingOptions()
        options.preserveProtoFieldNames = true
        return try any.jsonString(options: options)
    }
}
