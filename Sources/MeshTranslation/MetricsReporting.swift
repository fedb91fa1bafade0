public import EnvoyAPI
internal import SwiftProtobuf

/// Where a proxy streams the access log entries from which meshd makes Istio's standard metrics
/// (`istio_requests_total` and the rest): Envoy's gRPC access log service on meshd's xDS port,
/// reached through the bootstrap's `xds-grpc` cluster. Each stream carries the proxy's own report
/// key, which meshd derives from its workload, so that a stream can only report as that workload.
public struct MetricsReporting: Hashable, Sendable {
    /// Which side of a request a proxy reports, as Istio's `reporter` label says it.
    public enum Reporter: String, Hashable, Sendable, CaseIterable {
        /// The client's proxy (outbound listeners; gateways).
        case source
        /// The server's proxy (inbound listeners).
        case destination
    }

    /// The gRPC metadata header carrying ``key``.
    public static let keyHeader = "x-meshd-report-key"
    /// The access log name of `reporter`'s stream; meshd reads the reporter from it.
    public static func logName(_ reporter: Reporter) -> String { "meshd-metrics/\(reporter.rawValue)" }
    /// The reporter a stream's log name names, if any.
    public static func reporter(logName: String) -> Reporter? {
        Reporter.allCases.first { Self.logName($0) == logName }
    }

    /// The bootstrap cluster that reaches meshd.
    public var cluster: String
    /// The workload's report key.
    public var key: String
    /// How long Envoy buffers entries before sending them (Envoy's default: 1 s).
    public var flushIntervalMilliseconds: UInt32

    /// Reporting through `cluster` with `key`.
    public init(key: String, cluster: String = "xds-grpc", flushIntervalMilliseconds: UInt32 = 1000) {
        self.key = key
        self.cluster = cluster
        self.flushIntervalMilliseconds = flushIntervalMilliseconds
    }

    /// The request and response headers meshd reads: the content type tells gRPC from HTTP, and
    /// a gRPC status comes in the trailers (or, for a call that failed at once, in the headers).
    static let requestHeaders = ["content-type"]
    static let responseHeaders = ["grpc-status"]

    /// The access logger of `reporter`: HTTP entries (`http: true`) or TCP connections.
    func accessLog(_ reporter: Reporter, http: Bool) -> Envoy_Config_Accesslog_V3_AccessLog {
        var common = Envoy_Extensions_AccessLoggers_Grpc_V3_CommonGrpcAccessLogConfig()
        common.logName = Self.logName(reporter)
        var service = Envoy_Config_Core_V3_GrpcService()
        var envoyGRPC = Envoy_Config_Core_V3_GrpcService.EnvoyGrpc()
        envoyGRPC.clusterName = cluster
        service.envoyGrpc = envoyGRPC
        var header = Envoy_Config_Core_V3_HeaderValue()
        header.key = Self.keyHeader
        header.value = key
        service.initialMetadata = [header]
        common.grpcService = service
        common.transportApiVersion = .v3
        common.bufferFlushInterval = Google_Protobuf_Duration(
            seconds: Int64(flushIntervalMilliseconds / 1000), nanos: Int32(flushIntervalMilliseconds % 1000) * 1_000_000)
        var accessLog = Envoy_Config_Accesslog_V3_AccessLog()
        if http {
            var config = Envoy_Extensions_AccessLoggers_Grpc_V3_HttpGrpcAccessLogConfig()
            config.commonConfig = common
            config.additionalRequestHeadersToLog = Self.requestHeaders
            config.additionalResponseHeadersToLog = Self.responseHeaders
            config.additionalResponseTrailersToLog = Self.responseHeaders
            accessLog.name = "envoy.access_loggers.http_grpc"
            accessLog.typedConfig = Google_Protobuf_Any(deterministic: config)
        } else {
            var config = Envoy_Extensions_AccessLoggers_Grpc_V3_TcpGrpcAccessLogConfig()
            config.commonConfig = common
            accessLog.name = "envoy.access_loggers.tcp_grpc"
            accessLog.typedConfig = Google_Protobuf_Any(deterministic: config)
        }
        return accessLog
    }

    /// TCP proxies log once when the upstream connection is made (Istio's
    /// `istio_tcp_connections_opened_total` counts then) and once when it ends.
    static var tcpOptions: Envoy_Extensions_Filters_Network_TcpProxy_V3_TcpProxy.TcpAccessLogOptions {
        var options = Envoy_Extensions_Filters_Network_TcpProxy_V3_TcpProxy.TcpAccessLogOptions()
        options.flushAccessLogOnConnected = true
        return options
    }

    /// A filter that keeps the other access logs of a TCP proxy to the end of each connection, as
    /// they were before the connect-time entry existed.
    static var connectionEndOnly: Envoy_Config_Accesslog_V3_AccessLogFilter {
        var types = Envoy_Config_Accesslog_V3_LogTypeFilter()
        types.types = [.tcpUpstreamConnected]
        types.exclude = true
        var filter = Envoy_Config_Accesslog_V3_AccessLogFilter()
        filter.logTypeFilter = types
        return filter
    }
}
