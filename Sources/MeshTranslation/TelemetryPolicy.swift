internal import EnvoyAPI
internal import MeshModel
internal import SwiftProtobuf

/// What the Telemetry resources (and `mesh.yaml`) ask of one workload's sidecar, per direction:
/// tracing, access logs and whether its metrics are kept. Istio's resolution: the root
/// namespace's Telemetry (no selector), then the workload's namespace's (no selector), then one
/// whose selector matches the workload; a more specific one overrides each field it sets.
struct TelemetryPolicy {
    /// Tracing on one side.
    struct Tracing: Hashable {
        var providerName: String
        var provider: MeshConfig.ExtensionProvider
        var sampling: Double
        var customTags: [String: TelemetryTracing.CustomTag]
        var reportSpans: Bool
    }

    /// Access logging on one side.
    struct AccessLog: Hashable {
        var providers: [MeshConfig.ExtensionProvider]
        var filter: StatusFilter?
    }

    /// `response.code <op> N`, the filter expressions meshd translates.
    struct StatusFilter: Hashable {
        enum Operator: String, CaseIterable {
            case ge = ">=", le = "<=", ne = "!=", eq = "==", gt = ">", lt = "<"
        }
        var op: Operator
        var code: UInt32

        /// Parses an Istio (CEL) filter expression of the form `response.code >= 400`.
        static func parse(_ expression: String) -> StatusFilter? {
            let text = expression.filter { !$0.isWhitespace }
            guard text.hasPrefix("response.code") else { return nil }
            let rest = text.dropFirst("response.code".count)
            for op in Operator.allCases where rest.hasPrefix(op.rawValue) {
                guard let code = UInt32(rest.dropFirst(op.rawValue.count)) else { return nil }
                return StatusFilter(op: op, code: code)
            }
            return nil
        }
    }

    let workload: WorkloadInstance
    let mesh: MeshTelemetry
    private(set) var client = Side()
    private(set) var server = Side()

    /// One direction's settings.
    struct Side: Hashable {
        var tracing: Tracing?
        var accessLog: AccessLog?
        var metrics = true
        /// Where the side's entries for Istio's standard metrics go; nil when its metrics are off
        /// or nobody collects them.
        var reporting: MetricsReporting?
    }

    /// `reporting`: where the sidecar streams the entries of Istio's standard metrics (meshd's
    /// access log service), if anywhere.
    init(workload: WorkloadInstance, snapshot: MeshSnapshot, reporting: MetricsReporting? = nil) {
        self.workload = workload
        mesh = snapshot.mesh
        let root = snapshot.settings.rootNamespace
        func unselected(_ item: Configured<Telemetry>) -> Bool { (item.spec.selector?.matchLabels ?? [:]).isEmpty }
        let applying = [
            snapshot.telemetries.first { $0.metadata.namespace == root && unselected($0) },
            workload.namespace == root ? nil : snapshot.telemetries.first { $0.metadata.namespace == workload.namespace && unselected($0) },
            snapshot.telemetries.first { $0.metadata.namespace == workload.namespace && !unselected($0) && workload.matches($0.spec.selector!.matchLabels!) },
        ].compactMap { $0?.spec }
        client = Self.resolve(applying, mode: .CLIENT, mesh: mesh)
        server = Self.resolve(applying, mode: .SERVER, mesh: mesh)
        if client.metrics { client.reporting = reporting }
        if server.metrics { server.reporting = reporting }
    }

    /// The side a reporter is: the client side reports as `source`, the server side as
    /// `destination`.
    func side(_ reporter: MetricsReporting.Reporter) -> Side {
        reporter == .source ? client : server
    }

    /// The access loggers of an HTTP connection manager on `reporter`'s side: the Telemetry's
    /// file logs, then the stream of Istio's standard metrics.
    func httpLogs(_ reporter: MetricsReporting.Reporter) -> [Envoy_Config_Accesslog_V3_AccessLog] {
        let side = side(reporter)
        return accessLogs(side.accessLog, http: true) + (side.reporting.map { [$0.accessLog(reporter, http: true)] } ?? [])
    }

