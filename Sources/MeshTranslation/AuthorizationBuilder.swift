internal import EnvoyAPI
internal import MeshModel
internal import SwiftProtobuf

typealias RBACConfig = Envoy_Config_Rbac_V3_RBAC
typealias RBACPolicy = Envoy_Config_Rbac_V3_Policy
typealias Permission = Envoy_Config_Rbac_V3_Permission
typealias Principal = Envoy_Config_Rbac_V3_Principal

/// Turns the AuthorizationPolicies that select a workload into Envoy filters, evaluated as Istio
/// evaluates them: CUSTOM (external authorization, ``ExternalAuthorization``), then the JWT check
/// of RequestAuthentications (``JWTAuthentication``), then AUDIT (log only), DENY and ALLOW — and
/// when any ALLOW policy selects the workload, a request that matches none is denied. Each rule
/// is an RBAC policy named `ns[<namespace>]-policy[<name>]-rule[<index>]`. Dry-run policies (`istio.io/dry-run: "true"`)
/// become shadow rules that are counted and logged but never block. Each policy also gets a
/// shadow-only filter whose stats (`<policy>-shadow_allowed`/`-shadow_denied`) count its matches.
struct AuthorizationBuilder {
    /// The policies that apply, sorted by namespace and name.
    let policies: [Configured<AuthorizationPolicy>]
    let trustDomain: String
    /// Whether `X-Forwarded-For` is believed at all (mesh.yaml `numTrustedProxies` > 0). When it is
    /// not, `remoteIpBlocks` and `remote.ip` match the connection's peer: a caller cannot choose
    /// the address it is judged by.
    let trustsForwardedFor: Bool
    /// The RequestAuthentications that select the workload.
    let authentication: JWTAuthentication
    /// Where CUSTOM policies send requests: the one provider they name, or none that can be used
    /// (then every request is denied, as Istio does; ``ReferenceCheck`` reports why).
    let custom: Custom?

    enum Custom: Sendable {
        case provider(ExternalAuthorization)
        case unusable
    }

    /// Istio's shadow stat prefixes, also the keys of the shadow results in dynamic metadata.
    static let dryRunAllowPrefix = "istio_dry_run_allow_"
    static let dryRunDenyPrefix = "istio_dry_run_deny_"

    init(workload: WorkloadInstance, snapshot: MeshSnapshot) {
        policies = snapshot.authorizationPolicies.filter { $0.selects(workload, rootNamespace: snapshot.settings.rootNamespace) }
        trustDomain = snapshot.settings.trustDomain
        trustsForwardedFor = snapshot.mesh.numTrustedProxies > 0
        authentication = JWTAuthentication(workload: workload, snapshot: snapshot)
        custom = Self.custom(policies.filter { $0.spec.action == .CUSTOM && !Self.isDryRun($0) }, snapshot: snapshot)
    }

    /// The provider of the enforced CUSTOM policies: one per workload, as in Istio, and a service
    /// of the registry.
    static func custom(_ policies: [Configured<AuthorizationPolicy>], snapshot: MeshSnapshot) -> Custom? {
        guard !policies.isEmpty else { return nil }
        let names = Set(policies.compactMap { $0.spec.provider?.name })
        guard names.count == 1, let name = names.first, let provider = snapshot.mesh.authorizationProvider(named: name),
              provider.registryProblem(in: snapshot.registry) == nil
        else { return .unusable }
        return .provider(provider)
    }

    /// The principal of `remoteIpBlocks`/`remote.ip`: the address Envoy derives from
    /// `X-Forwarded-For` when proxies in front are trusted, else the connection's peer.
    func remoteAddress(_ text: String) -> Principal {
        trustsForwardedFor ? Self.remoteIP(text) : Self.directRemoteIP(text)
    }

    var isEmpty: Bool { policies.isEmpty }

    static func isDryRun(_ policy: Configured<AuthorizationPolicy>) -> Bool {
        policy.metadata.annotations["istio.io/dry-run"]?.lowercased() == "true"
    }

