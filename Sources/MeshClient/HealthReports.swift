public import EnvoyAPI
public import MeshModel
internal import GRPCCore
internal import GRPCNIOTransportHTTP2
internal import SwiftProtobuf

/// The stream on which a proxy's agent reports its workload's probe results to meshd, as Istio's
/// agent does: ADS requests of type ``XDSTypeURL/healthInformation``, `error_detail` set while the
/// probe fails. It is opened with the proxy's own node (marked as a reporter) and token, and
/// reopened with back-off when it breaks; the newest result is sent again on each new stream.
public struct HealthReportStream: Sendable {
    /// meshd's xDS address.
    public var address: HostPort
    /// The trust bundle verifying meshd's certificate (nil: plaintext xDS).
    public var trustPEM: String?
    /// The workload token.
    public var token: String?
    /// The proxy's node.
    public var node: Envoy_Config_Core_V3_Node

    public init(address: HostPort, trustPEM: String?, token: String?, node: Envoy_Config_Core_V3_Node) {
        self.address = address
        self.trustPEM = trustPEM
        self.token = token
        var node = node
        node.metadata.fields["MESHD_HEALTH_REPORTER"] = Google_Protobuf_Value(stringValue: "true")
        self.node = node
    }

    /// The request reporting `report`; the first request of a stream carries the node.
    func request(_ report: WorkloadHealth, first: Bool) -> Envoy_Service_Discovery_V3_DiscoveryRequest {
        var request = Envoy_Service_Discovery_V3_DiscoveryRequest()
        request.typeURL = XDSTypeURL.healthInformation
        if first { request.node = node }
        if !report.healthy {
            request.errorDetail.code = 13
            request.errorDetail.message = report.message ?? "the readiness probe fails"
        }
        return request
    }

    /// Reports what `latest` returns (with a version that changes with each new result) until
    /// cancelled; `log` hears about broken streams.
    public func run(latest: @escaping @Sendable () -> (version: UInt64, report: WorkloadHealth?), log: @escaping @Sendable (String) -> Void) async {
        var delay = Duration.milliseconds(250)
        let metadata: Metadata = token.map { ["authorization": "Bearer \($0)"] } ?? [:]
        while !Task.isCancelled {
            let started = ContinuousClock.now
            do {
                try await withGRPCClient(transport: try MeshEndpoints.transport(to: address, trustPEM: trustPEM)) { client in
                    let ads = Envoy_Service_Discovery_V3_AggregatedDiscoveryService.Client(wrapping: client)
                    try await ads.streamAggregatedResources(
                        request: StreamingClientRequest(metadata: metadata) { writer in
                            var sent: UInt64? = nil
                            while !Task.isCancelled {
                                let current = latest()
                                if let report = current.report, current.version != sent {
                                    try await writer.write(request(report, first: sent == nil))
                                    sent = current.version
                                }
                                try await Task.sleep(for: .milliseconds(100))
                            }
                        }
                    ) { response in
                        for try await _ in response.messages {}
                    }
                }
            } catch is CancellationError {
                return
            } catch {
                if Task.isCancelled { return }
                log("probe reports to meshd stopped (\(error)); reconnecting")
            }
            if ContinuousClock.now - started > .seconds(10) { delay = .milliseconds(250) }
            try? await Task.sleep(for: delay)
            delay = min(delay * 2, .seconds(2))
        }
    }
}
