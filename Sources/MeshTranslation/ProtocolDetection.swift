internal import EnvoyAPI
internal import MeshModel
internal import SwiftProtobuf

/// Ports whose protocol is found per connection (``ServiceProtocol/auto``), as Istio's automatic
/// protocol selection does it with upstream Envoy's parts:
///
/// - plaintext: `http_inspector` reads the first bytes; HTTP/1.x gives `http/1.1`, HTTP/2's
///   preface `h2c`, and the filter chain matching them runs the HTTP connection manager, the
///   others a TCP proxy;
/// - mTLS between sidecars: the client sidecar's HTTP connection pools offer ALPN `h2` or
///   `http/1.1` (Envoy's fallback when the cluster's TLS context names none, which is why these
///   clusters name none), its TCP proxy offers none; `tls_inspector` reads the ALPN, so the
///   server sidecar picks the HTTP or the TCP chain without seeing inside the TLS;
/// - TLS from the app itself is not HTTP to `http_inspector`, so it passes through the TCP chain
///   byte for byte, its SNI with it.
///
/// A client that sends nothing (a server-first protocol such as MySQL's) waits until mesh.yaml's
/// `protocolDetectionTimeout`, then goes the TCP way. A port that declares its protocol is never
/// inspected, so declared server-first protocols are never delayed.
enum ProtocolDetection {
    /// What `http_inspector` reports for plaintext HTTP.
    static let plaintextHTTP = ["http/1.1", "h2c"]
    /// The ALPN an HTTP connection pool of a client sidecar offers.
    static let alpnHTTP = ["h2", "http/1.1"]

    static var httpInspector: ListenerFilter {
        var filter = ListenerFilter()
        filter.name = "envoy.filters.listener.http_inspector"
        filter.typedConfig = Google_Protobuf_Any(deterministic: Envoy_Extensions_Filters_Listener_HttpInspector_V3_HttpInspector())
        return filter
    }

    /// Gives `listener` the inspectors (`tls_inspector` when `tls`, then `http_inspector`) and
    /// the detection timeout, after which a connection continues with what is known (TCP).
    static func inspect(_ listener: inout Listener, tls: Bool, timeout: IstioDuration) {
        listener.listenerFilters = (tls ? [TLSContexts.tlsInspector] : []) + [httpInspector]
        listener.listenerFiltersTimeout = Envoy.duration(milliseconds: timeout.nanoseconds / 1_000_000)
        listener.continueOnListenerFiltersTimeout = true
    }

    /// A filter chain match on the application protocols `protocols` (and a transport protocol).
    static func match(_ protocols: [String], transport: String? = nil) -> Envoy_Config_Listener_V3_FilterChainMatch {
        var match = Envoy_Config_Listener_V3_FilterChainMatch()
        match.applicationProtocols = protocols
        if let transport { match.transportProtocol = transport }
        return match
    }

    /// Upstream HTTP in the protocol the client spoke (HTTP/1.1 stays HTTP/1.1, h2c stays HTTP/2),
    /// for the clusters of detected ports.
    static var downstreamProtocolOptions: [String: Google_Protobuf_Any] {
        var downstream = Envoy_Extensions_Upstreams_Http_V3_HttpProtocolOptions.UseDownstreamHttpConfig()
        downstream.http2ProtocolOptions = Envoy_Config_Core_V3_Http2ProtocolOptions()
        var options = Envoy_Extensions_Upstreams_Http_V3_HttpProtocolOptions()
        options.useDownstreamProtocolConfig = downstream
        return ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions": Google_Protobuf_Any(deterministic: options)]
    }

    /// Envoy's gRPC statistics filter for gRPC ports: per cluster, calls by gRPC status
    /// (`cluster.<name>.grpc.<status>`, `.success`, `.failure`, `.total`). Per-method names stay
    /// off: method names come from callers, and a caller could make unbounded stat names.
    static var grpcStatsFilter: HTTPFilter {
        var config = Envoy_Extensions_Filters_Http_GrpcStats_V3_FilterConfig()
        config.statsForAllMethods = Google_Protobuf_BoolValue(false)
        return Envoy.httpFilter("envoy.filters.http.grpc_stats", config)
    }
}