    /// Sets a TCP proxy's access loggers on `reporter`'s side. With the metrics stream, the proxy
    /// also logs when its upstream connection is made; the file logs keep logging at the end only.
    func applyLogs(to proxy: inout Envoy_Extensions_Filters_Network_TcpProxy_V3_TcpProxy, _ reporter: MetricsReporting.Reporter) {
        let side = side(reporter)
        proxy.accessLog = accessLogs(side.accessLog, http: false)
        guard let reporting = side.reporting else { return }
        for index in proxy.accessLog.indices {
            let endOnly = MetricsReporting.connectionEndOnly
            if proxy.accessLog[index].hasFilter {
                var both = Envoy_Config_Accesslog_V3_AndFilter()
                both.filters = [proxy.accessLog[index].filter, endOnly]
                proxy.accessLog[index].filter.andFilter = both
            } else {
                proxy.accessLog[index].filter = endOnly
            }
        }
        proxy.accessLog.append(reporting.accessLog(reporter, http: false))
        proxy.accessLogOptions = MetricsReporting.tcpOptions
    }

    private static func applies(_ mode: TelemetryWorkloadMode?, to side: TelemetryWorkloadMode) -> Bool {
        mode == nil || mode == .CLIENT_AND_SERVER || mode == side
    }

    private static func resolve(_ policies: [Telemetry], mode: TelemetryWorkloadMode, mesh: MeshTelemetry) -> Side {
        var side = Side()
        // Tracing: providers, sampling, tags, reporting, field by field.
        var tracingProviders = mesh.tracingEnabled ? (mesh.config.defaultProviders?.tracing ?? []) : []
        var sampling = mesh.defaultSampling
        var tags: [String: TelemetryTracing.CustomTag] = [:]
        var report = true
        for policy in policies {
            for tracing in policy.tracing ?? [] where applies(tracing.match?.mode, to: mode) {
                if let providers = tracing.providers, !providers.isEmpty { tracingProviders = providers.map(\.name) }
                if let value = tracing.randomSamplingPercentage { sampling = value }
                if let value = tracing.disableSpanReporting { report = !value }
                for (name, tag) in tracing.customTags ?? [:] { tags[name] = tag }
            }
        }
        if let name = tracingProviders.first, let provider = mesh.provider(named: name), provider.zipkin != nil || provider.opentelemetry != nil {
            side.tracing = Tracing(providerName: name, provider: provider, sampling: report ? sampling : 0, customTags: tags, reportSpans: report)
        }
        // Access logs: providers, disabled, filter.
        var logProviders = mesh.config.defaultProviders?.accessLogging ?? []
        if logProviders.isEmpty, let file = mesh.accessLogFile, !file.isEmpty { logProviders = ["envoy"] }
        var disabled = false
        var filter: StatusFilter? = nil
        for policy in policies {
            for logging in policy.accessLogging ?? [] where applies(logging.match?.mode, to: mode) {
                if let providers = logging.providers, !providers.isEmpty { logProviders = providers.map(\.name) }
                if let value = logging.disabled { disabled = value }
                if let expression = logging.filter?.expression { filter = StatusFilter.parse(expression) }
            }
        }
        let resolved = logProviders.compactMap { mesh.provider(named: $0) }.filter { $0.envoyFileAccessLog != nil }
        if !disabled, !resolved.isEmpty { side.accessLog = AccessLog(providers: resolved, filter: filter) }
        // Metrics: every metric on or off per side.
        for policy in policies {
            for metrics in policy.metrics ?? [] {
                for override in metrics.overrides ?? [] where applies(override.match?.mode, to: mode) {
                    if let value = override.disabled { side.metrics = !value }
                }
            }
        }
        return side
    }

    // MARK: Envoy

    /// The cluster a tracing provider's collector is reached through.
    static func collectorCluster(_ providerName: String) -> String { "tracing|\(providerName)" }

    /// The stat name of clusters and listeners whose metrics are off (the bootstrap drops them).
    static let disabledStatName = "meshd_disabled"

