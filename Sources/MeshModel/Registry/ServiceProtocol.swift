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

    /// Parses a protocol name case-insensitively, as Istio does.
    public init?(istioName: String) {
        guard let match = ServiceProtocol.allCases.first(where: { $0.rawValue.lowercased() == istioName.lowercased() }) else {
            return nil
        }
        self = match
    }

    /// The protocol of a port: its `protocol` field, else the prefix of its name before `-`
    /// (`http-api` is HTTP), else TCP. (Istio would sniff an unnamed port; without traffic
    /// capture meshd treats it as TCP.)
    public static func of(protocol declared: String?, name: String?) -> ServiceProtocol {
        if let declared, let parsed = ServiceProtocol(istioName: declared) { return parsed }
        if let name {
            let prefix = name.split(separator: "-", maxSplits: 1).first.map(String.init) ?? name
            if let parsed = ServiceProtocol(istioName: prefix) { return parsed }
        }
        return .tcp
    }

    /// Whether Envoy handles the port with the HTTP connection manager.
    public var isHTTP: Bool {
        switch self {
        case .http, .http2, .grpc, .grpcWeb: true
        default: false
        }
    }

    /// Whether upstream connections should speak HTTP/2.
    public var usesHTTP2: Bool {
        self == .http2 || self == .grpc || self == .grpcWeb
    }
}
