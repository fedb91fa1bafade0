/// The protocol of a service port, as Istio names them.
public enum ServiceProtocol: String, CaseIterable, Hashable, Sendable {
    case http = "HTTP"
    case https = "HTTPS"
    case http2 = "HTTP2"
    case grpc = "GRPC"
    case grpcWeb = "GRPC-Web"
    case tcp = "TCP"
    case tls = "TLS"
    case mongo = "Mongo"
    case redis = "Redis"
    case mysql = "MySQL"
    case udp = "UDP"
    /// Declared by nothing: the sidecar detects HTTP from the first bytes of each connection
    /// (Istio's "automatic protocol selection"), else treats it as TCP. Never parsed from a name.
    case auto = "auto"

    /// The protocols a port may declare (every case but ``auto``).
    public static let allCases: [ServiceProtocol] = [.http, .https, .http2, .grpc, .grpcWeb, .tcp, .tls, .mongo, .redis, .mysql, .udp]

    /// Parses a protocol name case-insensitively, as Istio does.
    public init?(istioName: String) {
        guard let match = ServiceProtocol.allCases.first(where: { $0.rawValue.lowercased() == istioName.lowercased() }) else {
            return nil
        }
        self = match
    }

    /// The protocol of a port: its `protocol` field, else the prefix of its name before `-`
    /// (`http-api` is HTTP), else ``auto``: detected per connection, as Istio does for a port
    /// that declares nothing.
    public static func of(protocol declared: String?, name: String?) -> ServiceProtocol {
        if let declared, let parsed = ServiceProtocol(istioName: declared) { return parsed }
        if let name {
            let prefix = name.split(separator: "-", maxSplits: 1).first.map(String.init) ?? name
            if let parsed = ServiceProtocol(istioName: prefix) { return parsed }
        }
        return .auto
    }

    /// Whether Envoy handles the port with the HTTP connection manager.
    public var isHTTP: Bool {
        switch self {
        case .http, .http2, .grpc, .grpcWeb: true
        default: false
        }
    }

    /// Whether the port's protocol is found per connection (``auto``): HTTP when the first bytes
    /// are HTTP/1.x or HTTP/2's preface, TCP otherwise.
    public var isDetected: Bool { self == .auto }

    /// Whether upstream connections should speak HTTP/2.
    public var usesHTTP2: Bool {
        self == .http2 || self == .grpc || self == .grpcWeb
    }

    /// Whether the port carries gRPC (its requests' status is gRPC's).
    public var isGRPC: Bool {
        self == .grpc || self == .grpcWeb
    }
}
