public import EnvoyAPI
public import MeshModel
public import MeshTranslation
internal import SwiftProtobuf
internal import Foundation

/// Which workload a connecting Envoy belongs to, read from its node.
///
/// meshd's bootstraps use Istio's node id form `sidecar~<ip>~<workload>.<namespace>~<namespace>.svc.cluster.local`
/// (`router~...` for a gateway) and also carry `NAMESPACE` and `NAME` in the node metadata; the
/// metadata wins when both are present.
public struct NodeIdentity: Hashable, Sendable {
    /// The workload (WorkloadEntry namespace and name).
    public var workload: ServiceRegistry.WorkloadID
    /// The IP from the node id, if any.
    public var address: String?
    /// The service account the node claims (`SERVICE_ACCOUNT` metadata), if any.
    public var claimedServiceAccount: String?
    /// Where the proxy's own renewal job keeps its certificate (`MESHD_CERT_DIR` metadata): meshd
    /// then serves the `default` secret as references to those files instead of making a key.
    public var certificateDirectory: String?
    /// Where the proxy's bootstrap binds upstream connections (`MESHD_UPSTREAM_BIND` metadata).
    public var upstreamBind: UpstreamBind
    /// A sidecar, a gateway (`router` as the node id's first part, as in Istio), or a proxyless
    /// gRPC client (`GENERATOR: grpc` in the node metadata).
    public var kind: ProxyKind = .sidecar
    /// The WorkloadGroup (in ``workload``'s namespace) the proxy registers into
    /// (`AUTO_REGISTER_GROUP` metadata), if any; ``workload`` is then Istio's name for its entry.
    public var autoRegisterGroup: String?
    /// The proxy's own addresses (`INSTANCE_IPS` metadata, comma-separated), first first.
    public var instanceAddresses: [String] = []
    /// The proxy's labels (`LABELS` metadata).
    public var labels: [String: String] = [:]
    /// The proxy's locality (`node.locality`) as `region/zone/subzone`, if it has one.
    public var locality: String?
    /// Whether the stream carries probe reports of the proxy's agent only (`MESHD_HEALTH_REPORTER`
    /// metadata): it is served no configuration and no certificate.
    public var isHealthReporter = false

    /// The node metadata key whose value `grpc` marks a proxyless gRPC client (Istio's).
    public static let generatorKey = "GENERATOR"
    /// The node metadata key of ``isHealthReporter``.
    public static let healthReporterKey = "MESHD_HEALTH_REPORTER"

    /// The node metadata key of ``certificateDirectory``.
    public static let certificateDirectoryKey = "MESHD_CERT_DIR"
    /// The node metadata key of ``upstreamBind``: the address the bootstrap binds upstream
    /// connections to.
    public static let upstreamBindKey = "MESHD_UPSTREAM_BIND"

    /// The node id meshd writes into a bootstrap for `workload` at `address`.
    public static func nodeID(workload: ServiceRegistry.WorkloadID, address: String, kind: ProxyKind = .sidecar) -> String {
        "\(kind.rawValue)~\(address)~\(workload.name).\(workload.namespace)~\(workload.namespace).\(HostName.defaultDomainSuffix)"
    }

    /// Reads the identity of `node`, or explains why it has none.
    public init(node: Envoy_Config_Core_V3_Node) throws(IdentityError) {
        let metadata = node.metadata.fields
        var namespace = metadata["NAMESPACE"]?.stringValue
        var name = metadata["NAME"]?.stringValue
        var address: String? = nil
        var kind = ProxyKind.sidecar
        let parts = node.id.split(separator: "~", omittingEmptySubsequences: false)
        if parts.count == 4 {
            if parts[0] == "router" { kind = .router }
            address = parts[1].isEmpty ? nil : String(parts[1])
            let podAndNamespace = parts[2]
            if let dot = podAndNamespace.lastIndex(of: ".") {
                name = name ?? String(podAndNamespace[..<dot])
                namespace = namespace ?? String(podAndNamespace[podAndNamespace.index(after: dot)...])
            }
        }
        let group = metadata[AutoRegistration.nodeMetadataKey]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
        // A registering proxy's entry is named below, from its group and address.
        if group != nil, name == nil || name!.isEmpty { name = "unregistered" }
        guard let namespace, !namespace.isEmpty, let name, !name.isEmpty else {
            throw IdentityError(message: "node id \"\(node.id)\" does not identify a workload: use sidecar~<ip>~<workload>.<namespace>~<namespace>.svc.cluster.local or set NAMESPACE and NAME in the node metadata (meshctl bootstrap does both)")
        }
        workload = ServiceRegistry.WorkloadID(namespace: namespace, name: name)
        self.address = address
        if metadata[Self.generatorKey]?.stringValue == "grpc" { kind = .proxyless }
        self.kind = kind
        claimedServiceAccount = metadata["SERVICE_ACCOUNT"]?.stringValue
        instanceAddresses = (metadata["INSTANCE_IPS"]?.stringValue ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        if case .structValue(let object)? = metadata["LABELS"]?.kind {
            labels = object.fields.compactMapValues(\.stringValue)
        }
        let localityParts = [node.locality.region, node.locality.zone, node.locality.subZone]
        if localityParts.contains(where: { !$0.isEmpty }) {
            var trimmed = localityParts
            while trimmed.last?.isEmpty == true { trimmed.removeLast() }
            locality = trimmed.joined(separator: "/")
        }
        isHealthReporter = metadata[Self.healthReporterKey]?.stringValue == "true" || metadata[Self.healthReporterKey]?.boolValue == true
        if let group {
            guard NameRules.isLabel(Substring(group)) else {
                throw IdentityError(message: "node metadata \(AutoRegistration.nodeMetadataKey) must name a WorkloadGroup, got \"\(group)\"")
            }
            guard let registered = instanceAddresses.first ?? address else {
                throw IdentityError(message: "node metadata \(AutoRegistration.nodeMetadataKey) needs the proxy's address: set INSTANCE_IPS or put it in the node id (meshctl bootstrap --workload-group does both)")
            }
            guard IPAddress(registered) != nil else {
                throw IdentityError(message: "the address of an auto-registering proxy must be an IP address, got \"\(registered)\"")
            }
            autoRegisterGroup = group
            workload = ServiceRegistry.WorkloadID(namespace: namespace, name: AutoRegistration.entryName(group: group, address: registered))
            self.address = registered
        }
        if let directory = metadata[Self.certificateDirectoryKey]?.stringValue, !directory.isEmpty {
            guard directory.hasPrefix("/") else {
                throw IdentityError(message: "node metadata \(Self.certificateDirectoryKey) must be an absolute path, got \"\(directory)\"")
            }
            certificateDirectory = directory
        }
        upstreamBind = UpstreamBind()
        if let bind = metadata[NodeIdentity.upstreamBindKey]?.stringValue, !bind.isEmpty {
            guard IPAddress(bind) != nil else {
                throw IdentityError(message: "node metadata \(NodeIdentity.upstreamBindKey) must be an IP address, got \"\(bind)\"")
            }
            upstreamBind.bootstrapAddress = bind
        }
    }

    /// Why a node could not be identified.
    public struct IdentityError: Error, Sendable {
        /// The reason.
        public var message: String
    }
}

extension Google_Protobuf_Value {
    fileprivate var stringValue: String? {
        if case .stringValue(let string) = kind { return string }
        return nil
    }

    fileprivate var boolValue: Bool? {
        if case .boolValue(let value) = kind { return value }
        return nil
    }
}
