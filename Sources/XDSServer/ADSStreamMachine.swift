public import EnvoyAPI
public import SwiftProtobuf

/// What an ADS stream's state machine tells the shell to do, in order.
public enum StreamAction<Response: Sendable & Equatable>: Sendable, Equatable {
    /// Send this response.
    case send(Response)
    /// The proxy accepted `version` of a type.
    case acknowledged(typeURL: String, version: String, nonce: String)
    /// The proxy rejected a response; `version` is the one it keeps.
    case rejected(typeURL: String, version: String, nonce: String, message: String)
    /// The proxy asked for a type meshd does not serve: the watch stays open and unanswered (as
    /// Istio and go-control-plane do; Envoy and gRPC clients ask for optional types).
    case unserved(typeURL: String)
    /// The proxy stopped watching every resource of a named type: nothing of it is awaited.
    case unwatched(typeURL: String)
    /// The proxy's agent reported its workload's probe result (``XDSTypeURL/healthInformation``):
    /// passing, or failing with `message`.
    case health(healthy: Bool, message: String?)
}

/// A request the stream cannot serve: the shell ends the stream with this status.
public struct StreamFailure: Error, Equatable, Sendable {
    /// The reason, for the client and the log.
    public var message: String
}

/// What the shell logs and records of a response.
public struct ResponseSummary: Sendable, Equatable {
    /// The type.
    public var typeURL: String
    /// The version the proxy will hold of the type once it accepts the response.
    public var version: String
    /// The response's nonce.
    public var nonce: String
    /// How many resources it carries.
    public var resources: Int
    /// How many it removes (delta only).
    public var removed: Int
}

/// One ADS stream variant (state of the world or delta) as a pure state machine.
public protocol ADSStreamMachine: Sendable {
    /// The proxy's request message.
    associatedtype Request: SwiftProtobuf.Message
    /// The server's response message.
    associatedtype Response: SwiftProtobuf.Message & Equatable

    /// The API's name in metrics: `sotw` or `delta`.
    static var apiName: String { get }
    /// A new stream.
    init()
    /// Handles a request from the proxy.
    mutating func received(_ request: Request) throws(StreamFailure) -> [StreamAction<Response>]
    /// Takes a new configuration for the proxy and sends what changed.
    mutating func update(_ resources: XDSResourceSet) -> [StreamAction<Response>]
    /// Whether every response sent has been answered.
    var isSettled: Bool { get }
    /// The node a request carries, if any.
    static func node(of request: Request) -> Envoy_Config_Core_V3_Node?
    /// What to log and record of a response.
    static func summary(of response: Response) -> ResponseSummary
}

extension ADSStreamMachine {
    /// The type URLs this server serves.
    public static var servedTypes: Set<String> { Set(XDSTypeURL.pushOrder) }

    /// The health report a request carries, if it is one (``XDSTypeURL/healthInformation``).
    static func healthReport(typeURL: String, errorDetail: Google_Rpc_Status?) -> StreamAction<Response>? {
        guard typeURL == XDSTypeURL.healthInformation else { return nil }
        guard let errorDetail else { return .health(healthy: true, message: nil) }
        return .health(healthy: false, message: errorDetail.message.isEmpty ? "probe failed (code \(errorDetail.code))" : errorDetail.message)
    }

    /// Refuses requests without a type; `false` for a type meshd does not serve (left unanswered).
    static func isServed(_ typeURL: String) throws(StreamFailure) -> Bool {
        guard !typeURL.isEmpty else {
            throw StreamFailure(message: "request without type_url; ADS requests must name the resource type")
        }
        return servedTypes.contains(typeURL)
    }

}

/// The push order both stream machines follow, in one place: types in ``XDSTypeURL/pushOrder``
/// (clusters, endpoints, listeners, routes, secrets), and listeners and routes held back while
/// clusters or their endpoints are still on their way to the proxy (Envoy's make-before-break:
/// a route must not name a cluster the proxy does not have yet). Whether the cluster side is busy
/// is asked once, after clusters and endpoints had their turn.
struct PushGate {
    private var clustersBusy: Bool?

    /// Whether `typeURL` may be pushed now; `clusterSideBusy` is asked at most once per pass.
    mutating func allows(_ typeURL: String, clusterSideBusy: () -> Bool) -> Bool {
        guard typeURL == XDSTypeURL.listener || typeURL == XDSTypeURL.route else { return true }
        if clustersBusy == nil { clustersBusy = clusterSideBusy() }
        return clustersBusy == false
    }
}
