public import EnvoyAPI
public import MeshModel
internal import SwiftProtobuf

/// Who and what an access log entry is about, in Istio's standard metric labels: meshd's
/// registry stands in for Istio's peer metadata exchange. The reporting proxy is known from its
/// stream; the other side is found by address (every sidecar binds its upstream connections to
/// its workload's address) and checked against the peer certificate when there is one; the
/// service comes from the cluster name (`outbound|<port>|<subset>|<host>`) or, on the server
/// side, from the services that select the workload on that port.
///
/// Pure: built once per snapshot; the labels of an entry depend on the entry and the snapshot
/// only.
public struct MetricsAttribution: Sendable {
    /// The value Istio gives a label it cannot know.
    public static let unknown = "unknown"

    /// Label names of the request metrics, in the order ``Labels/values`` holds them.
    public static let requestLabelNames = [
        "reporter",
        "source_workload", "source_workload_namespace", "source_principal", "source_app", "source_version",
        "source_canonical_service", "source_canonical_revision",
        "destination_workload", "destination_workload_namespace", "destination_principal", "destination_app", "destination_version",
        "destination_canonical_service", "destination_canonical_revision",
        "destination_service", "destination_service_name", "destination_service_namespace",
        "request_protocol", "response_flags", "connection_security_policy",
        "response_code", "grpc_response_status",
    ]
    /// Label names of the TCP metrics: the request metrics' without the response's.
    public static let tcpLabelNames = Array(requestLabelNames.dropLast(2))

    /// One entry's labels: values in the order of ``requestLabelNames`` (HTTP) or
    /// ``tcpLabelNames`` (TCP).
    public struct Labels: Hashable, Sendable {
        /// The values.
        public var values: [String]

        /// Labels with `values`.
        public init(values: [String]) {
            self.values = values
        }

        /// The value of label `name`.
        public subscript(name: String) -> String? {
            Self.positions[name].flatMap { $0 < values.count ? values[$0] : nil }
        }

        private static let positions = Dictionary(uniqueKeysWithValues: requestLabelNames.enumerated().map { ($1, $0) })
    }

    /// What a proxy reports about one side of a connection that does not depend on the request
    /// (everything but the protocol, the response and its flags): computed once per connection
    /// and kept by the caller (``ConnectionKey``).
    public struct ConnectionLabels: Hashable, Sendable {
        /// `reporter` through `destination_canonical_revision`.
        var values: [String]
        /// `connection_security_policy`: `mutual_tls` or `none` as the server saw the connection;
        /// `unknown` on the client side, as Istio reports it.
        var security: String
    }

    /// The parts of an entry its ``ConnectionLabels`` depend on.
    public struct ConnectionKey: Hashable, Sendable {
        var reporter: MetricsReporting.Reporter
        var proxy: ServiceRegistry.WorkloadID
        var cluster: String
        var peerAddress: String
        var peerPrincipal: String
        var localPrincipal: String
        var authorityHost: String
        var localPort: UInt32
    }

    /// The snapshot it reads.
    public let snapshot: MeshSnapshot
    private let byAddress: [String: [WorkloadInstance]]
    private let rules: DestinationRuleIndex

    /// The attribution of entries in `snapshot`'s mesh.
    public init(snapshot: MeshSnapshot) {
        self.snapshot = snapshot
        var byAddress: [String: [WorkloadInstance]] = [:]
        for workload in snapshot.registry.workloads.values.sorted(by: { ($0.namespace, $0.name) < ($1.namespace, $1.name) }) {
            byAddress[workload.address, default: []].append(workload)
        }
        self.byAddress = byAddress
        rules = DestinationRuleIndex(snapshot: snapshot)
    }

    /// The revision of the snapshot it reads.
    public var revision: UInt64 { snapshot.revision }

    // MARK: Entries

    /// The key of an HTTP entry's connection labels.
    public static func connectionKey(
        _ entry: Envoy_Data_Accesslog_V3_HTTPAccessLogEntry, reporter: MetricsReporting.Reporter, proxy: ServiceRegistry.WorkloadID
    ) -> ConnectionKey {
        connectionKey(entry.commonProperties, reporter: reporter, proxy: proxy, authority: entry.request.authority)
    }

