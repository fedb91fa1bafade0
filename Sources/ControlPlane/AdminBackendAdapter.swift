internal import Logging
internal import MeshClient
internal import AdminAPI
internal import MeshModel
internal import MeshConfig
internal import MeshTranslation
internal import EnvoyAPI
internal import SwiftProtobuf
internal import CertificateAuthority
internal import Foundation

/// Gives the admin API its access to the control plane.
struct AdminBackendAdapter: AdminBackend {
    let controlPlane: ControlPlane

    var snapshot: MeshSnapshot { controlPlane.store.publisher.current }

    /// The service graph over the last minute (or since meshd started, if that is shorter).
    func serviceGraph() -> ServiceGraph {
        let now = controlPlane.options.clock()
        let samples = controlPlane.trafficHistory.all
        let base = samples.last { now.timeIntervalSince($0.time) >= 60 } ?? samples.first
        return ServiceGraphBuilder.graph(
            snapshot: snapshot, proxies: proxies, current: controlPlane.standardMetrics.trafficTotals(), base: base?.totals ?? [:],
            seconds: base.map { now.timeIntervalSince($0.time) } ?? 0, now: now)
    }

    /// One edge's figures over the history kept.
    func edgeSeries(id: String) -> EdgeSeries? {
        ServiceGraphBuilder.series(
            edge: id, samples: controlPlane.trafficHistory.all, current: controlPlane.standardMetrics.trafficTotals(), now: controlPlane.options.clock())
    }

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
                },
                waiting: Self.workloadID(proxy.workload).flatMap(controlPlane.rollout.note(for:)))
        }
    }

    func metricsText() -> String { controlPlane.metricsText() }

    /// `namespace/name` as a workload id.
    static func workloadID(_ text: String) -> ServiceRegistry.WorkloadID? {
        let parts = text.split(separator: "/", maxSplits: 1)
        return parts.count == 2 ? ServiceRegistry.WorkloadID(namespace: String(parts[0]), name: String(parts[1])) : nil
    }

    func authenticate(_ token: String?) -> Principal? {
        guard let token else { return nil }
        if controlPlane.adminCredential.accepts(token) { return .admin(id: "admin-token") }
        guard case .success(let record) = controlPlane.tokens.authenticate(token) else { return nil }
        switch record.effectiveRole {
        case "admin": return .admin(id: record.id)
        case "reader": return .reader(id: record.id)
        default: return .workload(id: record.id, namespace: record.namespace, serviceAccount: record.serviceAccount)
        }
    }

    func audit(who: String, action: String, target: String, result: String) {
        if !controlPlane.audit.append(who: who, action: action, target: target, result: result) {
            controlPlane.logger.error("cannot write the audit log", metadata: [
                "path": "\(controlPlane.audit.path)", "who": "\(who)", "action": "\(action)", "target": "\(target)", "result": "\(result)",
            ])
        }
    }

    func auditProblem() -> String? {
        controlPlane.audit.writeProblem()
    }

    func auditRecords() -> [AuditRecord] {
        controlPlane.audit.entries().map { AuditRecord(time: $0.time, who: $0.who, action: $0.action, target: $0.target, result: $0.result) }
    }

    func source(of key: ResourceKey) -> String? {
        controlPlane.store.source(of: key)?.description
    }

    func apply(_ change: ResourceChange, dryRun: Bool) throws(ResourceChangeError) -> MeshResource? {
        try controlPlane.store.applyAPI(change, dryRun: dryRun)
    }

    func mintToken(role: String, namespace: String?, serviceAccount: String?, workloadGroup: String?, ttl: TimeInterval?) throws -> MintedToken {
        var namespace = namespace
        var serviceAccount = serviceAccount
        if let workloadGroup {
            let template = try group(workloadGroup).template
            let account = template.serviceAccount.flatMap { $0.isEmpty ? nil : $0 } ?? "default"
            let groupNamespace = String(workloadGroup.split(separator: "/")[0])
            if let namespace, namespace != groupNamespace {
                throw APIError.invalid("namespace \(namespace) is not the WorkloadGroup's (\(groupNamespace))", field: "namespace")
            }
            if let serviceAccount, serviceAccount != account {
                throw APIError.invalid("serviceAccount \(serviceAccount) is not the WorkloadGroup's template's (\(account))", field: "serviceAccount")
            }
            namespace = groupNamespace
            serviceAccount = account
        }
        let minted = try controlPlane.tokens.mint(namespace: namespace ?? "", serviceAccount: serviceAccount ?? "", ttl: ttl, role: role, workloadGroup: workloadGroup)
        return MintedToken(
            id: minted.record.id, token: minted.token, role: role, namespace: role == "workload" ? namespace : nil,
            serviceAccount: role == "workload" ? serviceAccount : nil, expiresAt: minted.record.expiresAt, workloadGroup: workloadGroup)
    }

    /// The WorkloadGroup `namespace/name` being served, or a not-found error.
    private func group(_ reference: String) throws -> WorkloadGroup {
        let parts = reference.split(separator: "/")
        guard parts.count == 2 else { throw APIError.invalid("workloadGroup must be namespace/name, got \(reference)", field: "workloadGroup") }
        guard let group = snapshot.workloadGroups[.init(namespace: String(parts[0]), name: String(parts[1]))] else {
            throw APIError.notFound("no WorkloadGroup \(reference)")
        }
        return group.spec
    }

    func tokens() -> [TokenInfo] {
        controlPlane.tokens.all.map {
            TokenInfo(
                id: $0.id, role: $0.effectiveRole, namespace: $0.isWorkload ? $0.namespace : nil, serviceAccount: $0.isWorkload ? $0.serviceAccount : nil,
                createdAt: $0.createdAt, expiresAt: $0.expiresAt, revoked: $0.revoked, workloadGroup: $0.workloadGroup)
        }
    }

    func proxyConfig(proxyID: String) -> String? {
        guard let resources = controlPlane.provider.sessions.lastResources(proxyID: proxyID) else { return nil }
        var parts: [String] = []
        for typeURL in XDSTypeURL.pushOrder {
            let items = resources.sortedResources(ofType: typeURL).compactMap { resource -> String? in
                var body = resource.body
                if typeURL == XDSTypeURL.secret, var secret = resource.unpack(Envoy_Extensions_TransportSockets_Tls_V3_Secret.self),
                   case .tlsCertificate = secret.type, secret.tlsCertificate.privateKey.inlineString != "" || !secret.tlsCertificate.privateKey.inlineBytes.isEmpty {
                    var redacted = Envoy_Config_Core_V3_DataSource()
                    redacted.inlineString = "[redacted]"
                    secret.tlsCertificate.privateKey = redacted
                    body = Google_Protobuf_Any(deterministic: secret)
                }
                do {
                    return try EnvoyJSON.string(body)
                } catch {
                    return "{\"name\": \(ConfigJSON.encode(.string(resource.name))), \"error\": \(ConfigJSON.encode(.string("cannot print as JSON: \(error)")))}"
                }
            }
            parts.append("\"\(XDSTypeURL.shortName(typeURL))\": [\(items.joined(separator: ","))]")
        }
        return "{\"proxy\": \(ConfigJSON.encode(.string(proxyID))), " + parts.joined(separator: ", ") + "}"
    }

    func describe(workload: String) throws -> WorkloadDescription {
        let parts = workload.split(separator: "/")
        guard parts.count == 2 else { throw APIError.invalid("workload must be namespace/name, got \(workload)") }
        let snapshot = self.snapshot
        guard let instance = snapshot.registry.workload(.init(namespace: String(parts[0]), name: String(parts[1]))) else {
            throw APIError.notFound("no WorkloadEntry \(workload)")
        }
        return MeshAnalysis.describe(instance, in: snapshot)
    }

    func recordRejection(of resource: String, reason: String, message: String) {
        controlPlane.store.recordAPIRejection(of: resource, reason: reason, message: message)
    }

    func analyze() -> [AnalysisMessage] {
        MeshAnalysis.analyze(snapshot) + jwksMessages(in: snapshot) + scopeMessages(in: snapshot)
    }

    /// Workloads sent more than 10× the clusters they send requests to (MD0002).
    func scopeMessages(in snapshot: MeshSnapshot) -> [AnalysisMessage] {
        SidecarSuggestion.oversized(in: snapshot, observed: controlPlane.traffic.all).map { entry in
            AnalysisMessage(
                level: "Info", code: "MD0002", resource: "WorkloadEntry \(entry.workload)",
                message: "its proxy is sent \(entry.clusters) outbound clusters but sent requests to \(entry.used); `meshctl sidecar suggest \(entry.workload)` prints a Sidecar that imports what it uses")
        }
    }

    func sidecarSuggestion(workload: String) throws -> SidecarSuggestion.Report {
        let parts = workload.split(separator: "/", maxSplits: 1).map(String.init)
        let current = snapshot
        guard parts.count == 2,
              let suggestion = SidecarSuggestion.make(
                for: .init(namespace: parts[0], name: parts[1]), in: current, observed: controlPlane.traffic.usage(workload: workload))
        else {
            throw APIError.notFound("no workload \(workload)")
        }
        return SidecarSuggestion.Report(
            workload: suggestion.workload, hosts: suggestion.hosts, sidecar: try YAMLDocuments.write(suggestion.sidecar.configValue),
            before: suggestion.before, after: suggestion.after, observed: suggestion.observed)
    }

    /// Key sets that cannot be fetched, for every RequestAuthentication that names one (MD0001).
    func jwksMessages(in snapshot: MeshSnapshot) -> [AnalysisMessage] {
        let failing = Dictionary(controlPlane.jwks.statuses.filter { $0.lastError != nil }.map { ($0.uri, $0) }, uniquingKeysWith: { $1 })
        var messages: [AnalysisMessage] = []
        for policy in snapshot.requestAuthentications {
            for (index, rule) in (policy.spec.jwtRules ?? []).enumerated() {
                guard let uri = rule.jwksUri, let status = failing[uri] else { continue }
                let serving = status.fetchedAt.map { "the keys fetched at \(ISO8601DateFormatter().string(from: $0)) are still used" }
                    ?? "it was never fetched: requests with a token from \(rule.issuer ?? "") are refused (401), requests without one are not"
                messages.append(.init(
                    level: status.fetchedAt == nil ? "Error" : "Warning", code: "MD0001", resource: policy.key.description,
                    message: "spec.jwtRules[\(index)].jwksUri: \(uri) cannot be fetched (\(status.failures) attempts: \(status.lastError ?? "")); \(serving)"))
            }
        }
        return messages
    }

    func analyze(adding candidates: [MeshResource]) -> [AnalysisMessage] {
        let combined = snapshot.adding(candidates)
        return MeshAnalysis.analyze(combined) + jwksMessages(in: combined)
    }

    func diff(adding candidates: [MeshResource]) -> ConfigurationDiff {
        let current = snapshot
        return ConfigurationDiff.between(current, current.adding(candidates))
    }

    func simulate(_ request: RequestSimulation.Request) throws -> RequestSimulation {
        do throws(RequestSimulation.Failure) {
            return try RequestSimulation.run(snapshot, request: request)
        } catch {
            throw APIError.invalid(error.description, field: error.field)
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
        try CertificateRequests(service: controlPlane.certificates, tokens: controlPlane.tokens, clock: controlPlane.options.clock)
            .sign(csr: csr, ttlSeconds: ttlSeconds, token: token, clientCertificate: nil, path: "rest-csr")
    }

    func bootstrap(_ request: BootstrapRequest) throws -> String {
        let snapshot = snapshot
        let workload: WorkloadInstance
        var probe: ReadinessProbe? = nil
        switch (request.workload, request.workloadGroup) {
        case (let name?, nil):
            let parts = name.split(separator: "/")
            guard parts.count == 2 else { throw APIError.invalid("workload must be namespace/name, got \(name)") }
            guard let found = snapshot.registry.workload(.init(namespace: String(parts[0]), name: String(parts[1]))) else {
                throw APIError.notFound("no WorkloadEntry \(name)")
            }
            workload = found
        case (nil, let groupName?):
            let group = try group(groupName)
            guard let address = request.address, IPAddress(address) != nil else {
                throw APIError.invalid("a bootstrap for a WorkloadGroup needs the proxy's IP address (address)", field: "address")
            }
            let namespace = String(groupName.split(separator: "/")[0])
            var template = group.template
            template.address = address
            let entryName = AutoRegistration.entryName(group: String(groupName.split(separator: "/")[1]), address: address)
            workload = WorkloadInstance(entry: template, name: entryName, namespace: namespace, source: nil)
            probe = group.probe
        default:
            throw APIError.invalid("give workload (namespace/name of a WorkloadEntry) or workloadGroup and address, not both")
        }
        var xds = controlPlane.options.xdsAddress
        if let text = request.xdsAddress {
            guard let parsed = HostPort(text) else { throw APIError.invalid("xdsAddress must be host:port") }
            xds = parsed
        } else if xds.port == 0 {
            xds.port = UInt32(controlPlane.boundXDSPortNow)
        }
        if let directory = request.certificateDirectory, !directory.hasPrefix("/") {
            throw APIError.invalid("certificateDirectory must be an absolute path, got \(directory)")
        }
        if let ttl = request.tokenTTLSeconds, ttl <= 0 || ttl > 10 * 365 * 86400 {
            throw APIError.invalid("tokenTTLSeconds must be between 1 and \(10 * 365 * 86400) (10 years)")
        }
        if request.proxyless == true {
            guard let directory = request.certificateDirectory else {
                throw APIError.invalid("a proxyless bootstrap needs certificateDirectory: the application authenticates with the certificate meshctl cert renew keeps there", field: "certificateDirectory")
            }
            guard request.workloadGroup == nil else { throw APIError.invalid("proxyless gRPC applications do not register into WorkloadGroups; give workload", field: "workloadGroup") }
            let bootstrap = ProxylessBootstrap(workload: workload, xdsAddress: xds, certificateDirectory: directory, tls: controlPlane.xdsTLS != nil)
            return ConfigJSON.encode(bootstrap.configValue, pretty: true) + "\n"
        }
        var admin: HostPort? = nil
        if let text = request.adminAddress {
            guard let parsed = HostPort(text) else { throw APIError.invalid("adminAddress must be host:port") }
            admin = parsed
        }
        let minted = try controlPlane.tokens.mint(
            namespace: workload.namespace, serviceAccount: workload.serviceAccount, ttl: request.tokenTTLSeconds.map(TimeInterval.init),
            workloadGroup: request.workloadGroup)
        let builder = BootstrapBuilder(
            workload: workload, xdsAddress: xds, adminAddress: admin, trustDomain: snapshot.settings.trustDomain,
            token: minted.token, xdsTrustBundlePEM: controlPlane.xdsTLS == nil ? nil : try controlPlane.certificates.trustBundlePEM(),
            certificateDirectory: request.certificateDirectory, delta: request.delta ?? false, kind: ProxyKind.of(workload, in: snapshot),
            fips: snapshot.settings.fips,
            autoRegisterGroup: request.workloadGroup.map { String($0.split(separator: "/")[1]) }, probe: probe)
        return ConfigJSON.encode(builder.configValue, pretty: true) + "\n"
    }
}
