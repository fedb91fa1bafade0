internal import AdminAPI
internal import MeshModel
internal import MeshConfig
internal import CertificateAuthority
internal import Foundation

/// Gives the admin API its access to the control plane.
struct AdminBackendAdapter: AdminBackend {
    let controlPlane: ControlPlane

    var snapshot: MeshSnapshot { controlPlane.store.publisher.current }

    var configStatus: ConfigStatus {
        let store = controlPlane.store
        return ConfigStatus(
            revision: store.revision, resources: store.publisher.current.resources.count,
            configDirectory: controlPlane.configDirectory, rejectedChanges: store.rejectionCount,
            lastRejection: store.lastRejection.map(String.init(describing:)),
            warnings: Dictionary(uniqueKeysWithValues: store.referenceWarnings.map { ($0.key.description, $0.value.map(\.description)) }))
    }

    var proxies: [ProxyStatus] {
        controlPlane.proxyStatus.proxies.map { proxy in
            ProxyStatus(
                proxyID: proxy.proxyID, workload: proxy.workload, peer: proxy.peer,
                types: proxy.types.mapValues {
                    ProxyStatus.TypeState(state: $0.state, sentVersion: $0.sentVersion, acceptedVersion: $0.acceptedVersion, error: $0.rejection)
                })
        }
    }

    func metricsText() -> String { controlPlane.metricsText() }

    func isAdmin(_ token: String?) -> Bool { controlPlane.adminCredential.accepts(token) }

    func audit(who: String, action: String, target: String, result: String) {
        controlPlane.audit.append(who: who, action: action, target: target, result: result)
    }

    func mintToken(namespace: String, serviceAccount: String, ttl: TimeInterval?) throws -> MintedToken {
        let minted = try controlPlane.tokens.mint(namespace: namespace, serviceAccount: serviceAccount, ttl: ttl)
        return MintedToken(id: minted.record.id, token: minted.token, namespace: namespace, serviceAccount: serviceAccount, expiresAt: minted.record.expiresAt)
    }

    func tokens() -> [TokenInfo] {
        controlPlane.tokens.all.map {
            TokenInfo(id: $0.id, namespace: $0.namespace, serviceAccount: $0.serviceAccount, createdAt: $0.createdAt, expiresAt: $0.expiresAt, revoked: $0.revoked)
        }
    }

    func revokeToken(id: String) throws -> Bool { try controlPlane.tokens.revoke(id: id) }

    func caStatus() -> CertificateService.Status {
        var status = controlPlane.certificates.status
        status.rotation = controlPlane.lifecycle.rotation
        return status
    }

    func rotateRoot() throws(CAError) -> CertificateService.Status {
        try controlPlane.startRootRotation()
        return caStatus()
    }

    func trustBundlePEM() throws -> String { try controlPlane.certificates.trustBundlePEM() }

    func issuedCertificates() -> [IssuanceLedger.Entry] { controlPlane.certificates.ledger.entries() }

    func signCSR(_ csr: String, ttlSeconds: Int64, token: String?) throws(CAError) -> [String] {
        try CertificateRequests(service: controlPlane.certificates, tokens: controlPlane.tokens)
            .sign(csr: csr, ttlSeconds: ttlSeconds, token: token, clientCertificate: nil, path: "rest-csr")
    }

    func bootstrap(_ request: BootstrapRequest) throws -> String {
        let parts = request.workload.split(separator: "/")
        guard parts.count == 2 else { throw AdminRequestError(.invalid, "workload must be namespace/name, got \(request.workload)") }
        guard let workload = snapshot.registry.workload(.init(namespace: String(parts[0]), name: String(parts[1]))) else {
            throw AdminRequestError(.notFound, "no WorkloadEntry \(request.workload)")
        }
        var xds = controlPlane.options.xdsAddress
        if let text = request.xdsAddress {
            guard let parsed = HostPort(text) else { throw AdminRequestError(.invalid, "xdsAddress must be host:port") }
            xds = parsed
        } else if xds.port == 0 {
            xds.port = UInt32(controlPlane.boundXDSPortNow)
        }
        if let directory = request.certificateDirectory, !directory.hasPrefix("/") {
            throw AdminRequestError(.invalid, "certificateDirectory must be an absolute path, got \(directory)")
        }
        var admin: HostPort? = nil
        if let text = request.adminAddress {
            guard let parsed = HostPort(text) else { throw AdminRequestError(.invalid, "adminAddress must be host:port") }
            admin = parsed
        }
        let minted = try controlPlane.tokens.mint(namespace: workload.namespace, serviceAccount: workload.serviceAccount, ttl: request.tokenTTLSeconds.map(TimeInterval.init))
        let builder = BootstrapBuilder(
            workload: workload, xdsAddress: xds, adminAddress: admin, trustDomain: snapshot.settings.trustDomain,
            token: minted.token, xdsTrustBundlePEM: controlPlane.xdsTLS == nil ? nil : try controlPlane.certificates.trustBundlePEM(),
            certificateDirectory: request.certificateDirectory)
        return ConfigJSON.encode(builder.configValue, pretty: true) + "\n"
    }
}