    /// The engines in evaluation order: (action, enforced rules, dry-run rules).
    func engines(http: Bool) -> [(action: RBACConfig.Action, rules: RBACConfig?, shadow: RBACConfig?)] {
        // CUSTOM policies are not engines of their own: ``customHTTPFilters()`` sends what they
        // match to the provider.
        var out: [(RBACConfig.Action, RBACConfig?, RBACConfig?)] = []
        for (istio, envoy) in [(AuthorizationPolicy.Action.AUDIT, RBACConfig.Action.log), (.DENY, .deny), (.ALLOW, .allow)] {
            let selected = policies.filter { ($0.spec.action ?? .ALLOW) == istio }
            let enforced = selected.filter { !Self.isDryRun($0) }
            let dryRun = selected.filter(Self.isDryRun)
            // ALLOW is enforced as soon as one (non-dry-run) ALLOW policy selects the workload,
            // even with no rules: then nothing is allowed.
            let rules = enforced.isEmpty ? nil : rbac(envoy, enforced, http: http)
            let shadow = dryRun.isEmpty ? nil : rbac(envoy, dryRun, http: http)
            if rules != nil || shadow != nil { out.append((envoy, rules, shadow)) }
        }
        return out
    }

    func rbac(_ action: RBACConfig.Action, _ policies: [Configured<AuthorizationPolicy>], http: Bool, namePrefix: String = "") -> RBACConfig {
        var config = RBACConfig()
        config.action = action
        for policy in policies {
            for (index, rule) in (policy.spec.rules ?? []).enumerated() {
                if let translated = translate(rule, deny: action == .deny, http: http) {
                    config.policies[namePrefix + Self.name(policy, rule: index)] = translated
                }
            }
        }
        return config
    }

    static func name(_ policy: Configured<AuthorizationPolicy>, rule: Int) -> String {
        "ns[\(policy.metadata.namespace)]-policy[\(policy.metadata.name)]-rule[\(rule)]"
    }

    /// Envoy appends `.shadow_allowed` / `.shadow_denied`.
    static func statPrefix(_ policy: Configured<AuthorizationPolicy>) -> String {
        "ns[\(policy.metadata.namespace)]-policy[\(policy.metadata.name)]"
    }

    /// The HTTP filters, in order: CUSTOM (a shadow RBAC filter that marks what the policies match,
    /// and external authorization for those requests), the JWT check, per-policy counters, then
    /// the AUDIT, DENY and ALLOW engines. `gateway`: the route is chosen again after the JWT check.
    func httpFilters(gateway: Bool = false) -> [HTTPFilter] {
        var filters = customHTTPFilters()
        if !authentication.isEmpty { filters.append(authentication.filter(gateway: gateway)) }
        for policy in policies where !Self.isDryRun(policy) && policy.spec.action != .CUSTOM {
            var config = Envoy_Extensions_Filters_Http_Rbac_V3_RBAC()
            config.shadowRules = rbac(Self.envoyAction(policy), [policy], http: true)
            config.shadowRulesStatPrefix = Self.statPrefix(policy)
            filters.append(Envoy.httpFilter("envoy.filters.http.rbac", config))
        }
        for engine in engines(http: true) {
            var config = Envoy_Extensions_Filters_Http_Rbac_V3_RBAC()
            if let rules = engine.rules { config.rules = rules }
            if let shadow = engine.shadow {
                config.shadowRules = shadow
                config.shadowRulesStatPrefix = engine.action == .deny ? Self.dryRunDenyPrefix : Self.dryRunAllowPrefix
            }
            filters.append(Envoy.httpFilter("envoy.filters.http.rbac", config))
        }
        return filters
    }

