/// What meshd does with every field of the Istio kinds it serves: translates it, refuses it
/// whenever it is set, or translates some values and refuses the others.
///
/// A field meshd decodes but does not act on would make a user believe it works, so every field of
/// the inventory the model is generated from (`proto/istio/istio-api-fields.txt`) is listed here
/// or sits under a refused field; a test walks the inventory and fails for any field that is
/// neither. Paths start below `spec`, leave out list indices, and write `*` for the keys of a map:
/// `http.match.headers.*.exact`.
public enum FieldSupport {
    /// How meshd treats one field.
    public enum Treatment: Hashable, Sendable {
        /// meshd acts on every value.
        case translated
        /// meshd refuses the field whenever it is set, for this reason (the error users see).
        case refused(String)
        /// meshd acts on some values and refuses the others; `Validation` says which, with the
        /// field path. The text says which values are refused.
        case partly(String)
        /// A name that changes nothing, in Istio either (it only labels the thing).
        case label
    }

    /// The treatment of `path` in `kind`, if the table lists it.
    public static func treatment(of path: String, in kind: ResourceKind) -> Treatment? {
        table[kind]?[path]
    }

    /// Whether the table refuses `path` of `kind` whenever it is set.
    public static func isRefused(_ path: String, in kind: ResourceKind) -> Bool {
        if case .refused = table[kind]?[path] { return true }
        return false
    }

    /// The paths the table lists for `kind`.
    public static func paths(in kind: ResourceKind) -> [String] {
        (table[kind] ?? [:]).keys.sorted()
    }

    /// The refusals of one spec: every refused field that is set (not null), at its full path.
    public static func refusals(in spec: ConfigValue, of kind: ResourceKind, at root: FieldPath) -> [SchemaError] {
        var found: [SchemaError] = []
        for (steps, reason) in refusedSteps[kind] ?? [] {
            visit(spec, steps: steps[...], at: root) { location in
                found.append(SchemaError(path: location, reason: reason))
            }
        }
        return found.sorted { $0.path.description < $1.path.description }
    }

    /// The refused paths of each kind, split into steps once.
    private static let refusedSteps: [ResourceKind: [(steps: [String], reason: String)]] = table.mapValues { entries in
        entries.keys.sorted().compactMap { path in
            guard case .refused(let reason) = entries[path]! else { return nil }
            return (path.split(separator: ".").map(String.init), reason)
        }
    }

    /// Calls `found` for every value under `value` that `steps` lead to and that is set. Lists are
    /// crossed element by element; `*` takes every key of a map.
    private static func visit(_ value: ConfigValue, steps: ArraySlice<String>, at path: FieldPath, found: (FieldPath) -> Void) {
        guard let step = steps.first else {
            if !isUnset(value) { found(path) }
            return
        }
        if case .array(let elements) = value {
            for (index, element) in elements.enumerated() {
                visit(element, steps: steps, at: path.appending(index: index), found: found)
            }
            return
        }
        guard case .object(let object) = value else { return }
        let rest = steps.dropFirst()
        if step == "*" {
            for (key, member) in object.pairs { visit(member, steps: rest, at: path.appending(key), found: found) }
        } else if let member = object[step] {
            visit(member, steps: rest, at: path.appending(step), found: found)
        }
    }

    /// proto3's unset values: null, and the defaults of scalars and lists. An empty object is a
    /// message that is set.
    static func isUnset(_ value: ConfigValue) -> Bool {
        switch value {
        case .null: true
        case .bool(let flag): !flag
        case .int(let number): number == 0
        case .double(let number): number == 0
        case .string(let text): text.isEmpty
        case .array(let elements): elements.isEmpty
        case .object: false
        }
    }

