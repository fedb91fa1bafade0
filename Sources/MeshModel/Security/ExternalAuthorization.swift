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
    /// The first field that makes this provider unusable, and why.
    public var problem: (field: String, reason: String)? {
        if host.isEmpty { return ("service", "the authorization service's host name is required") }
        if port == 0 || port > 65535 { return ("port", "the authorization service's port (1-65535) is required") }
        if statusOnError < 100 || statusOnError > 599 { return ("statusOnError", "must be an HTTP status (100-599)") }
        if timeout.nanoseconds <= 0 { return ("timeout", "must be positive") }
        return nil
    }

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
        host = written.split(separator: "/", maxSplits: 1).last.map(String.init) ?? ""
        statusOnError = statusText.map { UInt32($0) ?? 0 } ?? 403
        requestBody = body.map {
            RequestBody(maxRequestBytes: $0.maxRequestBytes ?? 0, allowPartialMessage: $0.allowPartialMessage ?? false, packAsBytes: $0.packAsBytes ?? false)
        }
    }
}
