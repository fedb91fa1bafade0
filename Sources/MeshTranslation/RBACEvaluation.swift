internal import EnvoyAPI
internal import Foundation
internal import SwiftProtobuf

/// Envoy's RBAC decision for one request or connection, over the generated policies: what
/// `meshctl simulate` reports at the destination's inbound listener.
struct RBACEvaluation {
    /// What a policy can look at.
    struct Attributes {
        /// Request headers as the destination's sidecar sees them, lower-case names, with
        /// `:authority`, `:method` and `:path` (path with query).
        var headers: [String: String]
        /// The caller's SPIFFE ID when it connected over mTLS.
        var principal: String?
        var sourceIP: String
        var destinationIP: String
        var destinationPort: UInt32
        /// The SNI the caller sent, if it connected over TLS.
        var serverName: String?

        var path: String {
            String((headers[":path"] ?? "/").split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0])
        }
    }

    let attributes: Attributes

    /// The names of the policies of `rbac` that match, sorted (Envoy reports the first).
    func matchingPolicies(_ rbac: Envoy_Config_Rbac_V3_RBAC) -> [String] {
        rbac.policies.keys.sorted().filter { name in
            let policy = rbac.policies[name]!
            return policy.permissions.contains(where: permits) && policy.principals.contains(where: identifies)
        }
    }

    func permits(_ permission: Envoy_Config_Rbac_V3_Permission) -> Bool {
        switch permission.rule {
        case .andRules(let set): return set.rules.allSatisfy(permits)
        case .orRules(let set): return set.rules.contains(where: permits)
        case .any(let any): return any
        case .header(let header): return Self.headerMatches(header, attributes.headers)
        case .urlPath(let path): return pathMatches(path)
        case .destinationIp(let range): return Self.contains(range, attributes.destinationIP)
        case .destinationPort(let port): return port == attributes.destinationPort
        case .destinationPortRange(let range): return Int32(attributes.destinationPort) >= range.start && Int32(attributes.destinationPort) < range.end
        case .notRule(let inner): return !permits(inner)
        case .requestedServerName(let matcher): return TrafficSimulator.stringMatches(matcher, attributes.serverName ?? "")
        // Metadata (the validated JWT) is not simulated: a request carries no verified token.
        case .metadata, .sourcedMetadata, .matcher, .uriTemplate, nil: return false
        }
    }

    func identifies(_ principal: Envoy_Config_Rbac_V3_Principal) -> Bool {
        switch principal.identifier {
        case .andIds(let set): return set.ids.allSatisfy(identifies)
        case .orIds(let set): return set.ids.contains(where: identifies)
        case .any(let any): return any
        case .authenticated(let authenticated):
            guard let name = attributes.principal else { return false }
            return !authenticated.hasPrincipalName || TrafficSimulator.stringMatches(authenticated.principalName, name)
        case .sourceIp(let range), .directRemoteIp(let range), .remoteIp(let range): return Self.contains(range, attributes.sourceIP)
        case .header(let header): return Self.headerMatches(header, attributes.headers)
        case .urlPath(let path): return pathMatches(path)
        case .notID(let inner): return !identifies(inner)
        case .metadata, .sourcedMetadata, .filterState, .custom, nil: return false
        }
    }

    func pathMatches(_ matcher: Envoy_Type_Matcher_V3_PathMatcher) -> Bool {
        guard case .path(let string)? = matcher.rule else { return false }
        return TrafficSimulator.stringMatches(string, attributes.path)
    }

    /// Envoy's header matcher on a request's headers (absent headers match nothing but
    /// `present_match: false` and inverted matchers).
    static func headerMatches(_ header: Envoy_Config_Route_V3_HeaderMatcher, _ headers: [String: String]) -> Bool {
        let found = headers[header.name.lowercased()] ?? (header.treatMissingHeaderAsEmpty ? "" : nil)
        if case .presentMatch(let present)? = header.headerMatchSpecifier {
            return ((found != nil) == present) != header.invertMatch
        }
        // An absent header matches nothing else, inverted or not.
        guard let value = found else { return false }
        let ok: Bool
        switch header.headerMatchSpecifier {
        case .stringMatch(let matcher): ok = TrafficSimulator.stringMatches(matcher, value)
        case .exactMatch(let exact): ok = value == exact
        case .prefixMatch(let prefix): ok = value.hasPrefix(prefix)
        case .suffixMatch(let suffix): ok = value.hasSuffix(suffix)
        case .containsMatch(let part): ok = value.contains(part)
        case .safeRegexMatch(let regex): ok = TrafficSimulator.fullMatch(regex.regex, value)
        case .rangeMatch(let range): ok = Int64(value).map { $0 >= range.start && $0 < range.end } ?? false
        case .presentMatch, nil: ok = true
        }
        return ok != header.invertMatch
    }

    /// Whether `address` is inside `range` (IPv4 and IPv6).
    static func contains(_ range: Envoy_Config_Core_V3_CidrRange, _ address: String) -> Bool {
        guard let network = ipBytes(range.addressPrefix), let host = ipBytes(address), network.count == host.count else { return false }
        let length = range.hasPrefixLen ? Int(range.prefixLen.value) : network.count * 8
        for bit in 0..<min(length, network.count * 8) {
            let byte = bit / 8, mask = UInt8(0x80) >> UInt8(bit % 8)
            if network[byte] & mask != host[byte] & mask { return false }
        }
        return true
    }

    static func ipBytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }
}
