internal import EnvoyAPI
internal import MeshModel
internal import SwiftProtobuf
internal import Foundation

typealias RouteMatch = Envoy_Config_Route_V3_RouteMatch
typealias HeaderMatcher = Envoy_Config_Route_V3_HeaderMatcher
typealias StringMatcher = Envoy_Type_Matcher_V3_StringMatcher
typealias FractionalPercent = Envoy_Type_V3_FractionalPercent

/// Translates a VirtualService's `http` rules into Envoy routes for one service port of one
/// sidecar, as Istio does: rules in order, each `match` an Envoy route with the rule's action;
/// matches that cannot apply to this sidecar (another port, source labels or namespace it does not
/// have) are left out.
struct HTTPRouteBuilder {
    let snapshot: MeshSnapshot
    let proxy: WorkloadInstance
    let destinationRules: DestinationRuleIndex
    /// The gateway (`namespace/name`) the routes are for; nil for a sidecar (the `mesh` gateway).
    let gateway: String?
    /// References that resolve to nothing (reported, not fatal, as in Istio).
    var unresolved: [String] = []

    init(snapshot: MeshSnapshot, proxy: WorkloadInstance, destinationRules: DestinationRuleIndex, gateway: String? = nil) {
        self.snapshot = snapshot
        self.proxy = proxy
        self.destinationRules = destinationRules
        self.gateway = gateway
    }

    /// The routes of `virtualService` for traffic to `port`.
    mutating func routes(_ virtualService: Configured<VirtualService>, port: UInt32) -> [Route] {
        var routes: [Route] = []
        for (index, rule) in (virtualService.spec.http ?? []).enumerated() {
            let name = rule.name ?? "\(virtualService.metadata.namespace)/\(virtualService.metadata.name)[\(index)]"
            let matches = rule.match ?? []
            let namespace = virtualService.metadata.namespace
            let applicable = matches.isEmpty ? [nil] : matches.filter { match in
                GatewayNames.matchApplies(
                    port: match.port, sourceLabels: match.sourceLabels, sourceNamespace: match.sourceNamespace, gateways: match.gateways,
                    namespace: namespace, proxy: proxy, gateway: gateway, port: port)
            }.map(Optional.some)
            guard !applicable.isEmpty else { continue }
            guard let action = action(for: rule, in: virtualService, port: port) else { continue }
            for match in applicable {
                var route = action
                route.name = match?.name.map { "\(name).\($0)" } ?? name
                route.match = routeMatch(match)
                if let prefix = match?.statPrefix, !prefix.isEmpty { route.statPrefix = prefix }
                if let rewrite = rule.rewrite, case .route(var routeAction) = route.action {
                    applyRewrite(rewrite, match: match, to: &routeAction)
                    route.route = routeAction
                }
                routes.append(route)
            }
        }
        return routes
    }

    func routeMatch(_ match: HTTPMatchRequest?) -> RouteMatch {
        var result = RouteMatch()
        let ignoreCase = match?.ignoreUriCase == true
        switch (match?.uri?.exact, match?.uri?.prefix, match?.uri?.regex) {
        case (let exact?, _, _): result.path = exact
        case (_, let prefix?, _): result.prefix = prefix
        case (_, _, let regex?): result.safeRegex = Self.regex(regex)
        default: result.prefix = "/"
        }
        if ignoreCase { result.caseSensitive = Google_Protobuf_BoolValue(false) }
        var headers: [HeaderMatcher] = []
        if let scheme = match?.scheme { headers.append(Self.header(":scheme", scheme)) }
        if let method = match?.method { headers.append(Self.header(":method", method)) }
        if let authority = match?.authority { headers.append(Self.header(":authority", authority)) }
        for name in (match?.headers ?? [:]).keys.sorted() {
            headers.append(Self.header(name.lowercased(), match!.headers![name]!))
        }
        for name in (match?.withoutHeaders ?? [:]).keys.sorted() {
            var header = Self.header(name.lowercased(), match!.withoutHeaders![name]!)
            header.invertMatch = true
            headers.append(header)
        }
        result.headers = headers
        for name in (match?.queryParams ?? [:]).keys.sorted() {
            var parameter = Envoy_Config_Route_V3_QueryParameterMatcher()
            parameter.name = name
            let value = match!.queryParams![name]!
            if let matcher = Self.stringMatcher(value) {
                parameter.stringMatch = matcher
            } else {
                parameter.presentMatch = true
            }
            result.queryParameters.append(parameter)
        }
        return result
    }

