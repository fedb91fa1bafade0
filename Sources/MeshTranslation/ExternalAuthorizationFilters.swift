internal import EnvoyAPI
internal import MeshModel
internal import SwiftProtobuf

typealias HTTPExtAuthz = Envoy_Extensions_Filters_Http_ExtAuthz_V3_ExtAuthz
typealias NetworkExtAuthz = Envoy_Extensions_Filters_Network_ExtAuthz_V3_ExtAuthz

/// CUSTOM AuthorizationPolicies, as Istio builds them: the policies' rules go into a shadow-only
/// RBAC filter whose matches are recorded in dynamic metadata (policy ids starting
/// `istio-ext-authz`), and the external authorization filter asks the provider about exactly those
/// requests. A provider that is missing, or several providers for one workload, deny every request
/// instead (fail closed). Dry-run CUSTOM policies are only recorded (stat prefix
/// `istio_dry_run_custom_`, and the dry-run access log line): the provider is not asked.
extension AuthorizationBuilder {
    static let customStatPrefix = "istio_ext_authz_"
    static let customPolicyPrefix = "istio-ext-authz-"
    static let dryRunCustomPrefix = "istio_dry_run_custom_"
    static let badCustomPolicy = "default-deny-all-due-to-bad-CUSTOM-action"

    var enforcedCustom: [Configured<AuthorizationPolicy>] {
        policies.filter { $0.spec.action == .CUSTOM && !Self.isDryRun($0) }
    }

    var dryRunCustom: [Configured<AuthorizationPolicy>] {
        policies.filter { $0.spec.action == .CUSTOM && Self.isDryRun($0) }
    }

    /// Matches when the shadow filter recorded a CUSTOM policy (in `filter`'s metadata).
    static func customMatched(filter: String) -> Envoy_Type_Matcher_V3_MetadataMatcher {
        var matcher = Envoy_Type_Matcher_V3_MetadataMatcher()
        matcher.filter = filter
        var segment = Envoy_Type_Matcher_V3_MetadataMatcher.PathSegment()
        segment.key = customStatPrefix + "shadow_effective_policy_id"
        matcher.path = [segment]
        matcher.value = stringValue(prefixMatcher("istio-ext-authz"))
        return matcher
    }

    /// Denies everything: what an unusable CUSTOM provider leaves.
    static var denyAll: RBACConfig {
        var policy = RBACPolicy()
        var permission = Permission()
        permission.any = true
        var principal = Principal()
        principal.any = true
        policy.permissions = [permission]
        policy.principals = [principal]
        var config = RBACConfig()
        config.action = .deny
        config.policies[badCustomPolicy] = policy
        return config
    }

    func customHTTPFilters() -> [HTTPFilter] {
        var filters: [HTTPFilter] = []
        switch custom {
        case nil:
            break
        case .unusable:
            var config = Envoy_Extensions_Filters_Http_Rbac_V3_RBAC()
            config.rules = Self.denyAll
            filters.append(Envoy.httpFilter("envoy.filters.http.rbac", config))
        case .provider(let provider):
            var marks = Envoy_Extensions_Filters_Http_Rbac_V3_RBAC()
            marks.shadowRules = rbac(.deny, enforcedCustom, http: true, namePrefix: Self.customPolicyPrefix)
            marks.shadowRulesStatPrefix = Self.customStatPrefix
            filters.append(Envoy.httpFilter("envoy.filters.http.rbac", marks))
            filters.append(Envoy.httpFilter("envoy.filters.http.ext_authz", Self.httpExtAuthz(provider)))
        }
        let dryRun = dryRunCustom
        if !dryRun.isEmpty {
            var shadow = Envoy_Extensions_Filters_Http_Rbac_V3_RBAC()
            shadow.shadowRules = rbac(.deny, dryRun, http: true, namePrefix: Self.customPolicyPrefix)
            shadow.shadowRulesStatPrefix = Self.dryRunCustomPrefix
            filters.append(Envoy.httpFilter("envoy.filters.http.rbac", shadow))
        }
        return filters
    }

