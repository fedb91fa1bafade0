import EnvoyAPI
import Foundation
import MeshConfig
import MeshModel
import MeshTranslation
import SwiftProtobuf
import Testing
import XDSTesting

@Suite("RequestAuthentication (jwt_authn), request.auth in policies and CUSTOM (ext_authz) in the generated config")
struct RequestAuthenticationTranslationTests {
    typealias HCM = Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager

    static let keys = #"{"keys":[{"kty":"RSA","kid":"k1","alg":"RS256","e":"AQAB","n":"sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw"}]}"#

    static let policies = """

        ---
        apiVersion: security.istio.io/v1
        kind: RequestAuthentication
        metadata: {name: jwt, namespace: shop}
        spec:
          selector: {matchLabels: {app: web}}
          jwtRules:
          - issuer: https://z.example.com
            jwksUri: https://z.example.com/keys
            fromHeaders: [{name: x-token, prefix: "Token "}]
            fromCookies: [session]
            spaceDelimitedClaims: [roles]
          - issuer: https://a.example.com
            jwks: '\(keys)'
            audiences: [web]
            outputClaimToHeaders: [{header: x-sub, claim: sub}]
        ---
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: checked, namespace: shop}
        spec:
          selector: {matchLabels: {app: web}}
          action: CUSTOM
          provider: {name: checker}
          rules: [{to: [{operation: {paths: ["/checked/*"]}}]}]
        ---
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: users, namespace: shop}
        spec:
          selector: {matchLabels: {app: web}}
          rules:
          - from: [{source: {requestPrincipals: ["https://a.example.com/alice", "*"], notRequestPrincipals: ["*/mallory"]}}]
            when: [{key: "request.auth.claims[org][team]", values: [core]}]
        """

    static let meshYAML = """
        extensionProviders:
        - name: checker
          envoyExtAuthzHttp:
            service: shop/checker.shop.svc.cluster.local
            port: 8000
            timeout: 3s
            pathPrefix: /check
            statusOnError: "503"
            includeRequestHeadersInCheck: [x-user, "x-trace-*"]
            includeAdditionalHeadersInCheck: {x-from: meshd}
            headersToUpstreamOnAllow: [x-verdict]
            headersToDownstreamOnDeny: [x-verdict]
            headersToDownstreamOnAllow: [x-allowed]
            includeRequestBodyInCheck: {maxRequestBytes: 1024, allowPartialMessage: true}
        - name: checker-grpc
          envoyExtAuthzGrpc: {service: checker.shop.svc.cluster.local, port: 9000, failOpen: true}
        """

    /// The providers' service.
    static let checker = """

        ---
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata: {name: checker, namespace: shop}
        spec:
          hosts: [checker.shop.svc.cluster.local]
          location: MESH_EXTERNAL
          resolution: STATIC
          ports: [{number: 8000, name: http, protocol: HTTP}, {number: 9000, name: grpc, protocol: GRPC}]
          endpoints: [{address: 127.0.0.60}]
        """