    static func regex(_ pattern: String) -> Envoy_Type_Matcher_V3_RegexMatcher {
        var regex = Envoy_Type_Matcher_V3_RegexMatcher()
        regex.regex = pattern
        return regex
    }

    /// A StringMatch as Envoy's string matcher; an empty StringMatch (`{}`) means "present".
    static func stringMatcher(_ match: StringMatch) -> StringMatcher? {
        var matcher = StringMatcher()
        if let exact = match.exact {
            matcher.exact = exact
        } else if let prefix = match.prefix {
            matcher.prefix = prefix
        } else if let regex = match.regex {
            matcher.safeRegex = self.regex(regex)
        } else {
            return nil
        }
        return matcher
    }

    static func header(_ name: String, _ match: StringMatch) -> HeaderMatcher {
        var header = HeaderMatcher()
        header.name = name
        if let matcher = stringMatcher(match) {
            header.stringMatch = matcher
        } else {
            header.presentMatch = true
        }
        return header
    }

    /// The route for a rule, without its match: forward, redirect or answer directly, with the
    /// rule's timeout, retries, faults, mirrors, header edits and CORS policy.
    mutating func action(for rule: HTTPRoute, in virtualService: Configured<VirtualService>, port: UInt32) -> Route? {
        var route = Route()
        let namespace = virtualService.metadata.namespace
        if let redirect = rule.redirect {
            route.redirect = Self.redirect(redirect)
        } else if let direct = rule.directResponse {
            var response = Envoy_Config_Route_V3_DirectResponseAction()
            response.status = direct.status
            if let text = direct.body?.string {
                var body = Envoy_Config_Core_V3_DataSource()
                body.inlineString = text
                response.body = body
            } else if let bytes = direct.body?.bytes, let data = Data(base64Encoded: bytes) {
                var body = Envoy_Config_Core_V3_DataSource()
                body.inlineBytes = data
                response.body = body
            }
            route.directResponse = response
        } else {
            let destinations = rule.route ?? []
            guard !destinations.isEmpty else { return nil }
            var action = RouteAction()
            let resolved = destinations.map { destination(for: $0.destination, namespace: namespace, port: port) }
            if destinations.count == 1 {
                action.cluster = resolved[0].cluster
            } else {
                var weighted = Envoy_Config_Route_V3_WeightedCluster()
                let weights = WeightedSplit.weights(destinations.map(\.weight))
                weighted.clusters = destinations.indices.compactMap { index in
                    guard let weight = weights[index] else { return nil }
                    let destination = destinations[index]
                    var cluster = Envoy_Config_Route_V3_WeightedCluster.ClusterWeight()
                    cluster.name = resolved[index].cluster
                    cluster.weight = Envoy.uint32(weight)
                    if let headers = destination.headers {
                        cluster.requestHeadersToAdd = Self.headerOptions(headers.request)
                        cluster.requestHeadersToRemove = headers.request?.remove ?? []
                        cluster.responseHeadersToAdd = Self.headerOptions(headers.response)
                        cluster.responseHeadersToRemove = headers.response?.remove ?? []
                    }
                    return cluster
                }
                action.weightedClusters = weighted
            }
            if destinations.count == 1, let headers = destinations[0].headers {
                route.requestHeadersToAdd += Self.headerOptions(headers.request)
                route.requestHeadersToRemove += headers.request?.remove ?? []
                route.responseHeadersToAdd += Self.headerOptions(headers.response)
                route.responseHeadersToRemove += headers.response?.remove ?? []
            }
            Envoy.setTimeout(&action, rule.timeout.map { Envoy.duration(milliseconds: $0.nanoseconds / 1_000_000) } ?? Envoy.duration(seconds: 0))
            if let retries = rule.retries {
                if let policy = Self.retryPolicy(retries) { action.retryPolicy = policy }
            } else {
                action.retryPolicy = RetryPolicies.istioDefault
            }
            action.requestMirrorPolicies = mirrors(rule, namespace: namespace, port: port)
            // Consistent hashing of the (first) destination's DestinationRule.
            if let hash = resolved[0].policy.loadBalancer?.consistentHash {
                action.hashPolicy = Self.hashPolicies(hash)
            }
            route.route = action
        }
        if let headers = rule.headers {
            route.requestHeadersToAdd += Self.headerOptions(headers.request)
            route.requestHeadersToRemove += headers.request?.remove ?? []
            route.responseHeadersToAdd += Self.headerOptions(headers.response)
            route.responseHeadersToRemove += headers.response?.remove ?? []
        }
        if let fault = rule.fault, let config = Self.fault(fault) {
            route.typedPerFilterConfig["envoy.filters.http.fault"] = Google_Protobuf_Any(deterministic: config)
        }
        if let cors = rule.corsPolicy {
            route.typedPerFilterConfig["envoy.filters.http.cors"] = Google_Protobuf_Any(deterministic: Self.cors(cors))
        }
        return route
    }

