public import MeshModel
internal import EnvoyAPI
internal import Foundation

/// What a change to the mesh would do to each proxy's Envoy configuration: meshd's translation is
/// pure, so the configuration before and after can be computed and compared exactly, before the
/// change is applied (`meshctl diff`, `meshctl apply --dry-run`, `POST /v1/diff`).
public struct ConfigurationDiff: Codable, Hashable, Sendable {
    /// One field that differs in a changed resource: its path in Envoy's JSON (proto field names,
    /// list items by `name` when they have one) and its values, `nil` when absent.
    public struct FieldChange: Codable, Hashable, Sendable {
        public var path: String
        public var before: String?
        public var after: String?
    }

    /// One resource that is added, removed or changed.
    public struct ResourceChange: Codable, Hashable, Sendable {
        /// `lds`, `rds`, `cds` or `eds`.
        public var type: String
        public var name: String
        /// `added`, `removed` or `changed`.
        public var change: String
        /// For a changed resource, the fields that differ (at most ``maximumFields``).
        public var fields: [FieldChange]
    }

    /// One proxy whose configuration would change.
    public struct Proxy: Codable, Hashable, Sendable {
        /// `namespace/name` of its workload.
        public var workload: String
        public var resources: [ResourceChange]
    }

    /// The proxies whose configuration would change, by workload.
    public var proxies: [Proxy]
    /// How many proxies would keep exactly their configuration.
    public var unchanged: Int
    /// What the change does that users most often do not mean to: proxies losing their route to a
    /// host, traffic going from mTLS to plaintext.
    public var warnings: [String]

    /// A diff from its parts.
    public init(proxies: [Proxy], unchanged: Int, warnings: [String]) {
        self.proxies = proxies
        self.unchanged = unchanged
        self.warnings = warnings
    }

    /// The most field changes listed per resource.
    public static let maximumFields = 40

    /// The configuration of every workload's proxy in `before` and in `after`, compared. When the
    /// two have different revisions, resources shared between proxies are translated once.
    public static func between(_ before: MeshSnapshot, _ after: MeshSnapshot) -> ConfigurationDiff {
        let memo = before.revision != after.revision ? TranslationMemo() : nil
        let ids = Set(before.registry.workloads.keys).union(after.registry.workloads.keys).sorted()
        var proxies: [Proxy] = []
        var unchanged = 0
        var lostRoutes: [String: [String]] = [:]
        var plaintext: [String] = []
        for id in ids {
            let old = configuration(of: id, in: before, memo: memo)
            let new = configuration(of: id, in: after, memo: memo)
            guard old != new else {
                unchanged += 1
                continue
            }
            let workload = "\(id.namespace)/\(id.name)"
            var changes: [ResourceChange] = []
            for type in [XDSTypeURL.listener, XDSTypeURL.route, XDSTypeURL.cluster, XDSTypeURL.endpoint] {
                let was = old.resources(ofType: type), now = new.resources(ofType: type)
                for name in Set(was.keys).union(now.keys).sorted() {
                    switch (was[name], now[name]) {
                    case (nil, .some):
                        changes.append(ResourceChange(type: XDSTypeURL.shortName(type), name: name, change: "added", fields: []))
                    case (.some, nil):
                        changes.append(ResourceChange(type: XDSTypeURL.shortName(type), name: name, change: "removed", fields: []))
                    case (let a?, let b?) where a.body != b.body:
                        let (fields, beforeJSON, afterJSON) = fieldChanges(a, b)
                        changes.append(ResourceChange(type: XDSTypeURL.shortName(type), name: name, change: "changed", fields: fields))
                        if type == XDSTypeURL.cluster, beforeJSON.contains("UpstreamTlsContext"), !afterJSON.contains("UpstreamTlsContext"),
                           let host = ResourceNames.parseOutboundCluster(name)?.host {
                            plaintext.append("traffic from \(workload) to \(host) changes from mTLS to plaintext")
                        }
                    default:
                        break
                    }
                }
            }
            // A host whose every cluster goes away is no longer reachable from this proxy.
            let hostsBefore = Set(old.resources(ofType: XDSTypeURL.cluster).keys.compactMap { ResourceNames.parseOutboundCluster($0)?.host })
            let hostsAfter = Set(new.resources(ofType: XDSTypeURL.cluster).keys.compactMap { ResourceNames.parseOutboundCluster($0)?.host })
            for host in hostsBefore.subtracting(hostsAfter) where after.registry.workloads[id] != nil {
                lostRoutes[host, default: []].append(workload)
            }
            proxies.append(Proxy(workload: workload, resources: changes))
        }
        var warnings = lostRoutes.keys.sorted().map { host in
            let names = lostRoutes[host]!
            return "this makes \(names.count) \(names.count == 1 ? "proxy" : "proxies") lose their route to \(host): \(names.joined(separator: ", "))"
        }
        warnings += Set(plaintext).sorted()
        return ConfigurationDiff(proxies: proxies, unchanged: unchanged, warnings: warnings)
    }