    func inbound(_ yaml: String, mesh: String = meshYAML, jwks: [String: String] = [:], port: UInt32 = 8080, checker: Bool = true) throws -> (HCM?, Envoy_Config_Listener_V3_Listener) {
        let meshConfig = try MeshTelemetry(document: try #require(try YAMLDocuments.parse(mesh, source: "mesh.yaml").first).value)
        let input = try ResourceDocuments.decode(yaml + (checker ? Self.checker : ""), source: "t.yaml").map(\.resource)
        let snapshot = MeshSnapshot(revision: 1, mesh: meshConfig, resources: input, jwks: jwks)
        let resources = try SidecarTranslator.translate(snapshot, workload: .init(namespace: "shop", name: "web-1")).resources
        expectPrintable(resources)
        let listener = try #require(resources.resources(ofType: XDSTypeURL.listener)["127.0.0.30_\(port)"]?.unpack(Envoy_Config_Listener_V3_Listener.self))
        let filter = listener.filterChains.last?.filters.first { $0.name == "envoy.filters.network.http_connection_manager" }
        return (try filter.map { try HCM(unpackingAny: $0.typedConfig) }, listener)
    }

    @Test("jwt_authn: a provider per rule sorted by issuer, keys inline (fetched, given, or a set that verifies nothing), Istio's requirement, payload in metadata, the rule's sources and outputs")
    func jwtFilter() throws {
        let (hcm, _) = try inbound(MutualTLSTranslationTests.base + Self.policies)
        let manager = try #require(hcm)
        #expect(manager.httpFilters.map(\.name) == [
            "envoy.filters.http.rbac", "envoy.filters.http.ext_authz", "envoy.filters.http.jwt_authn",
            "envoy.filters.http.rbac", "envoy.filters.http.rbac", "envoy.filters.http.router",
        ])
        let jwt = try Envoy_Extensions_Filters_Http_JwtAuthn_V3_JwtAuthentication(unpackingAny: manager.httpFilters[2].typedConfig)
        let first = try #require(jwt.providers["origins-0"])
        let second = try #require(jwt.providers["origins-1"])
        #expect(first.issuer == "https://a.example.com" && first.localJwks.inlineString == Self.keys && first.audiences == ["web"])
        #expect(first.claimToHeaders.map { "\($0.headerName)=\($0.claimName)" } == ["x-sub=sub"])
        #expect(first.payloadInMetadata == "payload" && !first.forward && first.fromHeaders.isEmpty)
        #expect(second.issuer == "https://z.example.com")
        #expect(second.fromHeaders.map { "\($0.name)|\($0.valuePrefix)" } == ["x-token|Token "] && second.fromCookies == ["session"])
        #expect(second.normalizePayloadInMetadata.spaceDelimitedClaims == ["permission", "roles", "scope"])
        #expect(JSONWebKeySet.problem(second.localJwks.inlineString) == nil, "not fetched: a key set that verifies nothing")
        #expect(second.localJwks.inlineString.contains("meshd-unfetched"))
        #expect(jwt.bypassCorsPreflight && jwt.rules.count == 1 && jwt.rules[0].match.prefix == "/")
        // Two providers: either verifies a present token; each must accept or not find it.
        let any = jwt.rules[0].requires.requiresAny.requirements
        #expect(any.count == 3 && any[0].providerName == "origins-0" && any[1].providerName == "origins-1")
        #expect(any[2].requiresAll.requirements.map { $0.requiresAny.requirements.count } == [2, 2])
        // Fetched keys are served once meshd has them.
        let (fetched, _) = try inbound(MutualTLSTranslationTests.base + Self.policies, jwks: ["https://z.example.com/keys": Self.keys])
        let served = try Envoy_Extensions_Filters_Http_JwtAuthn_V3_JwtAuthentication(unpackingAny: try #require(fetched).httpFilters[2].typedConfig)
        #expect(served.providers["origins-1"]?.localJwks.inlineString == Self.keys)
    }