    struct ResolvedDestination {
        var cluster: String
        var policy: EffectivePolicy
    }

    /// The cluster of a destination (`outbound|<port>|<subset>|<host>`); reports hosts and subsets
    /// that do not exist.
    mutating func destination(for destination: Destination, namespace: String, port: UInt32) -> ResolvedDestination {
        let host = HostName.resolve(destination.host, in: namespace, domainSuffix: snapshot.settings.domainSuffix)
        let service = snapshot.registry.service(hostname: host, visibleFrom: proxy.namespace)
        var targetPort = destination.port?.number ?? 0
        if targetPort == 0 {
            if let service, service.ports.count == 1 { targetPort = service.ports[0].number } else { targetPort = port }
        }
        if service == nil {
            unresolved.append("destination host \(host) matches no service visible from \(proxy.namespace)")
        }
        let subset = destination.subset ?? ""
        var rule: DestinationRule? = nil
        if let service { rule = destinationRules.rule(for: service, proxy: proxy)?.spec }
        if !subset.isEmpty, rule?.subsets?.contains(where: { $0.name == subset }) != true {
            unresolved.append("subset \(subset) of \(host) is defined by no DestinationRule")
        }
        return ResolvedDestination(
            cluster: ResourceNames.outboundCluster(port: targetPort, subset: subset, host: host),
            policy: EffectivePolicy(rule: rule, port: targetPort, subset: subset.isEmpty ? nil : subset))
    }

    mutating func mirrors(_ rule: HTTPRoute, namespace: String, port: UInt32) -> [RouteAction.RequestMirrorPolicy] {
        var policies: [(Destination, Double?)] = []
        if let mirror = rule.mirror {
            let percent = rule.mirrorPercentage?.value ?? rule.mirrorPercent.map(Double.init)
            policies.append((mirror, percent))
        }
        for mirror in rule.mirrors ?? [] { policies.append((mirror.destination, mirror.percentage?.value)) }
        return policies.map { destination, percent in
            var policy = RouteAction.RequestMirrorPolicy()
            policy.cluster = self.destination(for: destination, namespace: namespace, port: port).cluster
            var fraction = Envoy_Config_Core_V3_RuntimeFractionalPercent()
            fraction.defaultValue = Self.percent(percent ?? 100)
            policy.runtimeFraction = fraction
            return policy
        }
    }

    static func percent(_ value: Double) -> FractionalPercent {
        var fraction = FractionalPercent()
        fraction.numerator = UInt32((min(max(value, 0), 100) * 10_000).rounded())
        fraction.denominator = .million
        return fraction
    }

    static func redirect(_ redirect: HTTPRedirect) -> Envoy_Config_Route_V3_RedirectAction {
        var action = Envoy_Config_Route_V3_RedirectAction()
        if let uri = redirect.uri { action.pathRedirect = uri }
        if let prefix = redirect.prefixRewrite { action.prefixRewrite = prefix }
        if let authority = redirect.authority { action.hostRedirect = authority }
        if let port = redirect.port { action.portRedirect = port }
        if let scheme = redirect.scheme { action.schemeRedirect = scheme }
        switch redirect.redirectCode ?? 301 {
        case 302: action.responseCode = .found
        case 303: action.responseCode = .seeOther
        case 307: action.responseCode = .temporaryRedirect
        case 308: action.responseCode = .permanentRedirect
        default: action.responseCode = .movedPermanently
        }
        return action
    }