    /// The key of a TCP entry's connection labels.
    public static func connectionKey(
        _ entry: Envoy_Data_Accesslog_V3_TCPAccessLogEntry, reporter: MetricsReporting.Reporter, proxy: ServiceRegistry.WorkloadID
    ) -> ConnectionKey {
        connectionKey(entry.commonProperties, reporter: reporter, proxy: proxy, authority: "")
    }

    private static func connectionKey(
        _ common: Envoy_Data_Accesslog_V3_AccessLogCommon, reporter: MetricsReporting.Reporter, proxy: ServiceRegistry.WorkloadID, authority: String
    ) -> ConnectionKey {
        let peer = reporter == .source ? common.upstreamRemoteAddress : common.downstreamRemoteAddress
        let tls = common.tlsProperties
        return ConnectionKey(
            reporter: reporter, proxy: proxy, cluster: common.upstreamCluster, peerAddress: peer.socketAddress.address,
            peerPrincipal: reporter == .destination ? tls.peerCertificateProperties.subjectAltName.first { !$0.uri.isEmpty }?.uri ?? "" : "",
            localPrincipal: reporter == .destination ? tls.localCertificateProperties.subjectAltName.first { !$0.uri.isEmpty }?.uri ?? "" : "",
            authorityHost: Self.host(ofAuthority: authority),
            localPort: reporter == .destination ? common.downstreamLocalAddress.socketAddress.portValue : 0)
    }

    /// The labels of an HTTP entry, given its connection labels.
    public static func labels(_ entry: Envoy_Data_Accesslog_V3_HTTPAccessLogEntry, connection: ConnectionLabels) -> Labels {
        let contentType = entry.request.requestHeaders["content-type"] ?? ""
        let grpc = contentType.hasPrefix("application/grpc")
        let status = entry.response.responseTrailers["grpc-status"] ?? entry.response.responseHeaders["grpc-status"] ?? ""
        var values = connection.values
        values.append(grpc ? "grpc" : "http")
        values.append(responseFlags(entry.commonProperties.responseFlags))
        values.append(connection.security)
        values.append(String(entry.response.hasResponseCode ? entry.response.responseCode.value : 0))
        values.append(status)
        return Labels(values: values)
    }

    /// The labels of a TCP entry, given its connection labels.
    public static func labels(_ entry: Envoy_Data_Accesslog_V3_TCPAccessLogEntry, connection: ConnectionLabels) -> Labels {
        var values = connection.values
        values.append("tcp")
        values.append(responseFlags(entry.commonProperties.responseFlags))
        values.append(connection.security)
        return Labels(values: values)
    }