    @Test("request principals and claims match the verified payload: iss and sub split at the last slash, wildcards, lists or strings, nested claims")
    func principals() throws {
        let (hcm, _) = try inbound(MutualTLSTranslationTests.base + Self.policies)
        let manager = try #require(hcm)
        let allow = try Envoy_Extensions_Filters_Http_Rbac_V3_RBAC(unpackingAny: try #require(manager.httpFilters.dropLast().last).typedConfig)
        let text = try allow.rules.jsonString()
        #expect(text.contains(#""filter":"envoy.filters.http.jwt_authn","path":[{"key":"payload"},{"key":"iss"}],"value":{"stringMatch":{"exact":"https://a.example.com"}}"#), "\(text)")
        #expect(text.contains(#""path":[{"key":"payload"},{"key":"sub"}],"value":{"stringMatch":{"exact":"alice"}}"#))
        #expect(text.contains(#""path":[{"key":"payload"},{"key":"sub"}],"value":{"stringMatch":{"exact":"mallory"}}"#) && text.contains("notId"))
        #expect(text.contains(#""path":[{"key":"payload"},{"key":"org"},{"key":"team"}],"value":{"orMatch":{"valueMatchers":[{"listMatch":{"oneOf":{"stringMatch":{"exact":"core"}}}},{"stringMatch":{"exact":"core"}}]}}"#), "\(text)")
    }

    @Test("CUSTOM: a shadow RBAC filter marks what the policy matches and ext_authz asks the provider about exactly that; every provider field reaches Envoy")
    func customHTTP() throws {
        let (hcm, _) = try inbound(MutualTLSTranslationTests.base + Self.policies)
        let manager = try #require(hcm)
        let marks = try Envoy_Extensions_Filters_Http_Rbac_V3_RBAC(unpackingAny: manager.httpFilters[0].typedConfig)
        #expect(marks.shadowRulesStatPrefix == "istio_ext_authz_" && !marks.hasRules)
        #expect(marks.shadowRules.policies.keys.sorted() == ["istio-ext-authz-ns[shop]-policy[checked]-rule[0]"])
        let authz = try Envoy_Extensions_Filters_Http_ExtAuthz_V3_ExtAuthz(unpackingAny: manager.httpFilters[1].typedConfig)
        #expect(authz.filterEnabledMetadata.filter == "envoy.filters.http.rbac")
        #expect(authz.filterEnabledMetadata.path.map(\.key) == ["istio_ext_authz_shadow_effective_policy_id"])
        #expect(authz.filterEnabledMetadata.value.stringMatch.prefix == "istio-ext-authz")
        #expect(authz.httpService.serverUri.cluster == "outbound|8000||checker.shop.svc.cluster.local")
        #expect(authz.httpService.serverUri.timeout.seconds == 3 && authz.httpService.pathPrefix == "/check")
        #expect(authz.statusOnError.code == .serviceUnavailable && !authz.failureModeAllow && authz.transportApiVersion == .v3)
        #expect(authz.allowedHeaders.patterns.map { "\($0.matchPattern!)" }.count == 2 && authz.allowedHeaders.patterns[1].prefix == "x-trace-")
        #expect(authz.httpService.authorizationRequest.headersToAdd.map { "\($0.key)=\($0.value)" } == ["x-from=meshd"])
        #expect(authz.httpService.authorizationResponse.allowedUpstreamHeaders.patterns.map(\.exact) == ["x-verdict"])
        #expect(authz.httpService.authorizationResponse.allowedClientHeaders.patterns.map(\.exact) == ["x-verdict"])
        #expect(authz.httpService.authorizationResponse.allowedClientHeadersOnSuccess.patterns.map(\.exact) == ["x-allowed"])
        #expect(authz.withRequestBody.maxRequestBytes == 1024 && authz.withRequestBody.allowPartialMessage)
    }

    @Test("CUSTOM with a gRPC provider: ext_authz over gRPC, and on a TCP port the network filters; an unknown provider or two providers deny everything; dry-run only records")
    func customGRPCAndFailures() throws {
        let grpc = MutualTLSTranslationTests.base + Self.policies.replacingOccurrences(of: "provider: {name: checker}", with: "provider: {name: checker-grpc}")
        let (hcm, _) = try inbound(grpc)
        let authz = try Envoy_Extensions_Filters_Http_ExtAuthz_V3_ExtAuthz(unpackingAny: try #require(hcm).httpFilters[1].typedConfig)
        #expect(authz.grpcService.envoyGrpc.clusterName == "outbound|9000||checker.shop.svc.cluster.local" && authz.failureModeAllow)
        #expect(authz.grpcService.timeout.seconds == 600, "Istio's default")
        let tcpPolicy = grpc.replacingOccurrences(of: #"rules: [{to: [{operation: {paths: ["/checked/*"]}}]}]"#, with: "rules: [{to: [{operation: {ports: [\"9000\"]}}]}]")
        let (_, tcp) = try inbound(tcpPolicy, port: 9000)
        let names = try #require(tcp.filterChains.last).filters.map(\.name)
        #expect(names.prefix(2) == ["envoy.filters.network.rbac", "envoy.filters.network.ext_authz"], "\(names)")
        let (_, tcpHTTPProvider) = try inbound(tcpPolicy.replacingOccurrences(of: "checker-grpc", with: "checker"), port: 9000)
        #expect(!(try #require(tcpHTTPProvider.filterChains.last).filters.map(\.name).contains("envoy.filters.network.ext_authz")), "an HTTP provider cannot judge a connection (Istio skips it)")

        for yaml in [
            Self.policies.replacingOccurrences(of: "provider: {name: checker}", with: "provider: {name: nowhere}"),
            Self.policies + "\n---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: other, namespace: shop}\nspec: {action: CUSTOM, provider: {name: checker-grpc}, rules: [{}]}",
        ] {
            let (bad, _) = try inbound(MutualTLSTranslationTests.base + yaml)
            let manager = try #require(bad)
            let deny = try Envoy_Extensions_Filters_Http_Rbac_V3_RBAC(unpackingAny: manager.httpFilters[0].typedConfig)
            #expect(deny.rules.action == .deny && deny.rules.policies.keys.sorted() == ["default-deny-all-due-to-bad-CUSTOM-action"])
            #expect(!manager.httpFilters.map(\.name).contains("envoy.filters.http.ext_authz"))
        }
        let dryRun = Self.policies.replacingOccurrences(of: "metadata: {name: checked, namespace: shop}", with: "metadata: {name: checked, namespace: shop, annotations: {istio.io/dry-run: \"true\"}}")
        let (recorded, _) = try inbound(MutualTLSTranslationTests.base + dryRun)
        let manager = try #require(recorded)
        #expect(!manager.httpFilters.map(\.name).contains("envoy.filters.http.ext_authz"))
        let shadow = try Envoy_Extensions_Filters_Http_Rbac_V3_RBAC(unpackingAny: manager.httpFilters[0].typedConfig)
        #expect(shadow.shadowRulesStatPrefix == "istio_dry_run_custom_" && !shadow.hasRules)
        #expect(manager.accessLog.contains { (try? $0.jsonString())?.contains("istio_dry_run_custom_shadow_effective_policy_id") == true })
    }

    @Test("a gateway selected by a RequestAuthentication checks tokens before its routes and chooses the route again after (clear_route_cache)")
    func gateway() throws {
        let resources = try GatewayTranslatorTests.translate("""

            ---
            apiVersion: security.istio.io/v1
            kind: RequestAuthentication
            metadata: {name: edge-jwt, namespace: istio-system}
            spec:
              selector: {matchLabels: {istio: ingressgateway}}
              jwtRules: [{issuer: "https://idp.example.com", jwks: '\(Self.keys)'}]
            """)
        let listeners = resources.resources(ofType: XDSTypeURL.listener).values.compactMap { $0.unpack(Envoy_Config_Listener_V3_Listener.self) }
        let managers = try listeners.flatMap { $0.filterChains.flatMap(\.filters) }.filter { $0.name == "envoy.filters.network.http_connection_manager" }.map { try HCM(unpackingAny: $0.typedConfig) }
        #expect(!managers.isEmpty)
        for manager in managers {
            let jwt = try #require(manager.httpFilters.first { $0.name == "envoy.filters.http.jwt_authn" })
            let config = try Envoy_Extensions_Filters_Http_JwtAuthn_V3_JwtAuthentication(unpackingAny: jwt.typedConfig)
            #expect(config.providers["origins-0"]?.clearRouteCache_p == true)
            #expect(manager.httpFilters.last?.name == "envoy.filters.http.router")
        }
    }

    @Test("review cases: iss/* and prefix* read the issuer only; a provider whose service is not in the registry denies everything and is reported; an HTTP provider on a TCP port is reported; provider fields Envoy would refuse are refused in mesh.yaml")
    func edges() throws {
        let (hcm, _) = try inbound(MutualTLSTranslationTests.base + Self.policies.replacingOccurrences(of: #"requestPrincipals: ["https://a.example.com/alice", "*"]"#, with: #"requestPrincipals: ["https://a.example.com/*", "idp*"]"#))
        let manager = try #require(hcm)
        let allow = try Envoy_Extensions_Filters_Http_Rbac_V3_RBAC(unpackingAny: try #require(manager.httpFilters.dropLast().last).typedConfig)
        let text = try allow.rules.jsonString()
        #expect(text.contains(#"{"metadata":{"filter":"envoy.filters.http.jwt_authn","path":[{"key":"payload"},{"key":"iss"}],"value":{"stringMatch":{"exact":"https://a.example.com"}}}}"#), "\(text)")
        #expect(text.contains(#"{"metadata":{"filter":"envoy.filters.http.jwt_authn","path":[{"key":"payload"},{"key":"iss"}],"value":{"stringMatch":{"prefix":"idp"}}}}"#), "\(text)")
        #expect(!text.contains(#""key":"sub""#) || text.contains("mallory"), "no subject matcher for iss/* or prefix*")

        // No service checker.shop.svc.cluster.local in the registry: deny all, and analyze says why.
        let (unknown, _) = try inbound(MutualTLSTranslationTests.base + Self.policies, checker: false)
        let unknownFilters = try #require(unknown).httpFilters
        let deny = try Envoy_Extensions_Filters_Http_Rbac_V3_RBAC(unpackingAny: unknownFilters[0].typedConfig)
        #expect(deny.rules.policies.keys.sorted() == ["default-deny-all-due-to-bad-CUSTOM-action"], "the provider's service is not in the registry")
        let meshConfig = try MeshTelemetry(document: try #require(try YAMLDocuments.parse(Self.meshYAML, source: "mesh.yaml").first).value)
        let snapshot = MeshSnapshot(revision: 1, mesh: meshConfig, resources: try ResourceDocuments.decode(MutualTLSTranslationTests.base + Self.policies, source: "t.yaml").map(\.resource))
        let warnings = ReferenceCheck.warnings(in: snapshot).values.flatMap { $0 }.map(\.description)
        #expect(warnings.contains { $0.contains("no service has host checker.shop.svc.cluster.local in namespace shop for provider checker") }, "\(warnings)")
        #expect(warnings.contains { $0.contains("provider checker is an HTTP service") && $0.contains("TCP ports 9000 of shop/web-1") }, "\(warnings)")

        for (provider, field) in [
            ("{service: a.b, port: 80, statusOnError: \"418\"}", "statusOnError"), ("{service: a.b, port: 80, pathPrefix: check}", "pathPrefix"),
            ("{service: a.b, port: 80, includeRequestBodyInCheck: {allowPartialMessage: true}}", "includeRequestBodyInCheck.maxRequestBytes"),
            ("{service: a.b, port: 80, includeRequestHeadersInCheck: [\"*\"]}", "includeRequestHeadersInCheck"), ("{port: 80}", "service"),
        ] {
            let error = try #require(throws: SchemaError.self) {
                try MeshTelemetry(document: try #require(try YAMLDocuments.parse("extensionProviders: [{name: p, envoyExtAuthzHttp: \(provider)}]", source: "mesh.yaml").first).value)
            }
            #expect(error.path.description == "extensionProviders[0].envoyExtAuthzHttp.\(field)", "\(error)")
        }
        let envoyCodes = Set(Envoy_Type_V3_StatusCode.allCases.map(\.rawValue).filter { $0 > 0 }.map(UInt32.init))
        #expect(envoyCodes == ExternalAuthorization.envoyStatusCodes)

        #expect(JSONWebKeySet.problem(#"{"keys":[{"kty":"RSA","e":"AQAB"}]}"#) == #"keys[0] (RSA) has no "n""#)
        #expect(JSONWebKeySet.problem(#"{"keys":[{"kty":"EC","crv":"P-256","x":"AA"}]}"#) == #"keys[0] (EC) has no "y""#)
        let ipv6 = try #require(JWKSLocation("https://[::1]:8443/keys?x=1"))
        #expect(ipv6.host == "::1" && ipv6.port == 8443 && ipv6.target == "/keys?x=1" && ipv6.isSecure)
    }

    @Test("refusals name the field: no issuer, a duplicate issuer, no key source, both, a bad key set, a bad URL, http without --jwks-allow-http, bad header names; CUSTOM without provider, provider without CUSTOM, bad claim keys")
    func refusals() throws {
        /// The resource's problems, then those of `settings` (what meshd checks with its flags).
        func problems(_ yaml: String, settings: MeshSettings = MeshSettings()) throws -> [String] {
            let document = try #require(try YAMLDocuments.parse(yaml, source: "t.yaml").first).value
            let kind = try #require(document["kind"].flatMap { if case .string(let name) = $0 { ResourceKind(rawValue: name) } else { nil } })
            let spec = try ResourceSpec(kind: kind, config: try #require(document["spec"]), at: FieldPath().appending("spec"))
            let resource = MeshResource(metadata: ObjectMeta(name: "t", namespace: "shop"), spec: spec)
            var found = Validation.problems(of: resource).map(\.description)
            if case .requestAuthentication(let policy) = resource.spec {
                found += settings.problems(of: policy, at: FieldPath().appending("spec")).map(\.description)
            }
            return found
        }
        let authentication = """
            apiVersion: security.istio.io/v1
            kind: RequestAuthentication
            metadata: {name: jwt, namespace: shop}
            spec:
              jwtRules:
              - {jwksUri: "https://a/keys"}
              - {issuer: x, jwks: '{"keys":[]}'}
              - {issuer: x, jwksUri: "ftp://a/keys"}
              - {issuer: y}
              - {issuer: z, jwksUri: "https://a", jwks: '{}'}
              - {issuer: w, jwksUri: "http://idp.local/keys", fromHeaders: [{name: "bad header"}], outputClaimToHeaders: [{header: ":path", claim: sub}]}
            """
        let found = try problems(authentication)
        #expect(found.contains { $0.hasPrefix("spec.jwtRules[0].issuer:") })
        #expect(found.contains { $0.hasPrefix("spec.jwtRules[1].jwks: is not a JSON Web Key Set") })
        #expect(found.contains { $0.hasPrefix("spec.jwtRules[2].issuer: issuer \"x\" has another rule") })
        #expect(found.contains { $0.hasPrefix("spec.jwtRules[2].jwksUri: \"ftp://a/keys\" is not an http(s) URL") })
        #expect(found.contains { $0.hasPrefix("spec.jwtRules[3].jwksUri: give jwksUri") })
        #expect(found.contains { $0.hasPrefix("spec.jwtRules[4].jwks: give jwksUri or jwks, not both") })
        #expect(found.contains { $0.hasPrefix("spec.jwtRules[5].fromHeaders[0].name:") })
        #expect(found.contains { $0.hasPrefix("spec.jwtRules[5].outputClaimToHeaders[0].header:") })
        #expect(found.contains { $0.hasPrefix("spec.jwtRules[5].jwksUri: keys fetched over plain http") })
        #expect(try !problems(authentication, settings: MeshSettings(jwksAllowHTTP: true)).contains { $0.contains("plain http") })
        let policy = """
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: p, namespace: shop}
            spec:
              action: CUSTOM
              rules: [{when: [{key: "request.auth.claims[a]b", values: [x]}, {key: "request.auth.claims[]", values: [x]}, {key: request.auth.type, values: [x]}]}]
            """
        let refused = try problems(policy)
        #expect(refused.contains { $0.hasPrefix("spec.provider.name: a CUSTOM policy names") })
        #expect(refused.filter { $0.contains("is not a claim") }.count == 2)
        #expect(refused.contains { $0.contains("unsupported condition key \"request.auth.type\"") })
        #expect(refused.contains { $0.hasPrefix("spec.rules[0].when[2].key: CUSTOM policies are evaluated before") })
        #expect(try problems(policy.replacingOccurrences(of: "action: CUSTOM", with: "provider: {name: x}")).contains { $0.hasPrefix("spec.provider: a provider is for action CUSTOM only") })
        #expect(JWTClaims.path(ofKey: "request.auth.claims[a][b.c]") == ["a", "b.c"])
    }
}