    /// Request and response sizes are tracked; without `metrics`, the stats go under a name the
    /// bootstrap drops.
    static func applyMetrics(to cluster: inout Cluster, metrics: Bool) {
        var track = Envoy_Config_Cluster_V3_TrackClusterStats()
        track.requestResponseSizes = true
        cluster.trackClusterStats = track
        if !metrics { cluster.altStatName = disabledStatName }
    }

    /// HCM tracing for one side.
    func hcmTracing(_ tracing: Tracing) -> HCM.Tracing {
        var config = HCM.Tracing()
        var percent = Envoy_Type_V3_Percent()
        percent.value = tracing.sampling
        config.randomSampling = percent
        config.customTags = tracing.customTags.keys.sorted().compactMap { name in Self.customTag(name, tracing.customTags[name]!) }
        var provider = Envoy_Config_Trace_V3_Tracing.Http()
        if let zipkin = tracing.provider.zipkin {
            var settings = Envoy_Config_Trace_V3_ZipkinConfig()
            settings.collectorCluster = Self.collectorCluster(tracing.providerName)
            settings.collectorEndpoint = zipkin.path.flatMap { $0.isEmpty ? nil : $0 } ?? "/api/v2/spans"
            settings.collectorEndpointVersion = .httpJson
            settings.traceID128Bit = !(zipkin.enable64bitTraceId ?? false)
            settings.sharedSpanContext = Google_Protobuf_BoolValue(false)
            settings.traceContextOption = zipkin.traceContextOption == .USE_B3_WITH_W3C_PROPAGATION ? .useB3WithW3CPropagation : .useB3
            provider.name = "envoy.tracers.zipkin"
            provider.typedConfig = Google_Protobuf_Any(deterministic: settings)
        } else if let otel = tracing.provider.opentelemetry {
            var settings = Envoy_Config_Trace_V3_OpenTelemetryConfig()
            settings.serviceName = "\(workload.labels["app"] ?? workload.name).\(workload.namespace)"
            if let http = otel.http {
                var service = Envoy_Config_Core_V3_HttpService()
                var uri = Envoy_Config_Core_V3_HttpUri()
                uri.uri = "http://\(otel.service ?? ""):\(otel.port ?? 0)\(http.path ?? "/v1/traces")"
                uri.cluster = Self.collectorCluster(tracing.providerName)
                uri.timeout = Google_Protobuf_Duration(seconds: 5)
                service.httpUri = uri
                settings.httpService = service
            } else {
                var grpc = Envoy_Config_Core_V3_GrpcService()
                var envoyGrpc = Envoy_Config_Core_V3_GrpcService.EnvoyGrpc()
                envoyGrpc.clusterName = Self.collectorCluster(tracing.providerName)
                grpc.envoyGrpc = envoyGrpc
                settings.grpcService = grpc
            }
            provider.name = "envoy.tracers.opentelemetry"
            provider.typedConfig = Google_Protobuf_Any(deterministic: settings)
        }
        config.provider = provider
        return config
    }

    static func customTag(_ name: String, _ tag: TelemetryTracing.CustomTag) -> Envoy_Type_Tracing_V3_CustomTag? {
        var out = Envoy_Type_Tracing_V3_CustomTag()
        out.tag = name
        if let literal = tag.literal {
            var value = Envoy_Type_Tracing_V3_CustomTag.Literal()
            value.value = literal.value
            out.literal = value
        } else if let header = tag.header {
            var value = Envoy_Type_Tracing_V3_CustomTag.Header()
            value.name = header.name
            value.defaultValue = header.defaultValue ?? ""
            out.requestHeader = value
        } else if let environment = tag.environment {
            var value = Envoy_Type_Tracing_V3_CustomTag.Environment()
            value.name = environment.name
            value.defaultValue = environment.defaultValue ?? ""
            out.environment = value
        } else {
            return nil
        }
        return out
    }