    /// Network filters for a TCP port, in the same order (CUSTOM with a gRPC provider only, as in
    /// Istio: an HTTP provider cannot judge a connection).
    func networkFilters(statPrefix: String) -> [NetworkFilter] {
        var filters = customNetworkFilters(statPrefix: statPrefix)
        for policy in policies where !Self.isDryRun(policy) && policy.spec.action != .CUSTOM {
            var config = Envoy_Extensions_Filters_Network_Rbac_V3_RBAC()
            config.shadowRules = rbac(Self.envoyAction(policy), [policy], http: false)
            config.shadowRulesStatPrefix = Self.statPrefix(policy)
            config.statPrefix = statPrefix
            filters.append(Envoy.networkFilter("envoy.filters.network.rbac", config))
        }
        for engine in engines(http: false) {
            var config = Envoy_Extensions_Filters_Network_Rbac_V3_RBAC()
            config.statPrefix = statPrefix
            if let rules = engine.rules { config.rules = rules }
            if let shadow = engine.shadow {
                config.shadowRules = shadow
                config.shadowRulesStatPrefix = engine.action == .deny ? Self.dryRunDenyPrefix : Self.dryRunAllowPrefix
            }
            filters.append(Envoy.networkFilter("envoy.filters.network.rbac", config))
        }
        return filters
    }

    static func envoyAction(_ policy: Configured<AuthorizationPolicy>) -> RBACConfig.Action {
        switch policy.spec.action ?? .ALLOW {
        case .DENY: .deny
        case .AUDIT: .log
        default: .allow
        }
    }

    /// Whether any dry-run policy applies (its decisions are written to the access log).
    var hasDryRun: Bool { policies.contains(where: Self.isDryRun) }

    /// An access log on Envoy's standard output with each request's dry-run decisions, so a user
    /// can see what a dry-run policy would have done.
    static var dryRunAccessLog: Envoy_Config_Accesslog_V3_AccessLog {
        func metadata(_ key: String) -> String { "%DYNAMIC_METADATA(envoy.filters.http.rbac:\(key))%" }
        let line = "meshd-authz-dry-run allow_result=\(metadata(dryRunAllowPrefix + "shadow_engine_result")) allow_policy=\(metadata(dryRunAllowPrefix + "shadow_effective_policy_id")) deny_result=\(metadata(dryRunDenyPrefix + "shadow_engine_result")) deny_policy=\(metadata(dryRunDenyPrefix + "shadow_effective_policy_id")) custom_policy=\(metadata(dryRunCustomPrefix + "shadow_effective_policy_id")) method=%REQ(:METHOD)% path=%REQ(:PATH)% peer=%DOWNSTREAM_PEER_URI_SAN% status=%RESPONSE_CODE%\n"
        var format = Envoy_Config_Core_V3_SubstitutionFormatString()
        var text = Envoy_Config_Core_V3_DataSource()
        text.inlineString = line
        format.textFormatSource = text
        var file = Envoy_Extensions_AccessLoggers_File_V3_FileAccessLog()
        file.path = "/dev/stdout"
        file.logFormat = format
        var log = Envoy_Config_Accesslog_V3_AccessLog()
        log.name = "envoy.access_loggers.file"
        log.typedConfig = Google_Protobuf_Any(deterministic: file)
        return log
    }

    // MARK: - Rules

    /// One rule as an RBAC policy: the permissions are the OR of its `to` operations AND its
    /// destination-side conditions; the principals the OR of its `from` sources AND its
    /// source-side conditions. On a TCP port a rule that needs HTTP matches nothing — except in a
    /// DENY policy, where the HTTP-only parts are dropped so the rule denies more, never less.
    func translate(_ rule: AuthorizationRule, deny: Bool, http: Bool) -> RBACPolicy? {
        let operations = (rule.to ?? []).compactMap(\.operation)
        let sources = (rule.from ?? []).compactMap(\.source)
        let conditions = rule.when ?? []
        if !http && !deny && (operations.contains(where: Self.usesHTTP) || sources.contains(where: Self.usesHTTP) || conditions.contains(where: { Self.httpOnlyKey($0.key) })) {
            return nil
        }
        var permissions: [Permission] = []
        if !operations.isEmpty {
            permissions.append(Self.or(operations.map { operation(http ? $0 : Self.stripHTTP($0)) }))
        }
        var principals: [Principal] = []
        if !sources.isEmpty {
            principals.append(Self.orIDs(sources.map { source(http ? $0 : Self.stripHTTP($0)) }))
        }
        for condition in conditions where http || !Self.httpOnlyKey(condition.key) {
            switch Self.side(condition.key) {
            case .permission: permissions.append(permission(condition))
            case .principal: principals.append(principal(condition))
            }
        }
        var policy = RBACPolicy()
        policy.permissions = [Self.and(permissions)]
        policy.principals = [Self.andIDs(principals)]
        return policy
    }

