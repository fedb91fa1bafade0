internal import EnvoyAPI
internal import Foundation
internal import MeshModel
internal import SwiftProtobuf

typealias JwtAuthn = Envoy_Extensions_Filters_Http_JwtAuthn_V3_JwtAuthentication
typealias JwtProvider = Envoy_Extensions_Filters_Http_JwtAuthn_V3_JwtProvider
typealias JwtRequirement = Envoy_Extensions_Filters_Http_JwtAuthn_V3_JwtRequirement

/// The RequestAuthentications that select a workload, as Envoy's `jwt_authn` filter, built as
/// Istio builds it: one provider per JWT rule (`origins-<i>`, rules sorted by issuer), keys inline
/// (meshd fetches `jwksUri` itself), and one requirement for every path: a token that is present
/// must be valid for one provider, a missing token passes (an AuthorizationPolicy with
/// `requestPrincipals` decides whether one is needed). A verified token's payload is kept in
/// dynamic metadata under `envoy.filters.http.jwt_authn` / `payload`, where the authorization
/// rules (``AuthorizationBuilder``) read `iss`, `sub`, `aud`, `azp` and other claims.
struct JWTAuthentication: Sendable {
    static let filterName = "envoy.filters.http.jwt_authn"
    /// The metadata key of verified payloads (Istio's).
    static let payloadKey = "payload"

    /// A rule with the key set it verifies with.
    struct Rule: Sendable {
        var rule: JWTRule
        /// The inline `jwks`, the fetched `jwksUri` document, or a key set that verifies nothing
        /// when it was never fetched (then a request with a token is refused, one without passes).
        var keys: String
    }

    /// The rules of every RequestAuthentication that selects the workload, sorted by issuer.
    let rules: [Rule]

    /// The RequestAuthentications that select `workload`: its namespace's and the root
    /// namespace's, without a selector or with one that matches.
    static func selecting(_ workload: WorkloadInstance, in snapshot: MeshSnapshot) -> [Configured<RequestAuthentication>] {
        snapshot.requestAuthentications.filter { $0.selects(workload, rootNamespace: snapshot.settings.rootNamespace) }
    }

    init(workload: WorkloadInstance, snapshot: MeshSnapshot) {
        let selected = Self.selecting(workload, in: snapshot)
        let rules = selected.flatMap { $0.spec.jwtRules ?? [] }.enumerated()
            .sorted { ($0.element.issuer ?? "", $0.offset) < ($1.element.issuer ?? "", $1.offset) }
            .map(\.element)
        self.rules = rules.map { rule in
            let keys = rule.jwks ?? rule.jwksUri.flatMap { snapshot.jwks[$0] } ?? Self.unusableKeys(for: rule.jwksUri ?? "")
            return Rule(rule: rule, keys: keys)
        }
    }

    var isEmpty: Bool { rules.isEmpty }

    /// A well-formed key set no token can verify against (a 2048-bit odd RSA modulus made of the
    /// URI's bytes, which nobody holds a key for), served until `uri` has been fetched, as Istio
    /// does. Envoy refuses a modulus that is even or too short.
    static func unusableKeys(for uri: String) -> String {
        let marker = Array("meshd-has-not-fetched-\(uri)|".utf8)
        var bytes = (0..<256).map { marker[$0 % marker.count] }
        bytes[0] |= 0x80
        bytes[255] |= 0x01
        let modulus = Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        return #"{"keys":[{"kty":"RSA","kid":"meshd-unfetched","alg":"RS256","e":"AQAB","n":"\#(modulus)"}]}"#
    }

    static func providerName(_ index: Int) -> String { "origins-\(index)" }

    /// The filter; on gateways the route is chosen again after it ran (`clear_route_cache`), so
    /// routes can match the headers it writes.
    func filter(gateway: Bool) -> HTTPFilter {
        var config = JwtAuthn()
        for (index, entry) in rules.enumerated() {
            let rule = entry.rule
            var provider = JwtProvider()
            provider.issuer = rule.issuer ?? ""
            provider.audiences = rule.audiences ?? []
            var source = Envoy_Config_Core_V3_DataSource()
            source.inlineString = entry.keys
            provider.localJwks = source
            provider.forward = rule.forwardOriginalToken ?? false
            provider.fromHeaders = (rule.fromHeaders ?? []).map { header in
                var out = Envoy_Extensions_Filters_Http_JwtAuthn_V3_JwtHeader()
                out.name = header.name
                out.valuePrefix = header.prefix ?? ""
                return out
            }
            provider.fromParams = rule.fromParams ?? []
            provider.fromCookies = rule.fromCookies ?? []
            provider.forwardPayloadHeader = rule.outputPayloadToHeader ?? ""
            provider.payloadInMetadata = Self.payloadKey
            var normalize = JwtProvider.NormalizePayload()
            normalize.spaceDelimitedClaims = Array(Set(["scope", "permission"] + (rule.spaceDelimitedClaims ?? []))).sorted()
            provider.normalizePayloadInMetadata = normalize
            provider.claimToHeaders = (rule.outputClaimToHeaders ?? []).map { output in
                var out = Envoy_Extensions_Filters_Http_JwtAuthn_V3_JwtClaimToHeader()
                out.headerName = output.header
                out.claimName = output.claim
                return out
            }
            provider.clearRouteCache_p = gateway
            config.providers[Self.providerName(index)] = provider
        }
        var rule = Envoy_Extensions_Filters_Http_JwtAuthn_V3_RequirementRule()
        var match = Envoy_Config_Route_V3_RouteMatch()
        match.prefix = "/"
        rule.match = match
        rule.requires = requirement
        config.rules = [rule]
        config.bypassCorsPreflight = true
        return Envoy.httpFilter(Self.filterName, config)
    }

