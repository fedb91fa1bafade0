internal import EnvoyAPI
internal import GRPCCore
internal import Synchronization
internal import Logging
internal import SwiftProtobuf
internal import MeshModel
internal import MeshTranslation

/// Envoy's access log service on the xDS port: the streams of ``MetricsReporting`` from which
/// meshd counts Istio's standard metrics (``StandardMetrics``).
///
/// A stream's first message names the proxy's node and the log (`meshd-metrics/source` or
/// `meshd-metrics/destination`); the stream must carry the workload's report key
/// (``MetricsReportKeys``), else it ends with `UNAUTHENTICATED` and nothing it sent is counted.
struct AccessLogGRPCService: Envoy_Service_Accesslog_V3_AccessLogService.ServiceProtocol {
    let keys: MetricsReportKeys
    let metrics: StandardMetrics
    let attributions: AttributionCache
    let logger: Logger

    /// One ``MetricsAttribution`` per snapshot revision, shared by every stream.
    final class AttributionCache: Sendable {
        private let current: @Sendable () -> MeshSnapshot
        private let cached = Mutex<MetricsAttribution?>(nil)

        init(current: @escaping @Sendable () -> MeshSnapshot) {
            self.current = current
        }

        /// The attribution of the snapshot being served.
        func attribution() -> MetricsAttribution {
            let snapshot = current()
            if let cached = cached.withLock({ $0 }), cached.revision == snapshot.revision { return cached }
            let made = MetricsAttribution(snapshot: snapshot)
            cached.withLock { $0 = made }
            return made
        }
    }

    /// The most connection label sets a stream keeps (its peers, clusters and authorities).
    static let maximumCachedConnections = 4096

    func streamAccessLogs(
        request: StreamingServerRequest<Envoy_Service_Accesslog_V3_StreamAccessLogsMessage>,
        context: ServerContext
    ) async throws -> ServerResponse<Envoy_Service_Accesslog_V3_StreamAccessLogsResponse> {
        var stream: (reporter: MetricsReporting.Reporter, workload: ServiceRegistry.WorkloadID)? = nil
        var revision: UInt64? = nil
        var connections: [MetricsAttribution.ConnectionKey: MetricsAttribution.ConnectionLabels] = [:]
        for try await message in request.messages {
            if stream == nil {
                stream = try admit(message, metadata: request.metadata)
            }
            guard let (reporter, id) = stream else { continue }
            let attribution = attributions.attribution()
            if revision != attribution.revision {
                revision = attribution.revision
                connections = [:]
            }
            guard let proxy = attribution.snapshot.registry.workload(id) ?? attribution.snapshot.retiring[id] else { continue }
            func labels(_ key: MetricsAttribution.ConnectionKey) -> MetricsAttribution.ConnectionLabels {
                if let known = connections[key] { return known }
                let made = attribution.connectionLabels(key, proxy: proxy)
                if connections.count >= Self.maximumCachedConnections { connections = [:] }
                connections[key] = made
                return made
            }
            switch message.logEntries {
            case .httpLogs(let logs):
                let requests = logs.logEntry.compactMap { entry -> StandardMetrics.Request? in
                    guard Self.isFinal(entry.commonProperties.accessLogType) else { return nil }
                    let connection = labels(MetricsAttribution.connectionKey(entry, reporter: reporter, proxy: id))
                    let common = entry.commonProperties
                    let duration = common.hasTimeToLastDownstreamTxByte ? common.timeToLastDownstreamTxByte : common.duration
                    return StandardMetrics.Request(
                        labels: MetricsAttribution.labels(entry, connection: connection),
                        durationMilliseconds: Double(duration.seconds) * 1000 + Double(duration.nanos) / 1e6,
                        requestBytes: entry.request.requestHeadersBytes + entry.request.requestBodyBytes,
                        responseBytes: entry.response.responseHeadersBytes + entry.response.responseBodyBytes)
                }
                record(dropped: metrics.record(requests), workload: id)
            case .tcpLogs(let logs):
                let events = logs.logEntry.compactMap { entry -> StandardMetrics.Connection? in
                    let event: StandardMetrics.Connection.Event
                    switch entry.commonProperties.accessLogType {
                    case .tcpUpstreamConnected: event = .opened
                    case .tcpConnectionEnd, .notSet:
                        event = .closed(sent: entry.connectionProperties.sentBytes, received: entry.connectionProperties.receivedBytes)
                    default: return nil
                    }
                    let connection = labels(MetricsAttribution.connectionKey(entry, reporter: reporter, proxy: id))
                    return StandardMetrics.Connection(labels: MetricsAttribution.labels(entry, connection: connection), event: event)
                }
                record(dropped: metrics.record(events), workload: id)
            case nil:
                break
            }
        }
        return ServerResponse(message: Envoy_Service_Accesslog_V3_StreamAccessLogsResponse())
    }

    /// Whether an HTTP entry is the one logged when the request ended (not a periodic one).
    static func isFinal(_ type: Envoy_Data_Accesslog_V3_AccessLogType) -> Bool {
        switch type {
        case .notSet, .downstreamEnd: true
        default: false
        }
    }

    /// Reads the stream's reporter and workload from its first message and checks its key.
    private func admit(
        _ message: Envoy_Service_Accesslog_V3_StreamAccessLogsMessage, metadata: Metadata
    ) throws(RPCError) -> (MetricsReporting.Reporter, ServiceRegistry.WorkloadID) {
        let node = message.identifier.node
        guard message.hasIdentifier, let reporter = MetricsReporting.reporter(logName: message.identifier.logName) else {
            logger.warning("access log stream refused: not a metrics stream", metadata: ["node": "\(node.id)", "log": "\(message.identifier.logName)"])
            throw RPCError(code: .invalidArgument, message: "the first message must identify the node and a log meshd knows (\(MetricsReporting.Reporter.allCases.map { MetricsReporting.logName($0) }.joined(separator: ", ")))")
        }
        let identity: NodeIdentity
        do throws(NodeIdentity.IdentityError) {
            identity = try NodeIdentity(node: node)
        } catch {
            logger.warning("access log stream refused", metadata: ["node": "\(node.id)", "reason": "\(error.message)"])
            throw RPCError(code: .invalidArgument, message: error.message)
        }
        let presented = metadata[stringValues: MetricsReporting.keyHeader].first { _ in true } ?? ""
        guard keys.accepts(presented, for: identity.workload) else {
            logger.warning("access log stream refused: wrong or missing report key", metadata: ["node": "\(node.id)", "workload": "\(identity.workload)"])
            throw RPCError(code: .unauthenticated, message: "metrics from \(identity.workload) need its report key in \(MetricsReporting.keyHeader)")
        }
        return (reporter, identity.workload)
    }

    private func record(dropped: Int, workload: ServiceRegistry.WorkloadID) {
        guard dropped > 0 else { return }
        logger.warning("Istio metric entries dropped: too many series", metadata: ["workload": "\(workload)", "dropped": "\(dropped)", "limit": "\(metrics.maximumSeries)"])
    }
}