    /// `uri` rewrite replaces what the match selected (the prefix, or the whole exact path);
    /// `authority` rewrites the Host header.
    func applyRewrite(_ rewrite: HTTPRewrite, match: HTTPMatchRequest?, to action: inout RouteAction) {
        if let uri = rewrite.uri {
            if let exact = match?.uri?.exact {
                var substitution = Envoy_Type_Matcher_V3_RegexMatchAndSubstitute()
                substitution.pattern = Self.regex("^" + NSRegularExpression.escapedPattern(for: exact) + "$")
                substitution.substitution = uri
                action.regexRewrite = substitution
            } else {
                action.prefixRewrite = uri
            }
        } else if let regex = rewrite.uriRegexRewrite, let pattern = regex.match {
            var substitution = Envoy_Type_Matcher_V3_RegexMatchAndSubstitute()
            substitution.pattern = Self.regex(pattern)
            substitution.substitution = regex.rewrite ?? ""
            action.regexRewrite = substitution
        }
        if let authority = rewrite.authority { action.hostRewriteLiteral = authority }
    }

    /// Istio's retries: `attempts` (0 turns retries off), `perTryTimeout`, `retryOn` (conditions
    /// and status codes; Istio's default conditions when empty), `backoff` as Envoy's base interval
    /// (Envoy backs off exponentially from it, with jitter), a different host on each retry unless
    /// `retryIgnorePreviousHosts: false`, and with `retryRemoteLocalities` retries that move on to
    /// the next priority (locality) after each attempt.
    static func retryPolicy(_ retries: HTTPRetry) -> Envoy_Config_Route_V3_RetryPolicy? {
        guard let attempts = retries.attempts, attempts > 0 else { return nil }
        var policy = RetryPolicies.istioDefault
        policy.numRetries = Envoy.uint32(UInt32(attempts))
        if let retryOn = retries.retryOn, !retryOn.isEmpty {
            var conditions: [String] = []
            var codes: [UInt32] = []
            for part in retryOn.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !part.isEmpty {
                if let code = UInt32(part) { codes.append(code) } else { conditions.append(part) }
            }
            if !codes.isEmpty && !conditions.contains("retriable-status-codes") { conditions.append("retriable-status-codes") }
            policy.retryOn = conditions.joined(separator: ",")
            policy.retriableStatusCodes = codes
        }
        if let perTry = retries.perTryTimeout { policy.perTryTimeout = Envoy.duration(milliseconds: perTry.nanoseconds / 1_000_000) }
        if let backoff = retries.backoff {
            var backOff = Envoy_Config_Route_V3_RetryPolicy.RetryBackOff()
            backOff.baseInterval = Envoy.duration(milliseconds: max(1, backoff.nanoseconds / 1_000_000))
            policy.retryBackOff = backOff
        }
        if retries.retryIgnorePreviousHosts == false {
            policy.retryHostPredicate = []
            policy.hostSelectionRetryMaxAttempts = 0
        }
        if retries.retryRemoteLocalities == true { policy.retryPriority = RetryPolicies.previousPriorities }
        return policy
    }

    /// Istio's fault: a delay or abort without `percentage` (or the deprecated `percent`) applies to
    /// no request, as Istio's API says and its translation does (0 %).
    static func fault(_ fault: HTTPFaultInjection) -> Envoy_Extensions_Filters_Http_Fault_V3_HTTPFault? {
        var config = Envoy_Extensions_Filters_Http_Fault_V3_HTTPFault()
        var used = false
        if let delay = fault.delay, let fixed = delay.fixedDelay ?? delay.exponentialDelay {
            var envoyDelay = Envoy_Extensions_Filters_Common_Fault_V3_FaultDelay()
            envoyDelay.fixedDelay = Envoy.duration(milliseconds: fixed.nanoseconds / 1_000_000)
            envoyDelay.percentage = percent(delay.percentage?.value ?? delay.percent.map(Double.init) ?? 0)
            config.delay = envoyDelay
            used = true
        }
        if let abort = fault.abort {
            var envoyAbort = Envoy_Extensions_Filters_Http_Fault_V3_FaultAbort()
            if let status = abort.httpStatus {
                envoyAbort.httpStatus = UInt32(status)
            } else if let grpc = abort.grpcStatus {
                envoyAbort.grpcStatus = grpcCode(grpc)
            } else {
                return used ? config : nil
            }
            envoyAbort.percentage = percent(abort.percentage?.value ?? 0)
            config.abort = envoyAbort
            used = true
        }
        return used ? config : nil
    }

