public import EnvoyAPI
public import GRPCCore
public import MeshModel
internal import Synchronization
internal import MeshClient
internal import GRPCNIOTransportHTTP2

/// An in-process ADS client for tests, benchmarks and the load generator: it sends the requests
/// the caller writes and hands back responses (or the stream's final status) one by one.
public enum ADSTestClient {
    /// Opens one state-of-the-world ADS stream to `address` with `metadata` and runs `body` with it.
    public static func withStream<Result: Sendable>(
        to address: HostPort, security: XDSClientSecurity = .plaintext, metadata: Metadata = [:],
        _ body: @escaping @Sendable (ADSConversation) async throws -> Result
    ) async throws -> Result {
        try await withConversation(to: address, security: security, body) { ads, conversation in
            try await ads.streamAggregatedResources(
                request: StreamingClientRequest(metadata: metadata) { writer in
                    for await request in conversation.outgoing { try await writer.write(request) }
                }
            ) { response in
                for try await message in response.messages { conversation.incoming.push(.success(message)) }
                conversation.incoming.push(.failure(StreamEnded()))
            }
        }
    }

    /// Opens one delta ADS stream to `address` with `metadata` and runs `body` with it.
    public static func withDeltaStream<Result: Sendable>(
        to address: HostPort, security: XDSClientSecurity = .plaintext, metadata: Metadata = [:],
        _ body: @escaping @Sendable (DeltaConversation) async throws -> Result
    ) async throws -> Result {
        try await withConversation(to: address, security: security, body) { ads, conversation in
            try await ads.deltaAggregatedResources(
                request: StreamingClientRequest(metadata: metadata) { writer in
                    for await request in conversation.outgoing { try await writer.write(request) }
                }
            ) { response in
                for try await message in response.messages { conversation.incoming.push(.success(message)) }
                conversation.incoming.push(.failure(StreamEnded()))
            }
        }
    }

    private static func withConversation<Request, Response, Result: Sendable>(
        to address: HostPort, security: XDSClientSecurity,
        _ body: @escaping @Sendable (XDSConversation<Request, Response>) async throws -> Result,
        rpc: @escaping @Sendable (Envoy_Service_Discovery_V3_AggregatedDiscoveryService.Client<HTTP2ClientTransport.Posix>, XDSConversation<Request, Response>) async throws -> Void
    ) async throws -> Result {
        try await security.withClient(address) { client in
            let ads = Envoy_Service_Discovery_V3_AggregatedDiscoveryService.Client(wrapping: client)
            let conversation = XDSConversation<Request, Response>()
            return try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    do {
                        try await rpc(ads, conversation)
                    } catch {
                        conversation.incoming.push(.failure(error))
                    }
                }
                defer { conversation.finish() }
                let result = try await body(conversation)
                conversation.finish()
                group.cancelAll()
                return result
            }
        }
    }
}

/// The server ended the stream without an error status.
public struct StreamEnded: Error {}

/// One state-of-the-world ADS stream as a test sees it.
public typealias ADSConversation = XDSConversation<Envoy_Service_Discovery_V3_DiscoveryRequest, Envoy_Service_Discovery_V3_DiscoveryResponse>
/// One delta ADS stream as a test sees it.
public typealias DeltaConversation = XDSConversation<Envoy_Service_Discovery_V3_DeltaDiscoveryRequest, Envoy_Service_Discovery_V3_DeltaDiscoveryResponse>

/// One ADS stream as a test sees it: requests out, responses (or the final status) in.
public final class XDSConversation<Request: Sendable, Response: Sendable>: Sendable {
    let outgoing: AsyncStream<Request>
    private let writer: AsyncStream<Request>.Continuation
    let incoming = WaitQueue<Result<Response, any Error>>()

    init() {
        (outgoing, writer) = AsyncStream.makeStream()
    }

    /// Sends a request.
    public func send(_ request: Request) {
        writer.yield(request)
    }

    /// The next response; throws the stream's status if it ended, or a timeout.
    public func receive(timeout: Duration = .seconds(5)) async throws -> Response {
        guard let next = await incoming.pop(timeout: timeout) else {
            throw Eventually.Timeout(description: "no ADS response within \(timeout)")
        }
        return try next.get()
    }

