public import EnvoyAPI
public import GRPCCore

/// Where the xDS server gets each proxy's configuration; implemented by the control plane.
///
/// The server knows nothing about Istio: it hands over the node and the stream's metadata and
/// receives a session that yields the proxy's resources.
public protocol ProxyConfigProvider: Sendable {
    /// Admits a proxy, or throws the gRPC status to end its stream with (unknown workload,
    /// missing credentials, ...).
    func connect(node: Envoy_Config_Core_V3_Node, metadata: Metadata, peer: String) async throws(RPCError) -> any ProxySession
}

/// One connected proxy, for as long as its stream lasts.
public protocol ProxySession: Sendable {
    /// A stable id for logs and status views (the node id).
    var proxyID: String { get }
    /// The proxy's configuration when it connected.
    var initialResources: XDSResourceSet { get }
    /// Each later configuration of the proxy (newest only when several queue up), or the reason
    /// to end its stream (a revoked credential).
    func updates() -> any AsyncSequence<ProxyUpdate, Never> & Sendable
    /// Records what happened on the stream (for proxy status views and metrics).
    func record(_ event: ProxyStreamEvent)
    /// Called once when the stream ends.
    func close()
    /// Called after the stream handled an event: a configuration from ``updates()`` (`update`)
    /// or a request of the proxy; `settled` when no response is waiting for an answer.
    func processed(update: Bool, settled: Bool)
}

extension ProxySession {
    public func processed(update: Bool, settled: Bool) {}
}

/// What the provider tells a connected proxy's stream.
public enum ProxyUpdate: Sendable {
    /// The proxy's configuration changed.
    case resources(XDSResourceSet)
    /// End the stream with this status.
    case close(RPCError)
}

/// Something that happened on a proxy's stream.
public enum ProxyStreamEvent: Sendable, Equatable {
    /// A response was sent.
    case sent(typeURL: String, version: String, nonce: String, resources: Int)
    /// The proxy accepted a response.
    case acknowledged(typeURL: String, version: String, nonce: String)
    /// The proxy rejected a response with `message`.
    case rejected(typeURL: String, version: String, nonce: String, message: String)
    /// The proxy watches nothing of a named type any more.
    case unwatched(typeURL: String)
    /// The proxy's agent reported its workload's probe result.
    case health(healthy: Bool, message: String?)
}
