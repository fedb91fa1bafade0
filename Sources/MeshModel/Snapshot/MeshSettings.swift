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

    /// Settings; the defaults are Istio's.
    public init(rootNamespace: String = "istio-system", trustDomain: String = "cluster.local", domainSuffix: String = HostName.defaultDomainSuffix, fips: Bool = false) {
        self.rootNamespace = rootNamespace
        self.trustDomain = trustDomain
        self.domainSuffix = domainSuffix
        self.fips = fips
    }
}