    static func usesHTTP(_ operation: AuthorizationOperation) -> Bool {
        [operation.hosts, operation.notHosts, operation.methods, operation.notMethods, operation.paths, operation.notPaths]
            .contains { !($0 ?? []).isEmpty }
    }

    static func stripHTTP(_ operation: AuthorizationOperation) -> AuthorizationOperation {
        AuthorizationOperation(ports: operation.ports, notPorts: operation.notPorts)
    }

    /// Request principals come from a JWT: only HTTP has them.
    static func usesHTTP(_ source: AuthorizationSource) -> Bool {
        !(source.requestPrincipals ?? []).isEmpty || !(source.notRequestPrincipals ?? []).isEmpty
    }

    static func stripHTTP(_ source: AuthorizationSource) -> AuthorizationSource {
        var stripped = source
        stripped.requestPrincipals = nil
        stripped.notRequestPrincipals = nil
        return stripped
    }

    static func httpOnlyKey(_ key: String) -> Bool {
        key.hasPrefix("request.")
    }

    enum Side { case permission, principal }

    static func side(_ key: String) -> Side {
        switch key {
        case "destination.ip", "destination.port", "connection.sni": .permission
        default: .principal
        }
    }

    func operation(_ operation: AuthorizationOperation) -> Permission {
        var parts: [Permission] = []
        func field(_ values: [String]?, _ not: [String]?, _ make: (String) -> Permission) {
            if let values, !values.isEmpty { parts.append(Self.or(values.map(make))) }
            if let not, !not.isEmpty { parts.append(Self.not(Self.or(not.map(make)))) }
        }
        field(operation.hosts, operation.notHosts, Self.host)
        field(operation.ports, operation.notPorts) { Self.port(UInt32($0) ?? 0) }
        field(operation.methods, operation.notMethods) { Self.headerPermission(":method", Self.exact($0)) }
        field(operation.paths, operation.notPaths, Self.path)
        return Self.and(parts)
    }

    func source(_ source: AuthorizationSource) -> Principal {
        var parts: [Principal] = []
        func field(_ values: [String]?, _ not: [String]?, _ make: (String) -> Principal) {
            if let values, !values.isEmpty { parts.append(Self.orIDs(values.map(make))) }
            if let not, !not.isEmpty { parts.append(Self.notID(Self.orIDs(not.map(make)))) }
        }
        field(source.principals, source.notPrincipals, Self.principalName)
        field(source.namespaces, source.notNamespaces, Self.namespace)
        field(source.serviceAccounts, source.notServiceAccounts, serviceAccount)
        field(source.trustDomains, source.notTrustDomains) { Self.authenticated(Self.prefixMatcher("spiffe://\($0)/")) }
        field(source.ipBlocks, source.notIpBlocks) { Self.directRemoteIP($0) }
        field(source.remoteIpBlocks, source.notRemoteIpBlocks, remoteAddress)
        field(source.requestPrincipals, source.notRequestPrincipals, Self.requestPrincipal)
        return Self.andIDs(parts)
    }