    /// The connection labels of `key`, reported by `proxy`.
    public func connectionLabels(_ key: ConnectionKey, proxy: WorkloadInstance) -> ConnectionLabels {
        let trustDomain = snapshot.settings.trustDomain
        var source: WorkloadInstance?
        var destination: WorkloadInstance?
        var service: (host: String, name: String, namespace: String) = (Self.unknown, Self.unknown, Self.unknown)
        var sourcePrincipal = Self.unknown
        var destinationPrincipal = Self.unknown
        var security = Self.unknown
        switch key.reporter {
        case .source:
            source = proxy
            let peers = byAddress[key.peerAddress] ?? []
            if let parsed = Self.outboundCluster(key.cluster) {
                if let found = snapshot.registry.service(hostname: parsed.host, visibleFrom: proxy.namespace) {
                    service = (found.hostname, Self.shortName(found), found.namespace)
                    let members = snapshot.registry.instances(of: found)
                    destination = peers.first { peer in members.contains { $0.name == peer.name && $0.namespace == peer.namespace } }
                    if let destination, let port = found.ports.first(where: { $0.number == parsed.port }),
                       usesMutualTLS(client: proxy, service: found, port: port, subset: parsed.subset, endpoint: destination) {
                        sourcePrincipal = proxy.identity(trustDomain: trustDomain).uri
                        destinationPrincipal = destination.identity(trustDomain: trustDomain).uri
                    }
                } else {
                    service = (parsed.host, parsed.host, Self.unknown)
                }
            } else if key.cluster.isEmpty, let found = requestedService(authority: key.authorityHost, client: proxy) {
                // Answered before any cluster was picked (a fault's abort, a direct response): the
                // service the request was for.
                service = (found.hostname, Self.shortName(found), found.namespace)
            } else {
                // PassthroughCluster, BlackHoleCluster and the like: the cluster is the service's name.
                service = (key.authorityHost.isEmpty ? Self.unknown : key.authorityHost, key.cluster.isEmpty ? Self.unknown : key.cluster, Self.unknown)
                destination = peers.first
            }
        case .destination:
            destination = proxy
            security = key.peerPrincipal.isEmpty ? "none" : "mutual_tls"
            if !key.peerPrincipal.isEmpty { sourcePrincipal = key.peerPrincipal }
            if !key.localPrincipal.isEmpty { destinationPrincipal = key.localPrincipal }
            // The caller by address; over mTLS only if its certificate names the same identity.
            source = (byAddress[key.peerAddress] ?? []).first { peer in
                key.peerPrincipal.isEmpty || peer.identity(trustDomain: trustDomain).uri == key.peerPrincipal
            }
            let served = snapshot.registry.services(servedBy: proxy).filter { candidate in
                candidate.ports.contains { proxy.endpointPort(for: $0) == key.localPort }
            }
            let named = served.first { candidate in
                candidate.hostname == key.authorityHost || candidate.hostname.hasPrefix(key.authorityHost + ".")
            }
            if let found = named ?? served.first {
                service = (found.hostname, Self.shortName(found), found.namespace)
            }
        }
        var values = [key.reporter.rawValue]
        values += Self.workloadLabels(source, principal: sourcePrincipal)
        values += Self.workloadLabels(destination, principal: destinationPrincipal)
        values += [service.host, service.name, service.namespace]
        return ConnectionLabels(values: values, security: security)
    }

    // MARK: Helpers

    /// The service a request's host names from `client`'s namespace, in Istio's forms (`name`,
    /// `name.namespace`, `name.namespace.svc`, the full name).
    func requestedService(authority host: String, client: WorkloadInstance) -> MeshService? {
        guard !host.isEmpty else { return nil }
        let suffix = snapshot.settings.domainSuffix
        let clusterDomain = suffix.hasPrefix("svc.") ? String(suffix.dropFirst(4)) : suffix
        let candidates = [
            HostName.resolve(host, in: client.namespace, domainSuffix: suffix),
            "\(host).\(clusterDomain)",
            "\(host).svc.\(clusterDomain)",
        ]
        for candidate in candidates {
            if let found = snapshot.registry.service(hostname: candidate, visibleFrom: client.namespace) { return found }
        }
        return nil
    }

    /// Whether `client`'s proxy sends mutual TLS to `endpoint` of `service`: the DestinationRule's
    /// `tls` if it has one (`ISTIO_MUTUAL`), else auto mTLS (the endpoint runs a sidecar whose
    /// PeerAuthentication accepts it), as the cluster's transport socket decides.
    func usesMutualTLS(client: WorkloadInstance, service: MeshService, port: MeshService.Port, subset: String, endpoint: WorkloadInstance) -> Bool {
        let rule = rules.rule(for: service, proxy: client)
        if let tls = EffectivePolicy(rule: rule?.spec, port: port.number, subset: subset.isEmpty ? nil : subset).tls {
            return tls.mode == .ISTIO_MUTUAL
        }
        return service.location == .MESH_INTERNAL && endpoint.hasSidecar
            && PeerAuthenticationPolicy(workload: endpoint, snapshot: snapshot).clientsUseTLS(port: endpoint.endpointPort(for: port))
    }