    /// The table, by kind and path: ``translated``, then ``refused`` and ``partly`` on top.
    static let table: [ResourceKind: [String: Treatment]] = {
        var table: [ResourceKind: [String: Treatment]] = [:]
        for (kind, paths) in translated {
            for path in expand(paths.split(whereSeparator: \.isWhitespace).map(String.init)) { table[kind, default: [:]][path] = .translated }
        }
        for (kind, paths) in labels {
            for path in paths { table[kind, default: [:]][path] = .label }
        }
        for (kind, entries) in refused {
            for (path, reason) in entries { for each in expand([path]) { table[kind, default: [:]][each] = .refused(reason) } }
        }
        for (kind, entries) in partly {
            for (path, reason) in entries { for each in expand([path]) { table[kind, default: [:]][each] = .partly(reason) } }
        }
        return table
    }()

    /// A DestinationRule's traffic policy sits at four places (`<TP>`): the rule's, per port, a
    /// subset's and a subset's per port; `<TP2>` is the two that are not per port.
    private static func expand(_ paths: [String]) -> [String] {
        let everywhere = ["trafficPolicy", "trafficPolicy.portLevelSettings", "subsets.trafficPolicy", "subsets.trafficPolicy.portLevelSettings"]
        return paths.flatMap { path -> [String] in
            if path.hasPrefix("<TP>.") { return everywhere.map { $0 + path.dropFirst(4) } }
            if path.hasPrefix("<TP2>.") { return ["trafficPolicy", "subsets.trafficPolicy"].map { $0 + path.dropFirst(5) } }
            return [path]
        }
    }

