internal import EnvoyAPI
internal import SwiftProtobuf

typealias Listener = Envoy_Config_Listener_V3_Listener
typealias FilterChain = Envoy_Config_Listener_V3_FilterChain
typealias NetworkFilter = Envoy_Config_Listener_V3_Filter
typealias ListenerFilter = Envoy_Config_Listener_V3_ListenerFilter
typealias RouteConfiguration = Envoy_Config_Route_V3_RouteConfiguration
typealias VirtualHost = Envoy_Config_Route_V3_VirtualHost
typealias Route = Envoy_Config_Route_V3_Route
typealias RouteAction = Envoy_Config_Route_V3_RouteAction
typealias Cluster = Envoy_Config_Cluster_V3_Cluster
typealias ClusterLoadAssignment = Envoy_Config_Endpoint_V3_ClusterLoadAssignment
typealias LbEndpoint = Envoy_Config_Endpoint_V3_LbEndpoint
typealias HCM = Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager
typealias HTTPFilter = Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpFilter
typealias TCPProxy = Envoy_Extensions_Filters_Network_TcpProxy_V3_TcpProxy
typealias Address = Envoy_Config_Core_V3_Address
typealias ProtobufDuration = Google_Protobuf_Duration

/// Small constructors for the Envoy messages translation builds again and again.
enum Envoy {
    /// A socket address (`127.0.0.2:8080`) or a Unix socket path (`unix:///path`).
    static func address(_ host: String, port: UInt32) -> Address {
        var address = Address()
        if host.hasPrefix("unix://") {
            var pipe = Envoy_Config_Core_V3_Pipe()
            pipe.path = String(host.dropFirst("unix://".count))
            address.pipe = pipe
        } else {
            var socket = Envoy_Config_Core_V3_SocketAddress()
            socket.address = host
            socket.portValue = port
            address.socketAddress = socket
        }
        return address
    }

    /// A duration of whole milliseconds.
    static func duration(milliseconds: Int64) -> ProtobufDuration {
        var duration = ProtobufDuration()
        duration.seconds = milliseconds / 1000
        duration.nanos = Int32((milliseconds % 1000) * 1_000_000)
        return duration
    }

    /// A duration of whole seconds.
    static func duration(seconds: Int64) -> ProtobufDuration {
        duration(milliseconds: seconds * 1000)
    }

    /// A config source that points at the ADS stream.
    static var adsConfigSource: Envoy_Config_Core_V3_ConfigSource {
        var source = Envoy_Config_Core_V3_ConfigSource()
        source.ads = Envoy_Config_Core_V3_AggregatedConfigSource()
        source.resourceApiVersion = .v3
        return source
    }

    /// A network filter with a typed config.
    static func networkFilter(_ name: String, _ config: some SwiftProtobuf.Message) -> NetworkFilter {
        var filter = NetworkFilter()
        filter.name = name
        filter.typedConfig = Google_Protobuf_Any(deterministic: config)
        return filter
    }

    /// An HTTP filter with a typed config.
    static func httpFilter(_ name: String, _ config: some SwiftProtobuf.Message) -> HTTPFilter {
        var filter = HTTPFilter()
        filter.name = name
        filter.typedConfig = Google_Protobuf_Any(deterministic: config)
        return filter
    }

    /// A route's timeout as Istio sets it: `timeout` for the whole request (0: none), and a gRPC
    /// call's own deadline (its `grpc-timeout` header) honoured up to the same bound (0: as the
    /// caller asks). Like Istio, through `max_grpc_timeout`: with `max_stream_duration` set, Envoy's
    /// router would ignore `timeout` altogether.
    static func setTimeout(_ action: inout RouteAction, _ timeout: Google_Protobuf_Duration) {
        action.timeout = timeout
        action.maxGrpcTimeout = timeout
    }

    /// The router filter, last in every HTTP filter chain.
    static var routerFilter: HTTPFilter {
        httpFilter("envoy.filters.http.router", Envoy_Extensions_Filters_Http_Router_V3_Router())
    }

    /// A UInt32 wrapper.
    static func uint32(_ value: UInt32) -> Google_Protobuf_UInt32Value {
        Google_Protobuf_UInt32Value(value)
    }

    /// Istio's cluster circuit breakers when nothing sets them: every threshold at the maximum
    /// (4294967295) instead of Envoy's 1024 default, with remaining-capacity tracking.
    static var defaultCircuitBreakers: Envoy_Config_Cluster_V3_CircuitBreakers {
        var thresholds = Envoy_Config_Cluster_V3_CircuitBreakers.Thresholds()
        thresholds.maxConnections = uint32(UInt32.max)
        thresholds.maxPendingRequests = uint32(UInt32.max)
        thresholds.maxRequests = uint32(UInt32.max)
        thresholds.maxRetries = uint32(UInt32.max)
        thresholds.trackRemaining = true
        var breakers = Envoy_Config_Cluster_V3_CircuitBreakers()
        breakers.thresholds = [thresholds]
        return breakers
    }

    /// Upstream protocol options that make a cluster speak HTTP/2 (gRPC and HTTP2 ports).
    static var http2ProtocolOptions: [String: Google_Protobuf_Any] {
        var explicit = Envoy_Extensions_Upstreams_Http_V3_HttpProtocolOptions.ExplicitHttpConfig()
        explicit.http2ProtocolOptions = Envoy_Config_Core_V3_Http2ProtocolOptions()
        var options = Envoy_Extensions_Upstreams_Http_V3_HttpProtocolOptions()
        options.explicitHTTPConfig = explicit
        return ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions": Google_Protobuf_Any(deterministic: options)]
    }
}