    /// The collector clusters of the providers either side traces to; `bind` says what each says
    /// about its upstream bind.
    func collectorClusters(snapshot: MeshSnapshot, bind: UpstreamBind.ClusterBind) -> [Cluster] {
        var seen: Set<String> = []
        var out: [Cluster] = []
        for tracing in [client.tracing, server.tracing].compactMap({ $0 }) where seen.insert(tracing.providerName).inserted {
            let host = tracing.provider.zipkin?.service ?? tracing.provider.opentelemetry?.service ?? ""
            let port = tracing.provider.zipkin?.port ?? tracing.provider.opentelemetry?.port ?? 0
            var cluster = Cluster()
            cluster.name = Self.collectorCluster(tracing.providerName)
            cluster.connectTimeout = Google_Protobuf_Duration(seconds: 5)
            bind.apply(to: &cluster)
            var assignment = ClusterLoadAssignment()
            assignment.clusterName = cluster.name
            var locality = Envoy_Config_Endpoint_V3_LocalityLbEndpoints()
            let service = snapshot.registry.service(hostname: HostName.resolve(host, in: workload.namespace, domainSuffix: snapshot.settings.domainSuffix), visibleFrom: workload.namespace)
            if let service, let servicePort = service.port(port) {
                cluster.type = .static
                locality.lbEndpoints = snapshot.registry.instances(of: service).map { instance in
                    var endpoint = Envoy_Config_Endpoint_V3_LbEndpoint()
                    var inner = Envoy_Config_Endpoint_V3_Endpoint()
                    inner.address = Envoy.address(instance.address, port: instance.endpointPort(for: servicePort))
                    endpoint.endpoint = inner
                    return endpoint
                }
            } else {
                cluster.type = .strictDns
                var endpoint = Envoy_Config_Endpoint_V3_LbEndpoint()
                var inner = Envoy_Config_Endpoint_V3_Endpoint()
                inner.address = Envoy.address(host, port: port)
                endpoint.endpoint = inner
                locality.lbEndpoints = [endpoint]
            }
            assignment.endpoints = [locality]
            cluster.loadAssignment = assignment
            if tracing.provider.opentelemetry != nil && tracing.provider.opentelemetry?.http == nil {
                cluster.typedExtensionProtocolOptions = Envoy.http2ProtocolOptions
            }
            out.append(cluster)
        }
        return out
    }

    /// Access loggers for one side; `http` picks the HTTP or the TCP format.
    func accessLogs(_ log: AccessLog?, http: Bool) -> [Envoy_Config_Accesslog_V3_AccessLog] {
        guard let log else { return [] }
        return log.providers.map { provider in
            let settings = provider.envoyFileAccessLog!
            var file = Envoy_Extensions_AccessLoggers_File_V3_FileAccessLog()
            file.path = (settings.path ?? "/dev/stdout")
                .replacing("{namespace}", with: workload.namespace)
                .replacing("{workload}", with: workload.name)
            var format = Envoy_Config_Core_V3_SubstitutionFormatString()
            if let labels = settings.logFormat?.labels, case .object(let fields) = labels {
                var json = Google_Protobuf_Struct()
                for (key, value) in fields.pairs { if case .string(let text) = value { json.fields[key] = Google_Protobuf_Value(stringValue: text) } }
                format.jsonFormat = json
            } else if let text = settings.logFormat?.text ?? (provider.name == "envoy" ? mesh.accessLogFormat.flatMap { mesh.accessLogEncoding == .TEXT ? $0 : nil } : nil) {
                var source = Envoy_Config_Core_V3_DataSource()
                source.inlineString = text.hasSuffix("\n") ? text : text + "\n"
                format.textFormatSource = source
            } else if provider.name != "envoy" || mesh.accessLogEncoding == .JSON {
                var json = Google_Protobuf_Struct()
                for (key, value) in Self.jsonFields(http: http) { json.fields[key] = Google_Protobuf_Value(stringValue: value) }
                format.jsonFormat = json
            } else {
                var source = Envoy_Config_Core_V3_DataSource()
                source.inlineString = Self.textFormat
                format.textFormatSource = source
            }
            file.logFormat = format
            var accessLog = Envoy_Config_Accesslog_V3_AccessLog()
            accessLog.name = "envoy.access_loggers.file"
            accessLog.typedConfig = Google_Protobuf_Any(deterministic: file)
            if let filter = log.filter { accessLog.filter = Self.envoyFilter(filter) }
            return accessLog
        }
    }