    /// Fields meshd acts on whatever their value (leaves only: a message field is covered by its
    /// fields). docs/CONFIGURATION.md says how, kind by kind.
    static let translated: [ResourceKind: String] = [
        .serviceEntry: """
            hosts addresses ports.number ports.protocol ports.name ports.targetPort location endpoints.address endpoints.ports
            endpoints.labels endpoints.locality endpoints.weight endpoints.serviceAccount workloadSelector.labels exportTo subjectAltNames
            """,
        .workloadEntry: "address ports labels locality weight serviceAccount",
        .workloadGroup: """
            metadata.labels metadata.annotations template.ports template.labels template.locality template.weight
            template.serviceAccount probe.initialDelaySeconds probe.timeoutSeconds probe.periodSeconds probe.successThreshold
            probe.failureThreshold probe.httpGet.path probe.httpGet.port probe.httpGet.host
            probe.httpGet.httpHeaders.name probe.httpGet.httpHeaders.value probe.tcpSocket.host probe.tcpSocket.port probe.exec.command
            """,
        .virtualService: """
            hosts exportTo gateways http.match.gateways tcp.match.gateways
            http.name http.match.name http.match.uri.exact http.match.uri.prefix http.match.uri.regex http.match.scheme.exact
            http.match.scheme.prefix http.match.scheme.regex http.match.method.exact http.match.method.prefix http.match.method.regex
            http.match.authority.exact http.match.authority.prefix http.match.authority.regex http.match.headers.*.exact
            http.match.headers.*.prefix http.match.headers.*.regex http.match.port http.match.sourceLabels
            http.match.queryParams.*.exact http.match.queryParams.*.prefix http.match.queryParams.*.regex http.match.ignoreUriCase
            http.match.withoutHeaders.*.exact http.match.withoutHeaders.*.prefix http.match.withoutHeaders.*.regex
            http.match.sourceNamespace http.match.statPrefix
            http.route.destination.host http.route.destination.subset http.route.destination.port.number http.route.weight
            http.route.headers.request.set http.route.headers.request.add http.route.headers.request.remove
            http.route.headers.response.set http.route.headers.response.add http.route.headers.response.remove
            http.redirect.uri http.redirect.authority http.redirect.port http.redirect.scheme http.redirect.redirectCode
            http.redirect.prefixRewrite http.directResponse.status http.directResponse.body.string http.directResponse.body.bytes
            http.rewrite.uri http.rewrite.authority http.rewrite.uriRegexRewrite.match http.rewrite.uriRegexRewrite.rewrite
            http.timeout http.retries.attempts http.retries.perTryTimeout http.retries.retryOn http.retries.retryIgnorePreviousHosts
            http.retries.retryRemoteLocalities
            http.retries.backoff http.fault.delay.percent http.fault.delay.fixedDelay http.fault.delay.percentage.value
            http.fault.abort.httpStatus http.fault.abort.grpcStatus http.fault.abort.percentage.value
            http.mirror.host http.mirror.subset http.mirror.port.number http.mirrors.destination.host http.mirrors.destination.subset
            http.mirrors.destination.port.number http.mirrors.percentage.value http.mirrorPercent http.mirrorPercentage.value
            http.corsPolicy.allowOrigin http.corsPolicy.allowOrigins.exact http.corsPolicy.allowOrigins.prefix
            http.corsPolicy.allowOrigins.regex http.corsPolicy.allowMethods http.corsPolicy.allowHeaders http.corsPolicy.exposeHeaders
            http.corsPolicy.maxAge http.corsPolicy.allowCredentials http.corsPolicy.unmatchedPreflights
            http.headers.request.set http.headers.request.add http.headers.request.remove
            http.headers.response.set http.headers.response.add http.headers.response.remove
            tcp.match.port tcp.match.sourceLabels tcp.match.sourceNamespace
            tcp.route.destination.host tcp.route.destination.subset tcp.route.destination.port.number tcp.route.weight
            tls.match.sniHosts tls.match.port tls.match.sourceLabels tls.match.gateways tls.match.sourceNamespace
            tls.route.destination.host tls.route.destination.subset tls.route.destination.port.number tls.route.weight
            """,
        .destinationRule: """
            host exportTo workloadSelector.matchLabels subsets.name subsets.labels
            trafficPolicy.portLevelSettings.port.number subsets.trafficPolicy.portLevelSettings.port.number
            <TP>.loadBalancer.consistentHash.httpHeaderName <TP>.loadBalancer.consistentHash.httpCookie.name
            <TP>.loadBalancer.consistentHash.httpCookie.path <TP>.loadBalancer.consistentHash.httpCookie.ttl
            <TP>.loadBalancer.consistentHash.useSourceIp <TP>.loadBalancer.consistentHash.httpQueryParameterName
            <TP>.loadBalancer.consistentHash.ringHash.minimumRingSize <TP>.loadBalancer.consistentHash.maglev.tableSize
            <TP>.loadBalancer.consistentHash.minimumRingSize
            <TP>.loadBalancer.localityLbSetting.distribute.from <TP>.loadBalancer.localityLbSetting.distribute.to
            <TP>.loadBalancer.localityLbSetting.failover.from <TP>.loadBalancer.localityLbSetting.failover.to
            <TP>.loadBalancer.localityLbSetting.failoverPriority <TP>.loadBalancer.localityLbSetting.enabled
            <TP>.connectionPool.tcp.maxConnections <TP>.connectionPool.tcp.connectTimeout <TP>.connectionPool.tcp.tcpKeepalive.probes
            <TP>.connectionPool.tcp.tcpKeepalive.time <TP>.connectionPool.tcp.tcpKeepalive.interval
            <TP>.connectionPool.tcp.maxConnectionDuration <TP>.connectionPool.tcp.idleTimeout
            <TP>.connectionPool.http.http1MaxPendingRequests <TP>.connectionPool.http.http2MaxRequests
            <TP>.connectionPool.http.maxRequestsPerConnection <TP>.connectionPool.http.maxRetries <TP>.connectionPool.http.idleTimeout
            <TP>.connectionPool.http.h2UpgradePolicy <TP>.connectionPool.http.useClientProtocol
            <TP>.connectionPool.http.maxConcurrentStreams
            <TP>.outlierDetection.consecutiveErrors <TP>.outlierDetection.splitExternalLocalOriginErrors
            <TP>.outlierDetection.consecutiveLocalOriginFailures <TP>.outlierDetection.consecutiveGatewayErrors
            <TP>.outlierDetection.consecutive5xxErrors <TP>.outlierDetection.interval <TP>.outlierDetection.baseEjectionTime
            <TP>.outlierDetection.maxEjectionPercent <TP>.outlierDetection.minHealthPercent
            <TP>.tls.mode <TP>.tls.clientCertificate <TP>.tls.privateKey <TP>.tls.caCertificates <TP>.tls.subjectAltNames
            <TP>.tls.sni <TP>.tls.insecureSkipVerify
            """,
        .sidecar: """
            workloadSelector.labels ingress.port.number ingress.port.protocol ingress.port.name ingress.bind ingress.defaultEndpoint
            egress.port.number egress.port.protocol egress.bind egress.hosts outboundTrafficPolicy.mode
            """,
        .gateway: """
            selector servers.port.number servers.port.name servers.hosts servers.bind
            """,
        .peerAuthentication: "selector.matchLabels mtls.mode portLevelMtls.*.mode",
        .authorizationPolicy: """
            selector.matchLabels rules.from.source.principals rules.from.source.notPrincipals rules.from.source.namespaces
            rules.from.source.notNamespaces rules.from.source.serviceAccounts rules.from.source.notServiceAccounts
            rules.from.source.ipBlocks rules.from.source.notIpBlocks rules.from.source.remoteIpBlocks
            rules.from.source.notRemoteIpBlocks rules.from.source.trustDomains rules.from.source.notTrustDomains
            rules.to.operation.hosts rules.to.operation.notHosts rules.to.operation.ports rules.to.operation.notPorts
            rules.to.operation.methods rules.to.operation.notMethods rules.to.operation.paths rules.to.operation.notPaths
            rules.when.values rules.when.notValues rules.from.source.requestPrincipals rules.from.source.notRequestPrincipals
            provider.name
            """,
        .requestAuthentication: """
            selector.matchLabels jwtRules.issuer jwtRules.audiences jwtRules.jwksUri jwtRules.jwks jwtRules.fromHeaders.name
            jwtRules.fromHeaders.prefix jwtRules.fromParams jwtRules.fromCookies jwtRules.outputPayloadToHeader
            jwtRules.forwardOriginalToken jwtRules.outputClaimToHeaders.header jwtRules.outputClaimToHeaders.claim
            jwtRules.timeout jwtRules.spaceDelimitedClaims
            """,
        .telemetry: """
            selector.matchLabels tracing.match.mode tracing.providers.name tracing.randomSamplingPercentage
            tracing.disableSpanReporting tracing.customTags.*.literal.value tracing.customTags.*.environment.name
            tracing.customTags.*.environment.defaultValue tracing.customTags.*.header.name tracing.customTags.*.header.defaultValue
            metrics.providers.name metrics.overrides.match.mode metrics.overrides.disabled accessLogging.match.mode
            accessLogging.providers.name accessLogging.disabled
            """,
    ]

