/// Mesh-wide settings that are not resources.
public struct MeshSettings: Hashable, Sendable {
    /// Istio's root namespace: policies here apply to the whole mesh.
    public var rootNamespace: String
    /// The SPIFFE trust domain.
    public var trustDomain: String
    /// The DNS suffix of short names.
    public var domainSuffix: String
    /// FIPS mode (`meshd --fips`): every TLS context pins ``FIPSPolicy``'s parameters.
    public var fips: Bool
    /// Whether RequestAuthentications may name `http://` key sets (`meshd --jwks-allow-http`):
    /// keys fetched in the clear can be replaced on the way, so only `https://` is accepted unless
    /// the operator says otherwise.
    public var jwksAllowHTTP: Bool

    /// Settings; the defaults are Istio's (but for `jwksAllowHTTP`).
    public init(
        rootNamespace: String = "istio-system", trustDomain: String = "cluster.local", domainSuffix: String = HostName.defaultDomainSuffix, fips: Bool = false,
        jwksAllowHTTP: Bool = false
    ) {
        self.rootNamespace = rootNamespace
        self.trustDomain = trustDomain
        self.domainSuffix = domainSuffix
        self.fips = fips
        self.jwksAllowHTTP = jwksAllowHTTP
    }

    /// The problems of a RequestAuthentication under these settings: an `http://` key set unless
    /// allowed.
    public func problems(of policy: RequestAuthentication, at root: FieldPath) -> [SchemaError] {
        guard !jwksAllowHTTP else { return [] }
        return (policy.jwtRules ?? []).enumerated().compactMap { index, rule in
            guard let uri = rule.jwksUri, let location = JWKSLocation(uri), !location.isSecure else { return nil }
            return SchemaError(
                path: root.appending("jwtRules").appending(index: index).appending("jwksUri"),
                reason: "keys fetched over plain http can be replaced on the way; use https, or start meshd with --jwks-allow-http")
        }
    }
}