    /// Whether a response arrives within `timeout` (consumes it if so).
    public func receivesNothing(within timeout: Duration) async -> Bool {
        await incoming.pop(timeout: timeout) == nil
    }

    func finish() {
        writer.finish()
    }
}

extension XDSConversation where Request == Envoy_Service_Discovery_V3_DiscoveryRequest {
    /// Sends a request for `typeURL`.
    public func request(
        _ typeURL: String, names: [String] = [], node: Envoy_Config_Core_V3_Node? = nil,
        version: String = "", nonce: String = "", error: String? = nil
    ) {
        var request = Envoy_Service_Discovery_V3_DiscoveryRequest()
        request.typeURL = typeURL
        request.resourceNames = names
        if let node { request.node = node }
        request.versionInfo = version
        request.responseNonce = nonce
        if let error { request.errorDetail = Google_Rpc_Status(code: 3, message: error) }
        send(request)
    }
}

extension XDSConversation where Request == Envoy_Service_Discovery_V3_DeltaDiscoveryRequest {
    /// Sends a delta request for `typeURL`: subscriptions, the versions held (first request),
    /// and the nonce being answered (with `error` for a NACK).
    public func request(
        _ typeURL: String, subscribe: [String] = [], unsubscribe: [String] = [], node: Envoy_Config_Core_V3_Node? = nil,
        initialVersions: [String: String] = [:], nonce: String = "", error: String? = nil
    ) {
        var request = Envoy_Service_Discovery_V3_DeltaDiscoveryRequest()
        request.typeURL = typeURL
        request.resourceNamesSubscribe = subscribe
        request.resourceNamesUnsubscribe = unsubscribe
        if let node { request.node = node }
        request.initialResourceVersions = initialVersions
        request.responseNonce = nonce
        if let error { request.errorDetail = Google_Rpc_Status(code: 3, message: error) }
        send(request)
    }
}

extension Google_Rpc_Status {
    init(code: Int32, message: String) {
        self.init()
        self.code = code
        self.message = message
    }
}

/// A queue whose consumer waits, with a deadline, for the next element.
final class WaitQueue<Element: Sendable>: Sendable {
    private struct State {
        var items: [Element] = []
        var waiter: CheckedContinuation<Element?, Never>?
    }

    private let state = Mutex(State())

    func push(_ item: Element) {
        let waiter = state.withLock { state -> CheckedContinuation<Element?, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.items.append(item)
            return nil
        }
        waiter?.resume(returning: item)
    }

    func pop(timeout: Duration) async -> Element? {
        if let ready = state.withLock({ $0.items.isEmpty ? nil : $0.items.removeFirst() }) { return ready }
        return await withTaskGroup(of: Void.self) { group -> Element? in
            let result: Element? = await withCheckedContinuation { continuation in
                let immediate = state.withLock { state -> Element?? in
                    if !state.items.isEmpty { return .some(state.items.removeFirst()) }
                    state.waiter = continuation
                    return .none
                }
                if let immediate {
                    continuation.resume(returning: immediate)
                    return
                }
                group.addTask { [self] in
                    try? await Task.sleep(for: timeout)
                    let waiter = state.withLock { state -> CheckedContinuation<Element?, Never>? in
                        defer { state.waiter = nil }
                        return state.waiter
                    }
                    waiter?.resume(returning: nil)
                }
            }
            group.cancelAll()
            return result
        }
    }
}

/// A client of meshd's `IstioCertificateService/CreateCertificate`.
public enum CertificateServiceClient {
    /// Sends a CSR; returns the chain (leaf first) or throws the RPC error.
    public static func createCertificate(
        at address: HostPort, security: XDSClientSecurity, token: String?, csrPEM: String, ttlSeconds: Int64 = 0
    ) async throws -> [String] {
        try await security.withClient(address) { client in
            try await CertificateRenewal.createCertificate(on: client, csrPEM: csrPEM, ttlSeconds: ttlSeconds, token: token)
        }
    }
}
