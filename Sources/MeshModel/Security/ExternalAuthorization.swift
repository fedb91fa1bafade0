/// An external authorization provider of mesh.yaml (`envoyExtAuthzHttp` or `envoyExtAuthzGrpc`),
/// read once: what a CUSTOM AuthorizationPolicy sends requests to.
public struct ExternalAuthorization: Hashable, Sendable {
    /// How the authorization service is asked.
    public enum API: Hashable, Sendable {
        /// An HTTP request per checked request (`envoyExtAuthzHttp`).
        case http
        /// `envoy.service.auth.v3.Authorization/Check` (`envoyExtAuthzGrpc`).
        case grpc
    }

    /// The body sent along (`includeRequestBodyInCheck`).
    public struct RequestBody: Hashable, Sendable {
        public var maxRequestBytes: UInt32
        public var allowPartialMessage: Bool
        public var packAsBytes: Bool
    }

    public var name: String
    public var api: API
    /// The service's host name (a `namespace/` prefix removed).
    public var host: String
    /// The namespace `service` was written with (`namespace/host`), if any.
    public var serviceNamespace: String?
    public var port: UInt32
    /// How long a check may take (Istio's default: 600 s).
    public var timeout: IstioDuration
    public var pathPrefix: String?
    /// Whether a request goes on when the service cannot be asked.
    public var failOpen: Bool
    public var clearRouteCache: Bool
    /// The status answered when the service cannot be asked and `failOpen` is false (Istio's
    /// default: 403).
    public var statusOnError: UInt32
    public var includeRequestHeaders: [String]
    public var additionalHeaders: [String: String]
    public var requestBody: RequestBody?
    public var headersToUpstreamOnAllow: [String]
    public var headersToDownstreamOnDeny: [String]
    public var headersToDownstreamOnAllow: [String]
    /// Why the registry cannot serve this provider (no such service, not on `port`), or `nil`.
    public func registryProblem(in registry: ServiceRegistry) -> String? {
        let candidates = registry.services.filter { $0.hostname == host && (serviceNamespace == nil || $0.namespace == serviceNamespace) }
        guard !candidates.isEmpty else {
            return "no service has host \(host)\(serviceNamespace.map { " in namespace \($0)" } ?? "") for provider \(name)"
        }
        guard candidates.contains(where: { $0.ports.contains { $0.number == port } }) else {
            return "service \(host) has no port \(port) for provider \(name)"
        }
        return nil
    }

    /// The first field that makes this provider unusable, and why.
    public var problem: (field: String, reason: String)? {
        if host.isEmpty { return ("service", "the authorization service's host name is required") }
        if port == 0 || port > 65535 { return ("port", "the authorization service's port (1-65535) is required") }
        if !Self.envoyStatusCodes.contains(statusOnError) { return ("statusOnError", "\(statusOnError) is not a status Envoy can answer with (\(Self.envoyStatusCodes.sorted().map(String.init).joined(separator: ", ")))") }
        if timeout.nanoseconds <= 0 { return ("timeout", "must be positive") }
        if let pathPrefix, !pathPrefix.hasPrefix("/") { return ("pathPrefix", "must start with /") }
        if let requestBody, requestBody.maxRequestBytes == 0 { return ("includeRequestBodyInCheck.maxRequestBytes", "must be more than 0") }
        for (field, names) in [
            ("includeRequestHeadersInCheck", includeRequestHeaders), ("headersToUpstreamOnAllow", headersToUpstreamOnAllow),
            ("headersToDownstreamOnDeny", headersToDownstreamOnDeny), ("headersToDownstreamOnAllow", headersToDownstreamOnAllow),
        ] where names.contains(where: { $0 == "*" || $0.isEmpty }) {
            return (field, "name headers (a prefix x-* or a suffix *-id at most); a lone * is refused, as in Istio")
        }
        return nil
    }

    /// The statuses Envoy's `envoy.type.v3.StatusCode` defines (a test checks them against it).
    public static let envoyStatusCodes: Set<UInt32> = [
        100, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 307, 308,
        400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 421, 422, 423, 424, 426, 428, 429, 431,
        500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511,
    ]

    /// The provider `provider` describes, or `nil` when it is not an external authorization one.
    public init?(_ provider: MeshConfig.ExtensionProvider) {
        let body: MeshConfig.ExtensionProvider.EnvoyExternalAuthorizationRequestBody?
        let service: String?
        let statusText: String?
        if let http = provider.envoyExtAuthzHttp {
            api = .http
            service = http.service
            port = http.port ?? 0
            timeout = http.timeout ?? IstioDuration(nanoseconds: 600_000_000_000)
            pathPrefix = http.pathPrefix.flatMap { $0.isEmpty ? nil : $0 }
            failOpen = http.failOpen ?? false
            clearRouteCache = http.clearRouteCache ?? false
            statusText = http.statusOnError
            // includeHeadersInCheck is the deprecated spelling of includeRequestHeadersInCheck.
            includeRequestHeaders = (http.includeRequestHeadersInCheck ?? []) + (http.includeHeadersInCheck ?? [])
            additionalHeaders = http.includeAdditionalHeadersInCheck ?? [:]
            body = http.includeRequestBodyInCheck
            headersToUpstreamOnAllow = http.headersToUpstreamOnAllow ?? []
            headersToDownstreamOnDeny = http.headersToDownstreamOnDeny ?? []
            headersToDownstreamOnAllow = http.headersToDownstreamOnAllow ?? []
        } else if let grpc = provider.envoyExtAuthzGrpc {
            api = .grpc
            service = grpc.service
            port = grpc.port ?? 0
            timeout = grpc.timeout ?? IstioDuration(nanoseconds: 600_000_000_000)
            pathPrefix = nil
            failOpen = grpc.failOpen ?? false
            clearRouteCache = grpc.clearRouteCache ?? false
            statusText = grpc.statusOnError
            includeRequestHeaders = []
            additionalHeaders = [:]
            body = grpc.includeRequestBodyInCheck
            headersToUpstreamOnAllow = []
            headersToDownstreamOnDeny = []
            headersToDownstreamOnAllow = []
        } else {
            return nil
        }
        name = provider.name ?? ""
        let written = service ?? ""
        let parts = written.split(separator: "/", maxSplits: 1).map(String.init)
        host = parts.last ?? ""
        serviceNamespace = parts.count == 2 ? parts[0] : nil
        statusOnError = statusText.map { UInt32($0) ?? 0 } ?? 403
        requestBody = body.map {
            RequestBody(maxRequestBytes: $0.maxRequestBytes ?? 0, allowPartialMessage: $0.allowPartialMessage ?? false, packAsBytes: $0.packAsBytes ?? false)
        }
    }
}
