public import EnvoyAPI
public import GRPCCore
public import Logging
public import Metrics

/// The ADS endpoint: `StreamAggregatedResources` (state of the world) and
/// `DeltaAggregatedResources` (incremental) over gRPC.
///
/// A thin async shell around ``SotWStreamStateMachine`` and ``DeltaStreamStateMachine``: it merges
/// the proxy's requests and its configuration updates into one event sequence, feeds them to the
/// machine, and writes the responses the machine decides on.
public struct AggregatedDiscoveryService: Envoy_Service_Discovery_V3_AggregatedDiscoveryService.ServiceProtocol {
    private let provider: any ProxyConfigProvider
    private let logger: Logger
    private let metrics: XDSMetrics

    /// A service that admits proxies through `provider`.
    public init(provider: any ProxyConfigProvider, logger: Logger, metrics: any MetricsFactory) {
        self.provider = provider
        self.logger = logger
        self.metrics = XDSMetrics(factory: metrics)
    }

    private enum Event<Request: Sendable>: Sendable {
        case request(Request)
        case update(ProxyUpdate)
        case requestsEnded
        case requestsFailed(any Error)
    }

    public func streamAggregatedResources(
        request: StreamingServerRequest<Envoy_Service_Discovery_V3_DiscoveryRequest>,
        context: ServerContext
    ) async throws -> StreamingServerResponse<Envoy_Service_Discovery_V3_DiscoveryResponse> {
        StreamingServerResponse { writer in
            try await serve(SotWStreamStateMachine.self, request: request, peer: context.remotePeer, writer: writer)
            return [:]
        }
    }

    public func deltaAggregatedResources(
        request: StreamingServerRequest<Envoy_Service_Discovery_V3_DeltaDiscoveryRequest>,
        context: ServerContext
    ) async throws -> StreamingServerResponse<Envoy_Service_Discovery_V3_DeltaDiscoveryResponse> {
        StreamingServerResponse { writer in
            try await serve(DeltaStreamStateMachine.self, request: request, peer: context.remotePeer, writer: writer)
            return [:]
        }
    }

    private func serve<Machine: ADSStreamMachine>(
        _: Machine.Type,
        request: StreamingServerRequest<Machine.Request>,
        peer: String,
        writer: RPCWriter<Machine.Response>
    ) async throws {
        let (events, sink) = AsyncStream.makeStream(of: Event<Machine.Request>.self)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    for try await message in request.messages { sink.yield(.request(message)) }
                    sink.yield(.requestsEnded)
                } catch {
                    sink.yield(.requestsFailed(error))
                }
            }
            var machine = Machine()
            var session: (any ProxySession)? = nil
            // Since when a change has been on its way to the proxy (cleared once it acknowledged everything).
            var changeSince: ContinuousClock.Instant? = nil
            var log = logger
            log[metadataKey: "peer"] = "\(peer)"
            defer {
                if let session {
                    session.close()
                    metrics.disconnected()
                    log.info("proxy disconnected")
                }
            }
            events: for await event in events {
                let received = ContinuousClock.now
                let actions: [StreamAction<Machine.Response>]
                switch event {
                case .requestsEnded:
                    break events
                case .requestsFailed(let error):
                    if let status = error as? RPCError {
                        log.warning("stream ended: \(status.message)", metadata: ["code": "\(status.code)"])
                        throw status
                    }
                    log.warning("stream ended: unreadable request", metadata: ["error": "\(error)"])
                    throw RPCError(code: .invalidArgument, message: "malformed request: \(error)")
                case .update(.resources(let resources)):
                    actions = machine.update(resources)
                case .update(.close(let status)):
                    log.warning("closing the stream", metadata: ["reason": "\(status.message)"])
                    throw status
                case .request(let message):
                    if session == nil {
                        guard let node = Machine.node(of: message), !node.id.isEmpty else {
                            log.warning("stream refused: first request carries no node")
                            throw RPCError(code: .invalidArgument, message: "the first request on a stream must carry the node (id and metadata)")
                        }
                        let admitted: any ProxySession
                        do throws(RPCError) {
                            admitted = try await provider.connect(node: node, metadata: request.metadata, peer: peer)
                        } catch {
                            log.warning("stream refused", metadata: ["node": "\(node.id)", "reason": "\(error.message)"])
                            metrics.refused()
                            throw error
                        }
                        session = admitted
                        log[metadataKey: "proxy"] = "\(admitted.proxyID)"
                        log.info("proxy connected")
                        metrics.connected(api: Machine.apiName)
                        _ = machine.update(admitted.initialResources)
                        group.addTask {
                            for await next in admitted.updates() { sink.yield(.update(next)) }
                        }
                    }
                    do throws(StreamFailure) {
                        actions = try machine.received(message)
                    } catch {
                        log.warning("stream refused: \(error.message)")
                        throw RPCError(code: .invalidArgument, message: error.message)
                    }
                }
                if changeSince == nil, actions.contains(where: { if case .send = $0 { true } else { false } }) { changeSince = received }
                for action in actions {
                    try await perform(action, machine: Machine.self, session: session!, writer: writer, since: received, logger: log)
                }
                if case .update = event {
                    session?.processed(update: true, settled: machine.isSettled)
                } else {
                    session?.processed(update: false, settled: machine.isSettled)
                }
                if let since = changeSince, machine.isSettled {
                    metrics.converged(after: ContinuousClock.now - since)
                    changeSince = nil
                }
            }
            group.cancelAll()
        }
    }

    private func perform<Machine: ADSStreamMachine>(
        _ action: StreamAction<Machine.Response>, machine: Machine.Type, session: any ProxySession,
        writer: RPCWriter<Machine.Response>, since: ContinuousClock.Instant, logger: Logger
    ) async throws {
        switch action {
        case .send(let response):
            try await writer.write(response)
            let summary = Machine.summary(of: response)
            metrics.pushed(summary.typeURL, after: ContinuousClock.now - since)
            session.record(.sent(typeURL: summary.typeURL, version: summary.version, nonce: summary.nonce, resources: summary.resources))
            logger.debug("sent", metadata: [
                "type": "\(XDSTypeURL.shortName(summary.typeURL))", "version": "\(summary.version)",
                "nonce": "\(summary.nonce)", "resources": "\(summary.resources)", "removed": "\(summary.removed)",
            ])
        case .acknowledged(let typeURL, let version, let nonce):
            session.record(.acknowledged(typeURL: typeURL, version: version, nonce: nonce))
        case .unwatched(let typeURL):
            session.record(.unwatched(typeURL: typeURL))
        case .health(let healthy, let message):
            session.record(.health(healthy: healthy, message: message))
            logger.debug("health report", metadata: ["healthy": "\(healthy)", "reason": "\(message ?? "")"])
        case .unserved(let typeURL):
            logger.debug("asked for a type meshd does not serve; left unanswered", metadata: ["type": "\(typeURL)"])
        case .rejected(let typeURL, let version, let nonce, let message):
            metrics.rejected(typeURL)
            session.record(.rejected(typeURL: typeURL, version: version, nonce: nonce, message: message))
            logger.warning("proxy rejected configuration", metadata: [
                "type": "\(XDSTypeURL.shortName(typeURL))", "nonce": "\(nonce)", "error": "\(message)",
            ])
        }
    }
}