    func permission(_ condition: AuthorizationCondition) -> Permission {
        let make: (String) -> Permission
        switch condition.key {
        case "destination.ip": make = { Self.destinationIP($0) }
        case "destination.port": make = { Self.port(UInt32($0) ?? 0) }
        default: make = { Self.sni($0) }
        }
        var parts: [Permission] = []
        if let values = condition.values, !values.isEmpty { parts.append(Self.or(values.map(make))) }
        if let not = condition.notValues, !not.isEmpty { parts.append(Self.not(Self.or(not.map(make)))) }
        return Self.and(parts)
    }

    func principal(_ condition: AuthorizationCondition) -> Principal {
        let make: (String) -> Principal
        let key = condition.key
        switch key {
        case "source.ip": make = { Self.directRemoteIP($0) }
        case "remote.ip": make = remoteAddress
        case "source.namespace": make = Self.namespace
        case "source.principal": make = Self.principalName
        case "source.serviceAccount": make = serviceAccount
        case "request.auth.principal": make = Self.requestPrincipal
        case "request.auth.audiences": make = { Self.claim(["aud"], $0) }
        case "request.auth.presenter": make = { Self.claim(["azp"], $0) }
        case _ where key.hasPrefix("request.auth.claims"): make = { Self.claim(JWTClaims.path(ofKey: key) ?? [], $0) }
        default:
            // request.headers[NAME]
            let name = String(key.dropFirst("request.headers[".count).dropLast()).lowercased()
            make = { value in
                var principal = Principal()
                principal.header = Self.headerMatcher(name, Self.wildcard(value))
                return principal
            }
        }
        var parts: [Principal] = []
        if let values = condition.values, !values.isEmpty { parts.append(Self.orIDs(values.map(make))) }
        if let not = condition.notValues, !not.isEmpty { parts.append(Self.notID(Self.orIDs(not.map(make)))) }
        return Self.andIDs(parts)
    }

    // MARK: - Matchers

    /// Istio's string wildcards: `*` is "present", `x*` a prefix, `*x` a suffix, else exact.
    static func wildcard(_ value: String, ignoreCase: Bool = false) -> StringMatcher {
        var matcher = StringMatcher()
        if value == "*" {
            matcher.safeRegex = HTTPRouteBuilder.regex(".+")
        } else if value.hasSuffix("*") {
            matcher.prefix = String(value.dropLast())
        } else if value.hasPrefix("*") {
            matcher.suffix = String(value.dropFirst())
        } else {
            matcher.exact = value
        }
        matcher.ignoreCase = ignoreCase
        return matcher
    }

    static func exact(_ value: String) -> StringMatcher {
        var matcher = StringMatcher()
        matcher.exact = value
        return matcher
    }

    static func prefixMatcher(_ value: String) -> StringMatcher {
        var matcher = StringMatcher()
        matcher.prefix = value
        return matcher
    }

    static func headerMatcher(_ name: String, _ matcher: StringMatcher) -> HeaderMatcher {
        var header = HeaderMatcher()
        header.name = name
        header.stringMatch = matcher
        return header
    }

    /// A host matches with or without a port, case-insensitively.
    static func host(_ value: String) -> Permission {
        var withPort = wildcard(value, ignoreCase: true)
        if case .exact(let exact)? = withPort.matchPattern {
            withPort = StringMatcher()
            withPort.prefix = exact + ":"
            withPort.ignoreCase = true
            return or([headerPermission(":authority", wildcard(value, ignoreCase: true)), headerPermission(":authority", withPort)])
        }
        return headerPermission(":authority", withPort)
    }

    static func headerPermission(_ name: String, _ matcher: StringMatcher) -> Permission {
        var permission = Permission()
        permission.header = headerMatcher(name, matcher)
        return permission
    }

    static func path(_ value: String) -> Permission {
        var path = Envoy_Type_Matcher_V3_PathMatcher()
        path.path = wildcard(value)
        var permission = Permission()
        permission.urlPath = path
        return permission
    }

    static func port(_ value: UInt32) -> Permission {
        var permission = Permission()
        permission.destinationPort = value
        return permission
    }

