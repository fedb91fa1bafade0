internal import AdminAPI
internal import EnvoyAPI
internal import GRPCCore
internal import MeshModel
internal import Foundation

/// Whether a new xDS stream is admitted, and as whom: the admission rate, the node's identity,
/// its WorkloadEntry, and the token the stream carries (`authorization: Bearer <token>`, sent by
/// Envoy as gRPC initial metadata), which must be minted for the workload's namespace and service
/// account. A stream without a token may instead come over a connection whose client certificate
/// (issued by meshd's CA) names the workload's identity: proxyless gRPC clients, which cannot send
/// headers to their xDS server, authenticate so. Only with `allowUnauthenticated` (a development
/// flag) is a stream with neither admitted, with the identity of its WorkloadEntry.
struct ProxyAdmission: Sendable {
    /// Who was admitted.
    struct Admitted {
        var identity: NodeIdentity
        var workload: WorkloadInstance
        /// The token's id (nil when unauthenticated streams are allowed and none was sent).
        var tokenID: String?
        /// The WorkloadEntry to make for a proxy registering into a WorkloadGroup that has none
        /// yet (nil: its entry exists).
        var registration: MeshResource?
        /// Whether the workload's entry is (or is to be) auto-registered: its connections are
        /// counted, and it goes a grace period after the last one closes.
        var autoRegistered: Bool
    }

    /// New streams per second (nil: no limit).
    let rate: RateLimiter?
    let tokens: TokenAuthority?
    /// meshd's admin token, refused on ADS as the other admin-API tokens are (PERMISSION_DENIED).
    let adminCredential: AdminCredential?
    let allowUnauthenticated: Bool
    /// The name meshd writes as the controller of the entries it registers.
    var controller = "meshd"

    /// Admits `node` against the mesh in `snapshot`, or says why not. A proxy naming a
    /// WorkloadGroup (`AUTO_REGISTER_GROUP`) without an entry yet is admitted against the group's
    /// template, with the entry to make.
    /// `rated`: the stream counts against the admission rate (xDS streams do; the load report
    /// stream each proxy opens beside its xDS stream does not).
    /// `certified`: the identity the connection's client certificate proves, if any.
    func admit(
        node: Envoy_Config_Core_V3_Node, metadata: Metadata, snapshot: MeshSnapshot, certified: SpiffeID? = nil, rated: Bool = true, now: Date = Date()
    ) throws(RPCError) -> Admitted {
        if rated, let rate, !rate.allow("xds") {
            throw RPCError(code: .resourceExhausted, message: "too many new xDS streams at once; retry with back-off")
        }
        let identity: NodeIdentity
        do {
            identity = try NodeIdentity(node: node)
        } catch {
            throw RPCError(code: .invalidArgument, message: error.message)
        }
        if let workload = snapshot.registry.workload(identity.workload) {
            let tokenID = try authorize(identity: identity, workload: workload, metadata: metadata, certified: certified)
            let stored = snapshot.resources[ResourceKey(kind: .workloadEntry, namespace: workload.namespace, name: workload.name)]
            return Admitted(identity: identity, workload: workload, tokenID: tokenID, registration: nil, autoRegistered: stored?.autoRegistrationGroup != nil)
        }
        guard let groupName = identity.autoRegisterGroup else {
            throw RPCError(code: .notFound, message: "no WorkloadEntry \(identity.workload) in the mesh configuration (node \(node.id)); add one, fix the node id, or register into a WorkloadGroup (meshctl bootstrap --workload-group)")
        }
        let groupID = ServiceRegistry.WorkloadID(namespace: identity.workload.namespace, name: groupName)
        guard let group = snapshot.workloadGroups[groupID] else {
            throw RPCError(code: .notFound, message: "no WorkloadGroup \(groupID) to register node \(node.id) into")
        }
        let entry = AutoRegistration.entry(for: identity, group: group, now: now, controller: controller)
        guard case .workloadEntry(let spec) = entry.spec else { preconditionFailure("an auto-registered entry is a WorkloadEntry") }
        let workload = WorkloadInstance(entry: spec, name: entry.metadata.name, namespace: entry.metadata.namespace, source: entry.key)
        let tokenID = try authorize(identity: identity, workload: workload, metadata: metadata, certified: certified)
        return Admitted(identity: identity, workload: workload, tokenID: tokenID, registration: entry, autoRegistered: true)
    }

    /// Checks the stream's token (else its client certificate) against the node; returns the
    /// token id (nil for a certificate, or when unauthenticated streams are allowed and neither
    /// was sent).
    private func authorize(identity: NodeIdentity, workload: WorkloadInstance, metadata: Metadata, certified: SpiffeID?) throws(RPCError) -> String? {
        let header = metadata[stringValues: "authorization"].first { _ in true }
        guard let token = TokenAuthority.bearer(header) else {
            if let certified {
                guard certified.namespace == workload.namespace, certified.serviceAccount == workload.serviceAccount else {
                    throw RPCError(code: .permissionDenied, message: "the client certificate is for \(certified.uri), but workload \(identity.workload) runs as \(workload.namespace)/\(workload.serviceAccount)")
                }
                if let claimed = identity.claimedServiceAccount, claimed != certified.serviceAccount {
                    throw RPCError(code: .permissionDenied, message: "node metadata SERVICE_ACCOUNT \(claimed) disagrees with the client certificate (\(certified.uri))")
                }
                return nil
            }
            if allowUnauthenticated { return nil }
            throw RPCError(code: .unauthenticated, message: "no token: send `authorization: Bearer <token>` (meshctl token create, or meshctl bootstrap which embeds one), or connect with the workload's certificate")
        }
        guard let tokens else { throw RPCError(code: .unauthenticated, message: "tokens are not enabled") }
        let record: TokenAuthority.Record
        switch tokens.authenticate(token) {
        case .success(let found): record = found
        case .failure(.unknown) where adminCredential?.accepts(token) == true:
            throw RPCError(code: .permissionDenied, message: "the admin token is for the admin API, not a workload token")
        case .failure(.unknown): throw RPCError(code: .unauthenticated, message: "unknown token")
        case .failure(.revoked(let id)): throw RPCError(code: .unauthenticated, message: "token \(id) was revoked")
        case .failure(.expired(let id)): throw RPCError(code: .unauthenticated, message: "token \(id) has expired")
        }
        guard record.isWorkload else {
            throw RPCError(code: .permissionDenied, message: "token \(record.id) is a \(record.effectiveRole) token for the admin API, not a workload token")
        }
        guard record.namespace == workload.namespace, record.serviceAccount == workload.serviceAccount else {
            throw RPCError(code: .permissionDenied, message: "token \(record.id) is for \(record.namespace)/\(record.serviceAccount), but workload \(identity.workload) runs as \(workload.namespace)/\(workload.serviceAccount)")
        }
        if let scope = record.workloadGroup {
            let registering = identity.autoRegisterGroup.map { "\(identity.workload.namespace)/\($0)" }
            guard registering == scope else {
                throw RPCError(code: .permissionDenied, message: "token \(record.id) admits only proxies registering into WorkloadGroup \(scope), not \(registering.map { "into \($0)" } ?? "workload \(identity.workload)")")
            }
        }
        if let claimed = identity.claimedServiceAccount, claimed != record.serviceAccount {
            throw RPCError(code: .permissionDenied, message: "node metadata SERVICE_ACCOUNT \(claimed) disagrees with token \(record.id) (\(record.serviceAccount))")
        }
        return record.id
    }
}
