internal import Foundation

/// Where a RequestAuthentication's keys are fetched from: an `http` or `https` URL with a host.
public struct JWKSLocation: Hashable, Sendable {
    /// The URL as written.
    public let uri: String
    /// `https` (or `http`, which meshd fetches only when started with `--jwks-allow-http`).
    public let isSecure: Bool
    public let host: String
    public let port: Int
    /// The path and query (at least `/`).
    public let target: String

    /// The location of `uri`, or `nil` when it is not an http(s) URL with a host.
    public init?(_ uri: String) {
        guard let components = URLComponents(string: uri), let scheme = components.scheme?.lowercased(),
              scheme == "https" || scheme == "http", let host = components.host, !host.isEmpty,
              components.user == nil, components.password == nil
        else { return nil }
        self.uri = uri
        isSecure = scheme == "https"
        // An IPv6 literal without its brackets.
        self.host = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        port = components.port ?? (isSecure ? 443 : 80)
        guard (1...65535).contains(port) else { return nil }
        let path = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
        target = components.percentEncodedQuery.map { "\(path)?\($0)" } ?? path
    }
}

/// A JSON Web Key Set (RFC 7517) as text.
public enum JSONWebKeySet {
    /// Why `text` is not a key set Envoy can verify tokens with, or `nil` when it is one: a JSON
    /// object whose `keys` is a non-empty list of keys, each with a `kty` and the members its type
    /// needs (RSA `n` and `e`, EC `crv`, `x` and `y`, OKP `crv` and `x`, oct `k`).
    public static func problem(_ text: String) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            return "is not a JSON object"
        }
        guard let keys = object["keys"] as? [Any], !keys.isEmpty else {
            return "is not a JSON Web Key Set: it needs a non-empty \"keys\" list"
        }
        let members = ["RSA": ["n", "e"], "EC": ["crv", "x", "y"], "OKP": ["crv", "x"], "oct": ["k"]]
        for (index, key) in keys.enumerated() {
            guard let key = key as? [String: Any], let type = key["kty"] as? String else {
                return "keys[\(index)] is not a JSON Web Key (an object with \"kty\")"
            }
            guard let needed = members[type] else { return "keys[\(index)] has kty \"\(type)\"; Envoy verifies RSA, EC, OKP and oct keys" }
            for member in needed where ((key[member] as? String) ?? "").isEmpty {
                return "keys[\(index)] (\(type)) has no \"\(member)\""
            }
        }
        return nil
    }
}

/// The claims AuthorizationPolicy conditions name.
public enum JWTClaims {
    /// The claim names of `request.auth.claims[a][b]...` (`["a", "b"]`), or `nil` when the key is
    /// not written that way.
    public static func path(ofKey key: String) -> [String]? {
        guard key.hasPrefix("request.auth.claims[") else { return nil }
        var rest = Substring(key.dropFirst("request.auth.claims".count))
        var names: [String] = []
        while !rest.isEmpty {
            guard rest.first == "[", let close = rest.firstIndex(of: "]") else { return nil }
            let name = rest[rest.index(after: rest.startIndex)..<close]
            guard !name.isEmpty, !name.contains("[") else { return nil }
            names.append(String(name))
            rest = rest[rest.index(after: close)...]
        }
        return names.isEmpty ? nil : names
    }
}