    /// Names that change nothing in Istio either.
    static let labels: [ResourceKind: [String]] = [
        .sidecar: ["egress.port.name"],
        .gateway: ["servers.name"],
    ]

    private static let noZoneAware = "zone-aware routing (Envoy's zone_aware_lb_config) is not supported by meshd yet; localityLbSetting is"

    /// Fields meshd refuses whenever they are set; a refused message field covers its fields.
    static let refused: [ResourceKind: [String: String]] = [
        .serviceEntry: [
            "endpoints.network": "meshd serves one network; multi-network meshes are not supported",
        ],
        .workloadEntry: [
            "network": "meshd serves one network; multi-network meshes are not supported",
        ],
        .workloadGroup: [
            "template.network": "meshd serves one network; multi-network meshes are not supported",
            "template.address": "each auto-registered WorkloadEntry takes its address from its proxy; leave it out of the template",
            "probe.grpc": "gRPC health probes are not supported by meshd yet; use httpGet, tcpSocket or exec",
        ],
        .virtualService: [
            "http.delegate": "delegate VirtualServices are not supported by meshd yet; write the routes in this VirtualService",
            "http.redirect.derivePort": "derivePort is not supported by meshd yet; give the port",
            "http.fault.delay.exponentialDelay": "exponentialDelay is not implemented by Istio's proxies either; use fixedDelay",
            "http.fault.abort.http2Error": "aborting with an HTTP/2 error is not supported by meshd yet; use httpStatus or grpcStatus",
            "tls.match.destinationSubnets": "meshd does not capture traffic, so the original destination is not known; match by SNI",
            "tcp.match.destinationSubnets": "meshd does not capture traffic, so the original destination is not known; match by port",
            "tcp.match.sourceSubnet": "not supported by meshd; match by sourceLabels or sourceNamespace",
        ],
        .destinationRule: [
            "<TP>.loadBalancer.consistentHash.httpCookie.attributes": "cookie attributes are not supported by meshd yet",
            "<TP>.loadBalancer.zoneAwareLbSetting": noZoneAware,
            "<TP>.loadBalancer.warmupDurationSecs": "slow start (warmup) is not supported by meshd yet",
            "<TP>.loadBalancer.warmup": "slow start (warmup) is not supported by meshd yet",
            "<TP>.connectionPool.http.http2KeepAlive": "HTTP/2 keepalive pings are not supported by meshd yet; tcpKeepalive is",
            "<TP>.outlierDetection.outlierDetectionHttpErrorCodes": "custom error codes for outlier detection are not supported by meshd yet",
            "<TP>.tls.credentialName": "credentials held by meshd serve gateway servers only so far; give the files: clientCertificate, privateKey, caCertificates",
            "<TP>.tls.caCrl": "certificate revocation lists are not supported by meshd yet",
            "<TP2>.tunnel": "HTTP CONNECT tunnels are not supported by meshd yet",
            "<TP2>.proxyProtocol": "the PROXY protocol is not supported by meshd yet",
            "<TP2>.retryBudget": "retry budgets are not supported by meshd yet; connectionPool.http.maxRetries is",
        ],
        .sidecar: [
            "ingress.port.targetPort": "not supported by meshd; set defaultEndpoint",
            "ingress.tls": "TLS termination on a sidecar's inbound port is not supported by meshd; PeerAuthentication decides mTLS",
            "ingress.connectionPool": "inbound connection pools are not supported by meshd yet",
            "inboundConnectionPool": "inbound connection pools are not supported by meshd yet",
            "egress.port.targetPort": "not supported by meshd; the services' ports decide",
            "outboundTrafficPolicy.egressProxy": "egress proxies are not supported by meshd yet",
        ],
        .gateway: [
            "servers.port.targetPort": "not supported by meshd; a gateway listens on the port number",
            "servers.defaultEndpoint": "defaultEndpoint applies to sidecars; a gateway forwards to services",
            "servers.tls.caCrl": "certificate revocation lists are not supported by meshd yet",
            "servers.tls.tlsCertificates": "several certificate files per server are not supported by meshd yet; give credentialNames (an RSA and an ECDSA credential) instead",
            "servers.tls.insecureSkipVerify": "not supported on a gateway server; use OPTIONAL_MUTUAL to accept clients without a certificate",
        ],
        .authorizationPolicy: [
            "targetRef": "targetRef selects Gateway API resources, which meshd does not serve; use selector",
            "targetRefs": "targetRef selects Gateway API resources, which meshd does not serve; use selector",
        ],
        .requestAuthentication: [
            "targetRef": "targetRef selects Gateway API resources, which meshd does not serve; use selector",
            "targetRefs": "targetRef selects Gateway API resources, which meshd does not serve; use selector",
        ],
        .telemetry: [
            "targetRef": "targetRef selects Kubernetes gateways; meshd selects workloads with selector",
            "targetRefs": "targetRefs select Kubernetes gateways; meshd selects workloads with selector",
            "tracing.customTags.*.formatter": "formatter tags are not supported by meshd yet; use literal, header or environment",
            "tracing.useRequestIdForTraceSampling": "not supported by meshd yet",
            "metrics.overrides.match.customMetric": "custom metrics are not supported by meshd",
            "metrics.overrides.tagOverrides": "tag overrides need Istio's stats plugin; not supported by meshd",
            "metrics.reportingInterval": "Prometheus scrapes at its own interval; not supported",
        ],
    ]