    static func envoyFilter(_ filter: StatusFilter) -> Envoy_Config_Accesslog_V3_AccessLogFilter {
        func compare(_ op: Envoy_Config_Accesslog_V3_ComparisonFilter.Op, _ value: UInt32) -> Envoy_Config_Accesslog_V3_AccessLogFilter {
            var comparison = Envoy_Config_Accesslog_V3_ComparisonFilter()
            comparison.op = op
            var runtime = Envoy_Config_Core_V3_RuntimeUInt32()
            runtime.defaultValue = value
            runtime.runtimeKey = "meshd.access_log.status"
            comparison.value = runtime
            var status = Envoy_Config_Accesslog_V3_StatusCodeFilter()
            status.comparison = comparison
            var out = Envoy_Config_Accesslog_V3_AccessLogFilter()
            out.statusCodeFilter = status
            return out
        }
        switch filter.op {
        case .ge: return compare(.ge, filter.code)
        case .le: return compare(.le, filter.code)
        case .eq: return compare(.eq, filter.code)
        case .gt: return compare(.ge, filter.code + 1)
        case .lt: return compare(.le, filter.code == 0 ? 0 : filter.code - 1)
        case .ne:
            var either = Envoy_Config_Accesslog_V3_OrFilter()
            either.filters = [compare(.le, filter.code == 0 ? 0 : filter.code - 1), compare(.ge, filter.code + 1)]
            var out = Envoy_Config_Accesslog_V3_AccessLogFilter()
            out.orFilter = either
            return out
        }
    }

    /// The fields of Istio's default access log, plus the peers' SPIFFE identities.
    static func jsonFields(http: Bool) -> [String: String] {
        var fields = [
            "start_time": "%START_TIME%",
            "protocol": "%PROTOCOL%",
            "response_flags": "%RESPONSE_FLAGS%",
            "bytes_received": "%BYTES_RECEIVED%",
            "bytes_sent": "%BYTES_SENT%",
            "duration": "%DURATION%",
            "upstream_cluster": "%UPSTREAM_CLUSTER%",
            "upstream_host": "%UPSTREAM_HOST%",
            "upstream_local_address": "%UPSTREAM_LOCAL_ADDRESS%",
            "upstream_transport_failure_reason": "%UPSTREAM_TRANSPORT_FAILURE_REASON%",
            "downstream_local_address": "%DOWNSTREAM_LOCAL_ADDRESS%",
            "downstream_remote_address": "%DOWNSTREAM_REMOTE_ADDRESS%",
            "downstream_peer_identity": "%DOWNSTREAM_PEER_URI_SAN%",
            "upstream_peer_identity": "%UPSTREAM_PEER_URI_SAN%",
            "requested_server_name": "%REQUESTED_SERVER_NAME%",
            "connection_termination_details": "%CONNECTION_TERMINATION_DETAILS%",
        ]
        if http {
            fields.merge([
                "method": "%REQ(:METHOD)%",
                "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
                "response_code": "%RESPONSE_CODE%",
                "response_code_details": "%RESPONSE_CODE_DETAILS%",
                "upstream_service_time": "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
                "x_forwarded_for": "%REQ(X-FORWARDED-FOR)%",
                "user_agent": "%REQ(USER-AGENT)%",
                "request_id": "%REQ(X-REQUEST-ID)%",
                "authority": "%REQ(:AUTHORITY)%",
                "route_name": "%ROUTE_NAME%",
                "grpc_status": "%GRPC_STATUS(NUMBER)%",
            ]) { $1 }
        }
        return fields
    }

    /// Istio's default text access log line, with meshd's `peer=` (the caller's SPIFFE ID) and
    /// `grpc=` (a gRPC call's status number; `-` for other requests).
    static let textFormat = "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% \"%UPSTREAM_TRANSPORT_FAILURE_REASON%\" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\" %UPSTREAM_CLUSTER% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME% peer=%DOWNSTREAM_PEER_URI_SAN% grpc=%GRPC_STATUS(NUMBER)%\n"
}
