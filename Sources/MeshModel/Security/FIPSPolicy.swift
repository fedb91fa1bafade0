/// What `meshd --fips` allows in TLS: the approved parameters of NIST SP 800-52r2 as BoringSSL's
/// FIPS 202205 compliance policy applies them — TLS 1.2 and 1.3; for TLS 1.2 only ECDHE with
/// AES-GCM; key exchange on P-256 or P-384 (no X25519). Pure: the translation pins these on every
/// TLS context and the config store refuses what asks for anything else (docs/FIPS.md).
public enum FIPSPolicy {
    /// The TLS 1.2 cipher suites allowed (OpenSSL names, as Envoy and Istio's Gateway take them).
    /// TLS 1.3 suites are not configurable in Envoy; the compliance policy limits them to AES-GCM.
    public static let tls12CipherSuites = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    ]
    /// The key-exchange groups allowed.
    public static let ecdhCurves = ["P-256", "P-384"]

    /// Why each TLS parameter a Gateway asks for is not allowed in FIPS mode, by field path under
    /// `root` (the resource's `spec`).
    public static func problems(of gateway: Gateway, at root: FieldPath) -> [SchemaError] {
        var problems: [SchemaError] = []
        for (index, server) in (gateway.servers ?? []).enumerated() {
            guard let tls = server.tls else { continue }
            let path = root.appending("servers").appending(index: index).appending("tls")
            for (field, version) in [("minProtocolVersion", tls.minProtocolVersion), ("maxProtocolVersion", tls.maxProtocolVersion)] {
                guard let version, version == .TLSV1_0 || version == .TLSV1_1 || (field == "minProtocolVersion" && version == .TLS_AUTO) else { continue }
                problems.append(SchemaError(path: path.appending(field), reason: "\(version.rawValue) is not allowed in FIPS mode (meshd --fips): TLS 1.2 or 1.3 only (TLSV1_2, TLSV1_3)"))
            }
            for (suiteIndex, suite) in (tls.cipherSuites ?? []).enumerated() where !tls12CipherSuites.contains(suite) {
                problems.append(SchemaError(
                    path: path.appending("cipherSuites").appending(index: suiteIndex),
                    reason: "\(suite) is not an approved cipher suite in FIPS mode (meshd --fips); use \(tls12CipherSuites.joined(separator: ", "))"))
            }
        }
        return problems
    }
}