    /// Fields meshd acts on for some values and refuses for others (`Validation` names them).
    static let partly: [ResourceKind: [String: String]] = [
        .workloadGroup: [
            "probe.httpGet.scheme": "HTTPS is refused (meshd's prober speaks HTTP)",
        ],
        .serviceEntry: [
            "resolution": "DYNAMIC_DNS is refused",
            "addresses": "CIDR blocks are refused (without traffic capture no destination address selects a service); IP addresses are host names of the service",
            "ports.protocol": "UDP is refused (also when a port's name says udp)",
        ],
        .gateway: [
            "selector": "an empty or missing selector is refused (Istio would apply the Gateway to every gateway)",
            "servers.port.protocol": "protocols other than HTTP, HTTPS, HTTP2, GRPC, TCP and TLS are refused; TLS takes PASSTHROUGH only",
            "servers.tls.mode": "AUTO_PASSTHROUGH is refused",
            "servers.tls.httpsRedirect": "refused on HTTPS, TLS and TCP servers",
            "servers.tls.caCertificates": "refused where the mode checks no client certificate against it (SIMPLE, ISTIO_MUTUAL, PASSTHROUGH)",
            "servers.tls.serverCertificate": "refused in ISTIO_MUTUAL and PASSTHROUGH",
            "servers.tls.privateKey": "refused in ISTIO_MUTUAL and PASSTHROUGH",
            "servers.tls.subjectAltNames": "refused in SIMPLE and PASSTHROUGH",
            "servers.tls.verifyCertificateSpki": "refused in SIMPLE and PASSTHROUGH",
            "servers.tls.verifyCertificateHash": "refused in SIMPLE and PASSTHROUGH",
            "servers.tls.minProtocolVersion": "refused in PASSTHROUGH",
            "servers.tls.maxProtocolVersion": "refused in PASSTHROUGH",
            "servers.tls.cipherSuites": "refused in PASSTHROUGH",
            "servers.tls.credentialName": "refused in ISTIO_MUTUAL and PASSTHROUGH, beside certificate files, and when no Secret of that name is in the namespace of a gateway workload the Gateway selects",
            "servers.tls.credentialNames": "as credentialName; at most two (an RSA and an ECDSA credential), not together with credentialName",
            "servers.tls.caCertCredentialName": "refused outside MUTUAL and OPTIONAL_MUTUAL, without credentials, and when its Secret has no ca.crt",
        ],
        .virtualService: [
            "tls": "refused on VirtualServices that apply to sidecars (gateways empty or mesh): TLS routes apply to gateways",
            "http.match.gateways": "a gateway (or mesh) the VirtualService's gateways do not list is refused: the match would never apply",
            "tcp.match.gateways": "as http.match.gateways",
            "tls.match.gateways": "as http.match.gateways",
        ],
        .destinationRule: [
            "<TP>.loadBalancer.simple": "PASSTHROUGH is refused",
        ],
        .sidecar: [
            "ingress.port.protocol": "UDP is refused",
            "egress.port.protocol": "UDP is refused",
            "ingress.captureMode": "IPTABLES is refused: meshd does not capture traffic",
            "egress.captureMode": "IPTABLES is refused: meshd does not capture traffic",
        ],
        .authorizationPolicy: [
            "action": "CUSTOM without provider.name is refused (and provider without CUSTOM)",
            "rules.when.key": "keys meshd does not know are refused",
        ],
        .telemetry: [
            "tracing.enableIstioTags": "true is refused",
            "tracing.disableContextPropagation": "true is refused",
            "metrics.overrides.match.metric": "metrics other than ALL_METRICS are refused",
            "accessLogging.filter.expression": "expressions other than response.code comparisons are refused",
        ],
    ]
}
