internal import EnvoyAPI
internal import GRPCCore
internal import Synchronization
internal import SwiftProtobuf
internal import Logging

/// The requests each workload's proxy has sent per cluster since meshd started, from Envoy's
/// load reports: what `meshctl sidecar suggest` and `analyze` read. Kept in memory.
final class TrafficLedger: Sendable {
    private let counts = Mutex<[String: [String: UInt64]]>([:])
    /// The most clusters kept per workload: a proxy reports only clusters meshd sent it, but a
    /// stream could name any; beyond this, new names are ignored.
    static let maximumClustersPerWorkload = 20_000

    /// Adds one report of `workload` (`namespace/name`); returns how many cluster names were
    /// ignored because the workload already has the most kept.
    @discardableResult
    func record(workload: String, _ stats: [Envoy_Config_Endpoint_V3_ClusterStats]) -> Int {
        counts.withLock { counts in
            var ignored = 0
            // meshd itself (xDS, the metrics stream) is not a destination of the workload's.
            for cluster in stats where !BootstrapBuilder.bootstrapClusters.contains(cluster.clusterName) {
                let requests = cluster.upstreamLocalityStats.reduce(UInt64(0)) {
                    $0 &+ max($1.totalIssuedRequests, $1.totalSuccessfulRequests &+ $1.totalErrorRequests)
                }
                guard requests > 0 else { continue }
                var known = counts[workload, default: [:]]
                if known[cluster.clusterName] == nil && known.count >= Self.maximumClustersPerWorkload {
                    ignored += 1
                    continue
                }
                known[cluster.clusterName, default: 0] &+= requests
                counts[workload] = known
            }
            return ignored
        }
    }

    /// Requests per cluster name of one workload's proxies.
    func usage(workload: String) -> [String: UInt64] {
        counts.withLock { $0[workload] ?? [:] }
    }

    /// Every workload that reported requests.
    var all: [String: [String: UInt64]] {
        counts.withLock { $0 }
    }
}

/// Envoy's load reporting service on the xDS port: each proxy's stream is admitted as its xDS
/// stream is, told to report every cluster at `interval`, and its reports go to the ledger.
struct LoadReportingGRPCService: Envoy_Service_LoadStats_V3_LoadReportingService.ServiceProtocol {
    let provider: MeshProxyProvider
    let ledger: TrafficLedger
    /// Zero: the stream is admitted but never asked for reports.
    let interval: Duration
    let logger: Logger

    func streamLoadStats(
        request: StreamingServerRequest<Envoy_Service_LoadStats_V3_LoadStatsRequest>,
        context: ServerContext
    ) async throws -> StreamingServerResponse<Envoy_Service_LoadStats_V3_LoadStatsResponse> {
        StreamingServerResponse { writer in
            var workload: String? = nil
            for try await message in request.messages {
                guard let reporter = workload else {
                    do throws(RPCError) {
                        workload = try provider.admitReporter(node: message.node, metadata: request.metadata)
                    } catch {
                        logger.warning("load report stream refused", metadata: ["node": "\(message.node.id)", "reason": "\(error.message)"])
                        throw error
                    }
                    if interval > .zero {
                        var answer = Envoy_Service_LoadStats_V3_LoadStatsResponse()
                        answer.sendAllClusters = true
                        let (seconds, attoseconds) = interval.components
                        answer.loadReportingInterval = Google_Protobuf_Duration(seconds: seconds, nanos: Int32(attoseconds / 1_000_000_000))
                        try await writer.write(answer)
                    }
                    continue
                }
                let ignored = ledger.record(workload: reporter, message.clusterStats)
                if ignored > 0 {
                    logger.warning("load report names more clusters than are kept; ignored", metadata: ["workload": "\(reporter)", "ignored": "\(ignored)"])
                }
            }
            return [:]
        }
    }
}
