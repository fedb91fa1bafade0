/// The Secrets a Gateway server's TLS names, the SDS names they travel under (Istio's:
/// `kubernetes://<name>` for the certificate and key, `kubernetes://<name>-cacert` for the CA
/// that checks clients) and how they resolve: in the gateway workload's namespace, the CA from
/// the credential's own `ca.crt` or else from a Secret `<name>-cacert`.
public enum GatewayCredentials {
    /// The SDS name of credential `name`'s certificate and key.
    public static func certificateResource(_ name: String) -> String { "kubernetes://\(name)" }
    /// The SDS name of the CA of credential `name`.
    public static func caResource(_ name: String) -> String { "kubernetes://\(name)-cacert" }

    /// The credentials a server presents: `credentialNames`, else `credentialName`.
    public static func names(_ tls: ServerTLSSettings) -> [String] {
        if let names = tls.credentialNames, !names.isEmpty { return names }
        return tls.credentialName.map { [$0] } ?? []
    }

    /// The credential whose CA checks client certificates (MUTUAL and OPTIONAL_MUTUAL with
    /// credentials): `caCertCredentialName`, else the first credential.
    public static func caName(_ tls: ServerTLSSettings) -> String? {
        guard tls.mode == .MUTUAL || tls.mode == .OPTIONAL_MUTUAL else { return nil }
        return tls.caCertCredentialName ?? names(tls).first
    }

    /// The CA certificates of credential `name`: its `ca.crt`, else Secret `<name>-cacert`'s.
    public static func caCertificates(_ name: String, lookup: (String) -> CredentialSecret?) -> [UInt8]? {
        lookup(name)?.caCertificates ?? lookup("\(name)-cacert")?.caCertificates
    }

    /// What a Gateway's credentials lack, by field path under `root` (its `spec`), with Secrets
    /// looked up by name in the gateway workload's namespace `namespace`.
    public static func problems(of gateway: Gateway, namespace: String, at root: FieldPath, lookup: (String) -> CredentialSecret?) -> [SchemaError] {
        var out: [SchemaError] = []
        for (index, server) in (gateway.servers ?? []).enumerated() {
            guard let tls = server.tls else { continue }
            let path = root.appending("servers").appending(index: index).appending("tls")
            let listed = tls.credentialNames?.isEmpty == false
            for (position, name) in names(tls).enumerated() {
                let field = listed ? path.appending("credentialNames").appending(index: position) : path.appending("credentialName")
                guard let secret = lookup(name) else {
                    out.append(SchemaError(path: field, reason: "no Secret \(namespace)/\(name) holds this credential; apply the Secret (kubernetes.io/tls, with tls.crt and tls.key) first"))
                    continue
                }
                if secret.certificateChain == nil || secret.privateKey == nil {
                    out.append(SchemaError(path: field, reason: "Secret \(namespace)/\(name) holds no certificate with its key (tls.crt and tls.key)"))
                }
            }
            if let ca = caName(tls), caCertificates(ca, lookup: lookup) == nil {
                let field = tls.caCertCredentialName != nil ? path.appending("caCertCredentialName") : (listed ? path.appending("credentialNames").appending(index: 0) : path.appending("credentialName"))
                out.append(SchemaError(path: field, reason: "\(tls.mode!.rawValue) checks client certificates: Secret \(namespace)/\(ca) has no ca.crt and there is no Secret \(namespace)/\(ca)-cacert with one"))
            }
        }
        return out
    }

    /// The credential problems of every Gateway among `resources`, by Gateway. As in Istio, a
    /// credential is looked up in the namespace of each gateway workload (WorkloadEntry) the
    /// Gateway's selector matches, which may differ from the Gateway's own; a Gateway that selects
    /// none has nothing to check (`meshctl analyze` reports its selector).
    public static func problems(in resources: [ResourceKey: MeshResource]) -> [ResourceKey: [SchemaError]] {
        var out: [ResourceKey: [SchemaError]] = [:]
        let workloads = resources.values.compactMap { resource -> (namespace: String, labels: [String: String])? in
            guard case .workloadEntry(let entry) = resource.spec else { return nil }
            return (resource.metadata.namespace, entry.labels ?? [:])
        }
        for (key, resource) in resources {
            guard case .gateway(let gateway) = resource.spec, let selector = gateway.selector, !selector.isEmpty,
                  gateway.servers?.contains(where: { $0.tls.map { !names($0).isEmpty } ?? false }) == true
            else { continue }
            let namespaces = Set(workloads.filter { workload in selector.allSatisfy { workload.labels[$0.key] == $0.value } }.map(\.namespace))
            var found: [SchemaError] = []
            for namespace in namespaces.sorted() {
                found += problems(of: gateway, namespace: namespace, at: FieldPath().appending("spec")) { name in
                    guard case .secret(let secret)? = resources[ResourceKey(kind: .secret, namespace: namespace, name: name)]?.spec else { return nil }
                    return secret
                }
            }
            if !found.isEmpty { out[key] = found }
        }
        return out
    }
}