    /// The resources of a workload's proxy (a gateway's or a sidecar's), none when it is not in
    /// the mesh.
    static func configuration(of id: ServiceRegistry.WorkloadID, in snapshot: MeshSnapshot, memo: TranslationMemo?) -> XDSResourceSet {
        guard let workload = snapshot.registry.workload(id) else { return XDSResourceSet() }
        return ProxyKind.of(workload, in: snapshot) == .router
            ? GatewayTranslator.translate(snapshot, workload: workload, memo: memo).resources
            : SidecarTranslator.translate(snapshot, workload: workload, memo: memo).resources
    }

    /// The fields that differ between two versions of a resource, and both JSON texts.
    static func fieldChanges(_ before: XDSResource, _ after: XDSResource) -> ([FieldChange], String, String) {
        let beforeText = (try? EnvoyJSON.string(before.body)) ?? ""
        let afterText = (try? EnvoyJSON.string(after.body)) ?? ""
        var out: [FieldChange] = []
        compare(parse(beforeText), parse(afterText), path: "", into: &out)
        return (Array(out.prefix(maximumFields)), beforeText, afterText)
    }

    static func parse(_ text: String) -> Any? {
        try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
    }

    /// Appends the differences between two JSON values below `path`.
    static func compare(_ before: Any?, _ after: Any?, path: String, into out: inout [FieldChange]) {
        guard out.count <= maximumFields else { return }
        switch (before, after) {
        case (let a as [String: Any], let b as [String: Any]):
            for key in Set(a.keys).union(b.keys).sorted() {
                compare(a[key], b[key], path: path.isEmpty ? key : "\(path).\(key)", into: &out)
            }
        case (let a as [Any], let b as [Any]):
            let names = { (items: [Any]) -> [String]? in
                let names = items.compactMap { ($0 as? [String: Any])?["name"] as? String }
                return names.count == items.count && Set(names).count == names.count ? names : nil
            }
            if let left = names(a), let right = names(b) {
                // Items are matched by name; those left on both sides (a renamed route) are
                // matched in order, so a rename shows as the fields that changed.
                let now = Dictionary(uniqueKeysWithValues: zip(right, b))
                let was = Dictionary(uniqueKeysWithValues: zip(left, a))
                let gone = left.filter { now[$0] == nil }, new = right.filter { was[$0] == nil }
                for name in left where now[name] != nil {
                    compare(was[name], now[name], path: "\(path)[\(name)]", into: &out)
                }
                for (old, added) in zip(gone, new) {
                    compare(was[old], now[added], path: "\(path)[\(old)→\(added)]", into: &out)
                }
                for name in gone.dropFirst(new.count) { compare(was[name], nil, path: "\(path)[\(name)]", into: &out) }
                for name in new.dropFirst(gone.count) { compare(nil, now[name], path: "\(path)[\(name)]", into: &out) }
            } else if a.count == b.count {
                for index in a.indices { compare(a[index], b[index], path: "\(path)[\(index)]", into: &out) }
            } else if render(a) != render(b) {
                out.append(FieldChange(path: path, before: render(a), after: render(b)))
            }
        default:
            let left = before.map(render), right = after.map(render)
            if left != right { out.append(FieldChange(path: path, before: left, after: right)) }
        }
    }

    /// A JSON value as compact text (long values cut at 200 characters).
    static func render(_ value: Any) -> String {
        guard let data = try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed, .sortedKeys, .withoutEscapingSlashes]) else { return "\(value)" }
        let text = String(decoding: data, as: UTF8.self)
        return text.count > 200 ? String(text.prefix(200)) + "…" : text
    }
}
