/// Host-name rules shared by every kind that names a service.
public enum HostName {
    /// The DNS suffix of mesh-internal names: `<name>.<namespace>.svc.cluster.local`.
    public static let defaultDomainSuffix = "svc.cluster.local"

    /// Resolves a short name in `namespace` the way Istio does: a name without a dot becomes
    /// `<name>.<namespace>.<suffix>`; anything with a dot, and `*`, stays as written.
    public static func resolve(_ host: String, in namespace: String, domainSuffix: String = defaultDomainSuffix) -> String {
        if host == "*" || host.contains(".") { return host.lowercased() }
        return "\(host.lowercased()).\(namespace).\(domainSuffix)"
    }

    /// Whether `host` is a wildcard (`*` or `*.suffix`).
    public static func isWildcard(_ host: String) -> Bool {
        host == "*" || host.hasPrefix("*.")
    }

    /// Whether `host` (a concrete name) is matched by `pattern` (a concrete name or wildcard).
    public static func matches(_ host: String, pattern: String) -> Bool {
        if pattern == "*" { return true }
        if pattern.hasPrefix("*.") { return host.hasSuffix(pattern.dropFirst()) }
        return host == pattern
    }

    /// Problems with a host as written in a resource.
    public static func problems(_ host: String, at path: FieldPath, allowWildcard: Bool = true) -> [SchemaError] {
        if host.isEmpty { return [SchemaError(path: path, reason: "host must not be empty")] }
        if host == "*" {
            return allowWildcard ? [] : [SchemaError(path: path, reason: "wildcard host \"*\" is not allowed here")]
        }
        var name = Substring(host)
        if name.hasPrefix("*.") {
            guard allowWildcard else {
                return [SchemaError(path: path, reason: "wildcard host \"\(host)\" is not allowed here")]
            }
            name = name.dropFirst(2)
        }
        if IPAddress(name) != nil { return [] }
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        let valid = name.count <= 253 && labels.allSatisfy { label in
            !label.isEmpty && label.count <= 63 && label.first != "-" && label.last != "-"
                && label.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-") }
        }
        return valid ? [] : [SchemaError(path: path, reason: "\"\(host)\" is not a valid host name")]
    }
}