    /// A present token must verify with one provider; a missing one passes. With several
    /// providers each must also accept or not see the token (so a token a provider finds but
    /// cannot verify is refused even when another provider reads elsewhere).
    var requirement: JwtRequirement {
        func provider(_ index: Int) -> JwtRequirement {
            var requirement = JwtRequirement()
            requirement.providerName = Self.providerName(index)
            return requirement
        }
        var allowMissing = JwtRequirement()
        allowMissing.allowMissing = Google_Protobuf_Empty()
        func any(_ requirements: [JwtRequirement]) -> JwtRequirement {
            var list = Envoy_Extensions_Filters_Http_JwtAuthn_V3_JwtRequirementOrList()
            list.requirements = requirements
            var requirement = JwtRequirement()
            requirement.requiresAny = list
            return requirement
        }
        if rules.count == 1 { return any([provider(0), allowMissing]) }
        var all = Envoy_Extensions_Filters_Http_JwtAuthn_V3_JwtRequirementAndList()
        all.requirements = rules.indices.map { any([provider($0), allowMissing]) }
        var each = JwtRequirement()
        each.requiresAll = all
        return any(rules.indices.map(provider) + [each])
    }
}

// MARK: - What authorization rules read from a verified token

extension AuthorizationBuilder {
    typealias ValueMatcher = Envoy_Type_Matcher_V3_ValueMatcher

    /// A principal matching the verified token's metadata at `claims` (below the payload).
    static func tokenMetadata(_ claims: [String], _ value: ValueMatcher) -> Principal {
        var matcher = Envoy_Type_Matcher_V3_MetadataMatcher()
        matcher.filter = JWTAuthentication.filterName
        matcher.path = ([JWTAuthentication.payloadKey] + claims).map { key in
            var segment = Envoy_Type_Matcher_V3_MetadataMatcher.PathSegment()
            segment.key = key
            return segment
        }
        matcher.value = value
        var principal = Principal()
        principal.metadata = matcher
        return principal
    }

    static func stringValue(_ matcher: StringMatcher) -> ValueMatcher {
        var value = ValueMatcher()
        value.stringMatch = matcher
        return value
    }

    /// A claim (`aud`, `azp`, `groups`, `[outer, inner]`) that is the value, or a list holding it.
    static func claim(_ path: [String], _ text: String) -> Principal {
        let string = stringValue(wildcard(text))
        var list = Envoy_Type_Matcher_V3_ListMatcher()
        list.oneOf = string
        var inList = ValueMatcher()
        inList.listMatch = list
        var either = Envoy_Type_Matcher_V3_OrMatcher()
        either.valueMatchers = [inList, string]
        var value = ValueMatcher()
        value.orMatch = either
        return tokenMetadata(path, value)
    }

    /// A request principal, `<iss>/<sub>` of the verified token, split at the last `/` as Istio
    /// does: `*` is any verified token, `*x` a subject ending in x (or, with a `/`, an issuer
    /// ending so and that subject), `x*` an issuer starting with x (or, with a `/`, that issuer and
    /// a subject starting so).
    static func requestPrincipal(_ value: String) -> Principal {
        let any = wildcard("*")
        func both(_ issuer: StringMatcher, _ subject: StringMatcher) -> Principal {
            andIDs([tokenMetadata(["iss"], stringValue(issuer)), tokenMetadata(["sub"], stringValue(subject))])
        }
        func split(_ text: Substring) -> (String, String)? {
            guard let slash = text.lastIndex(of: "/") else { return nil }
            return (String(text[..<slash]), String(text[text.index(after: slash)...]))
        }
        if value == "*" { return both(any, any) }
        if value.hasPrefix("*") {
            let rest = value.dropFirst()
            guard let (issuer, subject) = split(rest) else { return both(any, wildcard(value)) }
            return both(issuer.isEmpty ? any : wildcard("*" + issuer), exact(subject))
        }
        if value.hasSuffix("*") {
            // `iss/*` and `prefix*` read the issuer only, as in Istio.
            let rest = value.dropLast()
            guard let (issuer, subject) = split(rest) else { return tokenMetadata(["iss"], stringValue(prefixMatcher(String(rest)))) }
            return subject.isEmpty ? tokenMetadata(["iss"], stringValue(exact(issuer))) : both(exact(issuer), prefixMatcher(subject))
        }
        guard let (issuer, subject) = split(Substring(value)) else { return both(exact(""), exact(value)) }
        return both(exact(issuer), exact(subject))
    }
}