    func customNetworkFilters(statPrefix: String) -> [NetworkFilter] {
        switch custom {
        case nil:
            return []
        case .unusable:
            var config = Envoy_Extensions_Filters_Network_Rbac_V3_RBAC()
            config.statPrefix = statPrefix
            config.rules = Self.denyAll
            return [Envoy.networkFilter("envoy.filters.network.rbac", config)]
        case .provider(let provider):
            guard provider.api == .grpc else { return [] }
            var marks = Envoy_Extensions_Filters_Network_Rbac_V3_RBAC()
            marks.statPrefix = statPrefix
            marks.shadowRules = rbac(.deny, enforcedCustom, http: false, namePrefix: Self.customPolicyPrefix)
            marks.shadowRulesStatPrefix = Self.customStatPrefix
            var config = NetworkExtAuthz()
            config.statPrefix = "tcp."
            config.grpcService = Self.grpcService(provider)
            config.failureModeAllow = provider.failOpen
            config.transportApiVersion = .v3
            config.filterEnabledMetadata = Self.customMatched(filter: "envoy.filters.network.rbac")
            return [Envoy.networkFilter("envoy.filters.network.rbac", marks), Envoy.networkFilter("envoy.filters.network.ext_authz", config)]
        }
    }

    static func cluster(_ provider: ExternalAuthorization) -> String {
        ResourceNames.outboundCluster(port: provider.port, host: provider.host)
    }

    static func grpcService(_ provider: ExternalAuthorization) -> Envoy_Config_Core_V3_GrpcService {
        var envoyGRPC = Envoy_Config_Core_V3_GrpcService.EnvoyGrpc()
        envoyGRPC.clusterName = cluster(provider)
        envoyGRPC.authority = provider.host
        var service = Envoy_Config_Core_V3_GrpcService()
        service.envoyGrpc = envoyGRPC
        service.timeout = Envoy.duration(milliseconds: provider.timeout.nanoseconds / 1_000_000)
        return service
    }

    /// Case-insensitive header name patterns (`x-*` a prefix, `*-id` a suffix).
    static func headerNames(_ names: [String]) -> Envoy_Type_Matcher_V3_ListStringMatcher {
        var list = Envoy_Type_Matcher_V3_ListStringMatcher()
        list.patterns = names.map { wildcard($0, ignoreCase: true) }
        return list
    }

    static func httpExtAuthz(_ provider: ExternalAuthorization) -> HTTPExtAuthz {
        var config = HTTPExtAuthz()
        config.transportApiVersion = .v3
        config.failureModeAllow = provider.failOpen
        config.clearRouteCache_p = provider.clearRouteCache
        var status = Envoy_Type_V3_HttpStatus()
        status.code = Envoy_Type_V3_StatusCode(rawValue: Int(provider.statusOnError)) ?? .forbidden
        config.statusOnError = status
        config.filterEnabledMetadata = customMatched(filter: "envoy.filters.http.rbac")
        if let body = provider.requestBody {
            var buffer = Envoy_Extensions_Filters_Http_ExtAuthz_V3_BufferSettings()
            buffer.maxRequestBytes = body.maxRequestBytes
            buffer.allowPartialMessage = body.allowPartialMessage
            buffer.packAsBytes = body.packAsBytes
            config.withRequestBody = buffer
        }
        switch provider.api {
        case .grpc:
            config.grpcService = grpcService(provider)
        case .http:
            var uri = Envoy_Config_Core_V3_HttpUri()
            uri.uri = "http://\(provider.host)"
            uri.cluster = cluster(provider)
            uri.timeout = Envoy.duration(milliseconds: provider.timeout.nanoseconds / 1_000_000)
            var service = Envoy_Extensions_Filters_Http_ExtAuthz_V3_HttpService()
            service.serverUri = uri
            service.pathPrefix = provider.pathPrefix ?? ""
            if !provider.additionalHeaders.isEmpty {
                var request = Envoy_Extensions_Filters_Http_ExtAuthz_V3_AuthorizationRequest()
                request.headersToAdd = provider.additionalHeaders.keys.sorted().map { name in
                    var header = Envoy_Config_Core_V3_HeaderValue()
                    header.key = name
                    header.value = provider.additionalHeaders[name]!
                    return header
                }
                service.authorizationRequest = request
            }
            var response = Envoy_Extensions_Filters_Http_ExtAuthz_V3_AuthorizationResponse()
            var answers = false
            if !provider.headersToUpstreamOnAllow.isEmpty {
                response.allowedUpstreamHeaders = headerNames(provider.headersToUpstreamOnAllow)
                answers = true
            }
            if !provider.headersToDownstreamOnDeny.isEmpty {
                response.allowedClientHeaders = headerNames(provider.headersToDownstreamOnDeny)
                answers = true
            }
            if !provider.headersToDownstreamOnAllow.isEmpty {
                response.allowedClientHeadersOnSuccess = headerNames(provider.headersToDownstreamOnAllow)
                answers = true
            }
            if answers { service.authorizationResponse = response }
            config.httpService = service
            if !provider.includeRequestHeaders.isEmpty {
                config.allowedHeaders = headerNames(provider.includeRequestHeaders)
            }
        }
        return config
    }
}