    /// `workload`, `workload_namespace`, `principal`, `app`, `version`, `canonical_service` and
    /// `canonical_revision` of one side.
    static func workloadLabels(_ workload: WorkloadInstance?, principal: String) -> [String] {
        guard let workload else { return [unknown, unknown, principal, unknown, unknown, unknown, unknown] }
        return [
            workload.name, workload.namespace, principal, workload.labels["app"] ?? unknown, workload.labels["version"] ?? unknown,
            canonicalService(workload), canonicalRevision(workload),
        ]
    }

    /// Istio's canonical service of a workload: its `service.istio.io/canonical-name` label, else
    /// `app.kubernetes.io/name`, else `app`, else its name.
    static func canonicalService(_ workload: WorkloadInstance) -> String {
        workload.labels["service.istio.io/canonical-name"] ?? workload.labels["app.kubernetes.io/name"] ?? workload.labels["app"] ?? workload.name
    }

    /// Istio's canonical revision: `service.istio.io/canonical-revision`, else
    /// `app.kubernetes.io/version`, else `version`, else `latest`.
    static func canonicalRevision(_ workload: WorkloadInstance) -> String {
        workload.labels["service.istio.io/canonical-revision"] ?? workload.labels["app.kubernetes.io/version"] ?? workload.labels["version"] ?? "latest"
    }

    /// A service's short name: its host's first label inside the mesh's domain, else the host.
    static func shortName(_ service: MeshService) -> String {
        let labels = service.hostname.split(separator: ".", omittingEmptySubsequences: false)
        if labels.count > 3, labels[1] == service.namespace, labels[2] == "svc" { return String(labels[0]) }
        return service.hostname
    }

    /// Port, subset and host of an outbound cluster name.
    static func outboundCluster(_ name: String) -> (port: UInt32, subset: String, host: String)? {
        let parts = name.split(separator: "|", maxSplits: 3, omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "outbound", let port = UInt32(parts[1]) else { return nil }
        return (port, String(parts[2]), String(parts[3]))
    }

    /// An authority without its port.
    static func host(ofAuthority authority: String) -> String {
        if authority.hasPrefix("[") { return String(authority.prefix { $0 != "]" }.dropFirst()) }
        return String(authority.prefix { $0 != ":" })
    }

    /// Envoy's short response flags (`%RESPONSE_FLAGS%`), comma-separated in Envoy's order; `-`
    /// for none.
    static func responseFlags(_ flags: Envoy_Data_Accesslog_V3_ResponseFlags) -> String {
        let set: [(Bool, String)] = [
            (flags.failedLocalHealthcheck, "LH"), (flags.noHealthyUpstream, "UH"), (flags.upstreamRequestTimeout, "UT"),
            (flags.localReset, "LR"), (flags.upstreamRemoteReset, "UR"), (flags.upstreamConnectionFailure, "UF"),
            (flags.upstreamConnectionTermination, "UC"), (flags.upstreamOverflow, "UO"), (flags.noRouteFound, "NR"),
            (flags.delayInjected, "DI"), (flags.faultInjected, "FI"), (flags.rateLimited, "RL"), (flags.hasUnauthorizedDetails, "UAEX"),
            (flags.rateLimitServiceError, "RLSE"), (flags.downstreamConnectionTermination, "DC"), (flags.upstreamRetryLimitExceeded, "URX"),
            (flags.streamIdleTimeout, "SI"), (flags.invalidEnvoyRequestHeaders, "IH"), (flags.downstreamProtocolError, "DPE"),
            (flags.upstreamMaxStreamDurationReached, "UMSDR"), (flags.responseFromCacheFilter, "RFCF"), (flags.noFilterConfigFound, "NFCF"),
            (flags.durationTimeout, "DT"), (flags.upstreamProtocolError, "UPE"), (flags.noClusterFound, "NC"), (flags.overloadManager, "OM"),
            (flags.dnsResolutionFailure, "DF"), (flags.downstreamRemoteReset, "DR"),
        ]
        let names = set.filter(\.0).map(\.1)
        return names.isEmpty ? "-" : names.joined(separator: ",")
    }
}