    static func sni(_ value: String) -> Permission {
        var permission = Permission()
        permission.requestedServerName = wildcard(value)
        return permission
    }

    static func cidr(_ text: String) -> Envoy_Config_Core_V3_CidrRange {
        var range = Envoy_Config_Core_V3_CidrRange()
        if let block = CIDRBlock(text) {
            range.addressPrefix = block.address.description
            range.prefixLen = Google_Protobuf_UInt32Value(UInt32(block.prefixLength))
        }
        return range
    }

    static func destinationIP(_ text: String) -> Permission {
        var permission = Permission()
        permission.destinationIp = cidr(text)
        return permission
    }

    static func directRemoteIP(_ text: String) -> Principal {
        var principal = Principal()
        principal.directRemoteIp = cidr(text)
        return principal
    }

    static func remoteIP(_ text: String) -> Principal {
        var principal = Principal()
        principal.remoteIp = cidr(text)
        return principal
    }

    static func authenticated(_ matcher: StringMatcher) -> Principal {
        var authenticated = Principal.Authenticated()
        authenticated.principalName = matcher
        var principal = Principal()
        principal.authenticated = authenticated
        return principal
    }

    /// `cluster.local/ns/a/sa/b` (Istio adds `spiffe://`); `*` is any authenticated peer.
    static func principalName(_ value: String) -> Principal {
        if value == "*" { return authenticated(wildcard("*")) }
        if value.hasSuffix("*") { return authenticated(prefixMatcher("spiffe://" + value.dropLast())) }
        if value.hasPrefix("*") { return authenticated(wildcard(value)) }
        return authenticated(exact("spiffe://" + value))
    }

    /// A namespace, as the `/ns/<namespace>/` part of the peer's SPIFFE ID.
    static func namespace(_ value: String) -> Principal {
        var matcher = StringMatcher()
        let escaped = value.map { character -> String in
            character == "*" ? "[^/]*" : (character.isLetter || character.isNumber || character == "-" ? String(character) : "\\" + String(character))
        }.joined()
        matcher.safeRegex = HTTPRouteBuilder.regex(".*/ns/\(escaped)/.*")
        return authenticated(matcher)
    }

    /// `namespace/service-account` (or a bare service account in the policy's trust domain).
    func serviceAccount(_ value: String) -> Principal {
        let parts = value.split(separator: "/", maxSplits: 1)
        if parts.count == 2 {
            return Self.authenticated(Self.exact("spiffe://\(trustDomain)/ns/\(parts[0])/sa/\(parts[1])"))
        }
        return Self.authenticated(Self.wildcard("*/sa/\(value)"))
    }

    static func or(_ permissions: [Permission]) -> Permission {
        if permissions.count == 1 { return permissions[0] }
        var set = Permission.Set()
        set.rules = permissions
        var permission = Permission()
        permission.orRules = set
        return permission
    }

    static func and(_ permissions: [Permission]) -> Permission {
        if permissions.isEmpty {
            var any = Permission()
            any.any = true
            return any
        }
        if permissions.count == 1 { return permissions[0] }
        var set = Permission.Set()
        set.rules = permissions
        var permission = Permission()
        permission.andRules = set
        return permission
    }

    static func not(_ permission: Permission) -> Permission {
        var negated = Permission()
        negated.notRule = permission
        return negated
    }

    static func orIDs(_ principals: [Principal]) -> Principal {
        if principals.count == 1 { return principals[0] }
        var set = Principal.Set()
        set.ids = principals
        var principal = Principal()
        principal.orIds = set
        return principal
    }

    static func andIDs(_ principals: [Principal]) -> Principal {
        if principals.isEmpty {
            var any = Principal()
            any.any = true
            return any
        }
        if principals.count == 1 { return principals[0] }
        var set = Principal.Set()
        set.ids = principals
        var principal = Principal()
        principal.andIds = set
        return principal
    }

    static func notID(_ principal: Principal) -> Principal {
        var negated = Principal()
        negated.notID = principal
        return negated
    }
}