    /// gRPC status names (`UNAVAILABLE`) or numbers as codes.
    /// A validated `grpcStatus`'s code (``GRPCStatus``).
    static func grpcCode(_ text: String) -> UInt32 {
        GRPCStatus.code(text) ?? 2
    }

    static func cors(_ policy: CorsPolicy) -> Envoy_Extensions_Filters_Http_Cors_V3_CorsPolicy {
        var cors = Envoy_Extensions_Filters_Http_Cors_V3_CorsPolicy()
        cors.allowOriginStringMatch = (policy.allowOrigins ?? []).compactMap(stringMatcher)
            + (policy.allowOrigin ?? []).map { origin in
                var matcher = StringMatcher()
                matcher.exact = origin
                return matcher
            }
        cors.allowMethods = (policy.allowMethods ?? []).joined(separator: ",")
        cors.allowHeaders = (policy.allowHeaders ?? []).joined(separator: ",")
        cors.exposeHeaders = (policy.exposeHeaders ?? []).joined(separator: ",")
        if let maxAge = policy.maxAge { cors.maxAge = String(maxAge.wholeSeconds) }
        if let credentials = policy.allowCredentials { cors.allowCredentials = Google_Protobuf_BoolValue(credentials) }
        if let unmatched = policy.unmatchedPreflights, unmatched != .UNSPECIFIED {
            cors.forwardNotMatchingPreflights = Google_Protobuf_BoolValue(unmatched == .FORWARD)
        }
        return cors
    }

    static func headerOptions(_ operations: Headers.HeaderOperations?) -> [Envoy_Config_Core_V3_HeaderValueOption] {
        guard let operations else { return [] }
        let set = (operations.set ?? [:]).sorted { $0.key < $1.key }.map { option($0.key, $0.value, .overwriteIfExistsOrAdd) }
        let add = (operations.add ?? [:]).sorted { $0.key < $1.key }.map { option($0.key, $0.value, .appendIfExistsOrAdd) }
        return set + add
    }

    static func option(_ name: String, _ value: String, _ action: Envoy_Config_Core_V3_HeaderValueOption.HeaderAppendAction) -> Envoy_Config_Core_V3_HeaderValueOption {
        var header = Envoy_Config_Core_V3_HeaderValue()
        header.key = name
        header.value = value
        var option = Envoy_Config_Core_V3_HeaderValueOption()
        option.header = header
        option.appendAction = action
        return option
    }

    /// Route hash policies for a DestinationRule's consistent hash.
    static func hashPolicies(_ hash: LoadBalancerSettings.ConsistentHashLB) -> [RouteAction.HashPolicy] {
        var policy = RouteAction.HashPolicy()
        if let header = hash.httpHeaderName {
            var value = RouteAction.HashPolicy.Header()
            value.headerName = header
            policy.header = value
        } else if let cookie = hash.httpCookie {
            var value = RouteAction.HashPolicy.Cookie()
            value.name = cookie.name
            if let path = cookie.path { value.path = path }
            if let ttl = cookie.ttl { value.ttl = Envoy.duration(milliseconds: ttl.nanoseconds / 1_000_000) }
            policy.cookie = value
        } else if hash.useSourceIp == true {
            var value = RouteAction.HashPolicy.ConnectionProperties()
            value.sourceIp = true
            policy.connectionProperties = value
        } else if let parameter = hash.httpQueryParameterName {
            var value = RouteAction.HashPolicy.QueryParameter()
            value.name = parameter
            policy.queryParameter = value
        } else {
            return []
        }
        return [policy]
    }
}
