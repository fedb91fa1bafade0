extension Checker {
    mutating func check(_ entry: ServiceEntry) {
        let hostsPath = root.appending("hosts")
        if entry.hosts.isEmpty { fail(hostsPath, "at least one host is required") }
        let resolution = entry.resolution ?? .NONE
        if resolution == .DYNAMIC_DNS {
            fail(root.appending("resolution"), "DYNAMIC_DNS is not supported by meshd yet; use DNS, DNS_ROUND_ROBIN or STATIC")
        }
        for (index, host) in entry.hosts.enumerated() {
            add(HostName.problems(host, at: hostsPath.appending(index: index)))
            if HostName.isWildcard(host) && (resolution == .DNS || resolution == .DNS_ROUND_ROBIN) {
                fail(hostsPath.appending(index: index), "wildcard host \"\(host)\" cannot use resolution \(resolution.rawValue)")
            }
        }
        for (index, address) in (entry.addresses ?? []).enumerated() {
            if CIDRBlock(address) == nil {
                fail(root.appending("addresses").appending(index: index), "\"\(address)\" is not an IP address or CIDR block")
            } else if address.contains("/") {
                fail(root.appending("addresses").appending(index: index), "a CIDR block selects traffic by its destination address, which meshd's sidecars do not see (they capture nothing); give the service's IP addresses, which requests may name as their host")
            }
        }
        let portsPath = root.appending("ports")
        let ports = entry.ports ?? []
        unique(ports.map(\.name), at: portsPath, what: "port name")
        unique(ports.map { String($0.number) }, at: portsPath, what: "port number")
        for (index, servicePort) in ports.enumerated() {
            let path = portsPath.appending(index: index)
            port(servicePort.number, at: path.appending("number"))
            port(servicePort.targetPort, at: path.appending("targetPort"), allowZero: true)
            if servicePort.name.isEmpty { fail(path.appending("name"), "port name must not be empty") }
            knownProtocol(servicePort.protocol, name: servicePort.name, at: path)
        }
        if entry.workloadSelector != nil && !(entry.endpoints ?? []).isEmpty {
            fail(root.appending("workloadSelector"), "workloadSelector and endpoints cannot both be set")
        }
        let portNames = Set(ports.map(\.name))
        for (index, endpoint) in (entry.endpoints ?? []).enumerated() {
            let path = root.appending("endpoints").appending(index: index)
            check(endpoint, at: path, requireIP: resolution == .STATIC || resolution == .NONE)
            for name in (endpoint.ports ?? [:]).keys where !portNames.contains(name) {
                fail(path.appending("ports").appending(name), "no port named \"\(name)\" in this ServiceEntry")
            }
        }
        labels(entry.workloadSelector?.labels, at: root.appending("workloadSelector").appending("labels"))
        exportTo(entry.exportTo)
    }

    mutating func check(_ entry: WorkloadEntry, at path: FieldPath, requireIP: Bool = true, template: Bool = false) {
        let addressPath = path.appending("address")
        if template {
            if let address = entry.address, !address.isEmpty {
                fail(addressPath, "each auto-registered WorkloadEntry takes its address from its proxy; leave it out of the template")
            }
        } else if let address = entry.address, !address.isEmpty {
            if !address.hasPrefix("unix://"), IPAddress(address) == nil {
                if requireIP {
                    fail(addressPath, "\"\(address)\" is not an IP address")
                } else {
                    add(HostName.problems(address, at: addressPath, allowWildcard: false))
                }
            }
        } else {
            fail(addressPath, "an address is required: meshd sends traffic for this workload to it")
        }
        for (name, number) in entry.ports ?? [:] {
            port(number, at: path.appending("ports").appending(name))
        }
        labels(entry.labels, at: path.appending("labels"))
        if let account = entry.serviceAccount, !account.isEmpty {
            add(NameRules.problems(name: account, at: path.appending("serviceAccount")))
        }
    }

    /// Istio's rules for a WorkloadGroup: a template without an address, labels that are labels,
    /// and a probe with exactly one method.
    mutating func check(_ group: WorkloadGroup) {
        labels(group.metadata?.labels, at: root.appending("metadata").appending("labels"))
        check(group.template, at: root.appending("template"), template: true)
        guard let probe = group.probe else { return }
        let path = root.appending("probe")
        let methods = [probe.httpGet != nil, probe.tcpSocket != nil, probe.exec != nil, probe.grpc != nil].filter { $0 }.count
        if methods == 0 { fail(path, "a probe needs one of httpGet, tcpSocket or exec") }
        for (name, value) in [
            ("initialDelaySeconds", probe.initialDelaySeconds), ("timeoutSeconds", probe.timeoutSeconds), ("periodSeconds", probe.periodSeconds),
            ("successThreshold", probe.successThreshold), ("failureThreshold", probe.failureThreshold),
        ] {
            nonNegative(value, at: path.appending(name))
        }
        if let http = probe.httpGet {
            port(http.port, at: path.appending("httpGet").appending("port"))
            if let scheme = http.scheme, !scheme.isEmpty, scheme.uppercased() != "HTTP" {
                fail(path.appending("httpGet").appending("scheme"), "meshd's prober speaks HTTP only; probe an HTTP port (or use tcpSocket)")
            }
            if let probePath = http.path, !probePath.isEmpty, !probePath.hasPrefix("/") {
                fail(path.appending("httpGet").appending("path"), "the path must start with /")
            }
            for (index, header) in (http.httpHeaders ?? []).enumerated() where (header.name ?? "").isEmpty {
                fail(path.appending("httpGet").appending("httpHeaders").appending(index: index).appending("name"), "a header needs a name")
            }
        }
        if let tcp = probe.tcpSocket { port(tcp.port, at: path.appending("tcpSocket").appending("port")) }
        if let exec = probe.exec, exec.command.isEmpty || exec.command[0].isEmpty {
            fail(path.appending("exec").appending("command"), "the command must name a program")
        }
    }

    mutating func check(_ service: VirtualService) {
        let hostsPath = root.appending("hosts")
        if service.hosts?.isEmpty ?? true { fail(hostsPath, "at least one host is required") }
        for (index, host) in (service.hosts ?? []).enumerated() {
            add(HostName.problems(host, at: hostsPath.appending(index: index)))
        }
        for (index, gateway) in (service.gateways ?? []).enumerated() where gateway != "mesh" {
            let parts = gateway.split(separator: "/")
            if parts.isEmpty || parts.count > 2 || parts.contains(where: { !NameRules.isLabel($0) && !$0.contains(".") }) {
                fail(root.appending("gateways").appending(index: index), "\"\(gateway)\" is not \"mesh\" or \"namespace/name\" of a Gateway")
            }
        }
        for (index, route) in (service.http ?? []).enumerated() {
            check(route, at: root.appending("http").appending(index: index))
        }
        for (index, route) in (service.tcp ?? []).enumerated() {
            let path = root.appending("tcp").appending(index: index)
            let destinations = route.route ?? []
            if destinations.isEmpty { fail(path.appending("route"), "at least one destination is required") }
            totalWeight(destinations, at: path.appending("route"))
            for (position, destination) in destinations.enumerated() {
                let destinationPath = path.appending("route").appending(index: position)
                check(destination.destination, at: destinationPath.appending("destination"))
                nonNegative(destination.weight, at: destinationPath.appending("weight"))
            }
            for (position, match) in (route.match ?? []).enumerated() {
                port(match.port, at: path.appending("match").appending(index: position).appending("port"))
            }
        }
        let gateways = service.gateways ?? []
        matchGateways(service, bound: gateways)
        if !(service.tls ?? []).isEmpty && (gateways.isEmpty || gateways.contains("mesh")) {
            fail(root.appending("tls"), "TLS routes apply to gateways in meshd (sidecars do not capture traffic, so they cannot route by SNI); bind this VirtualService to a gateway only, or route TLS ports with tcp")
        }
        for (index, route) in (service.tls ?? []).enumerated() {
            let path = root.appending("tls").appending(index: index)
            if (route.route ?? []).isEmpty { fail(path.appending("route"), "at least one destination is required") }
            totalWeight(route.route ?? [], at: path.appending("route"))
            for (position, match) in route.match.enumerated() {
                port(match.port, at: path.appending("match").appending(index: position).appending("port"))
                for (item, host) in match.sniHosts.enumerated() {
                    add(HostName.problems(host, at: path.appending("match").appending(index: position).appending("sniHosts").appending(index: item)))
                }
            }
            for (position, destination) in (route.route ?? []).enumerated() {
                check(destination.destination, at: path.appending("route").appending(index: position).appending("destination"))
            }
        }
        exportTo(service.exportTo)
    }

    /// Several destinations of a `tcp` or `tls` rule need weights, as Istio's validation says
    /// (all zero would leave a TCP proxy nothing to send to).
    mutating func totalWeight(_ destinations: [RouteDestination], at path: FieldPath) {
        if destinations.count > 1 && destinations.allSatisfy({ ($0.weight ?? 0) <= 0 }) {
            fail(path, "total destination weight = 0: give the destinations weights")
        }
    }

    /// A match's `gateways` narrows where its rule applies to some of the gateways the
    /// VirtualService is bound to (`gateways`, `mesh` when empty); one it is not bound to would
    /// never see the rule (in Istio neither), so naming it is refused.
    mutating func matchGateways(_ service: VirtualService, bound: [String]) {
        let boundNames = Set((bound.isEmpty ? ["mesh"] : bound).map { $0 == "mesh" ? $0 : HostName.gateway($0, in: namespace) })
        var matches: [(FieldPath, [String]?)] = []
        for (index, route) in (service.http ?? []).enumerated() {
            for (position, match) in (route.match ?? []).enumerated() { matches.append((root.appending("http").appending(index: index).appending("match").appending(index: position), match.gateways)) }
        }
        for (index, route) in (service.tcp ?? []).enumerated() {
            for (position, match) in (route.match ?? []).enumerated() { matches.append((root.appending("tcp").appending(index: index).appending("match").appending(index: position), match.gateways)) }
        }
        for (index, route) in (service.tls ?? []).enumerated() {
            for (position, match) in route.match.enumerated() { matches.append((root.appending("tls").appending(index: index).appending("match").appending(index: position), match.gateways)) }
        }
        for (path, names) in matches {
            for (index, name) in (names ?? []).enumerated() where !boundNames.contains(name == "mesh" ? name : HostName.gateway(name, in: namespace)) {
                fail(path.appending("gateways").appending(index: index), "\"\(name)\" is not among the VirtualService's gateways (\(bound.isEmpty ? "mesh, by default" : bound.joined(separator: ", "))), so this match would never apply; add it to spec.gateways")
            }
        }
    }

    mutating func check(_ route: HTTPRoute, at path: FieldPath) {
        let destinations = route.route ?? []
        let actions = [!destinations.isEmpty, route.redirect != nil, route.directResponse != nil, route.delegate != nil].filter { $0 }.count
        if actions > 1 {
            fail(path, "only one of route, redirect, directResponse and delegate may be set")
        }
        if actions == 0 {
            fail(path.appending("route"), "a route, redirect, directResponse or delegate is required")
        }
        var total: Int64 = 0
        for (index, destination) in destinations.enumerated() {
            let destinationPath = path.appending("route").appending(index: index)
            check(destination.destination, at: destinationPath.appending("destination"))
            nonNegative(destination.weight, at: destinationPath.appending("weight"))
            total += Int64(destination.weight ?? 0)
        }
        if destinations.count > 1 && total == 0 && destinations.contains(where: { $0.weight != nil }) {
            fail(path.appending("route"), "destination weights must not all be zero")
        }
        for (index, match) in (route.match ?? []).enumerated() {
            port(match.port, at: path.appending("match").appending(index: index).appending("port"))
        }
        if let code = route.redirect?.redirectCode, ![301, 302, 303, 307, 308].contains(code) {
            fail(path.appending("redirect").appending("redirectCode"), "redirect code \(code) is not one of 301, 302, 303, 307, 308")
        }
        if let bytes = route.directResponse?.body?.bytes, !Self.isBase64(bytes) {
            fail(path.appending("directResponse").appending("body").appending("bytes"), "not valid base64")
        }
        if let retries = route.retries {
            nonNegative(retries.attempts, at: path.appending("retries").appending("attempts"))
            for part in (retries.retryOn ?? "").split(separator: ",").map({ String($0.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed()) }) where !part.isEmpty {
                if let code = Int(part) {
                    if !(100...599).contains(code) { fail(path.appending("retries").appending("retryOn"), "\(code) is not an HTTP status code") }
                } else if !RetryConditions.supported.contains(part) {
                    fail(path.appending("retries").appending("retryOn"), "\"\(part)\" is not a retry condition; expected HTTP status codes and \(RetryConditions.supported.sorted().joined(separator: ", "))")
                }
            }
        }
        if let fault = route.fault {
            percent(fault.delay?.percentage?.value, at: path.appending("fault").appending("delay").appending("percentage").appending("value"))
            percent(fault.abort?.percentage?.value, at: path.appending("fault").appending("abort").appending("percentage").appending("value"))
            if let abort = fault.abort, let status = abort.httpStatus, !(200...599).contains(status) {
                fail(path.appending("fault").appending("abort").appending("httpStatus"), "HTTP status \(status) is out of range 200-599")
            }
            if let status = fault.abort?.grpcStatus, GRPCStatus.code(status) == nil {
                fail(path.appending("fault").appending("abort").appending("grpcStatus"), "\"\(status)\" is not a gRPC status; expected a name such as UNAVAILABLE (\(GRPCStatus.names.joined(separator: ", ")))")
            }
        }
        percent(route.mirrorPercentage?.value, at: path.appending("mirrorPercentage").appending("value"))
        if let mirror = route.mirror { check(mirror, at: path.appending("mirror")) }
        for (index, mirror) in (route.mirrors ?? []).enumerated() {
            check(mirror.destination, at: path.appending("mirrors").appending(index: index).appending("destination"))
            percent(mirror.percentage?.value, at: path.appending("mirrors").appending(index: index).appending("percentage").appending("value"))
        }
        if let status = route.directResponse?.status, !(200...599).contains(status) {
            fail(path.appending("directResponse").appending("status"), "HTTP status \(status) is out of range 200-599")
        }
    }

    mutating func check(_ destination: Destination, at path: FieldPath) {
        add(HostName.problems(destination.host, at: path.appending("host"), allowWildcard: false))
        port(destination.port?.number, at: path.appending("port").appending("number"))
    }

    mutating func check(_ rule: DestinationRule) {
        add(HostName.problems(rule.host, at: root.appending("host")))
        let subsets = rule.subsets ?? []
        unique(subsets.map(\.name), at: root.appending("subsets"), what: "subset name")
        for (index, subset) in subsets.enumerated() {
            let path = root.appending("subsets").appending(index: index)
            if subset.name.isEmpty { fail(path.appending("name"), "subset name must not be empty") }
            labels(subset.labels, at: path.appending("labels"))
            if let policy = subset.trafficPolicy { check(policy, at: path.appending("trafficPolicy")) }
        }
        if let policy = rule.trafficPolicy { check(policy, at: root.appending("trafficPolicy")) }
        exportTo(rule.exportTo)
    }

    mutating func check(_ policy: TrafficPolicy, at path: FieldPath) {
        check(policy.connectionPool, at: path.appending("connectionPool"))
        check(policy.outlierDetection, at: path.appending("outlierDetection"))
        check(policy.tls, at: path.appending("tls"))
        check(policy.loadBalancer, at: path.appending("loadBalancer"))
        for (index, portPolicy) in (policy.portLevelSettings ?? []).enumerated() {
            let portPath = path.appending("portLevelSettings").appending(index: index)
            if portPolicy.port == nil { fail(portPath.appending("port"), "a port is required") }
            port(portPolicy.port?.number, at: portPath.appending("port").appending("number"))
            check(portPolicy.connectionPool, at: portPath.appending("connectionPool"))
            check(portPolicy.outlierDetection, at: portPath.appending("outlierDetection"))
            check(portPolicy.tls, at: portPath.appending("tls"))
            check(portPolicy.loadBalancer, at: portPath.appending("loadBalancer"))
        }
    }

    mutating func check(_ tls: ClientTLSSettings?, at path: FieldPath) {
        guard let tls else { return }
        if tls.mode == .MUTUAL && (tls.clientCertificate ?? "").isEmpty != (tls.privateKey ?? "").isEmpty {
            fail(path, "MUTUAL needs both clientCertificate and privateKey")
        }
    }

    mutating func check(_ balancer: LoadBalancerSettings?, at path: FieldPath) {
        if balancer?.simple == .PASSTHROUGH {
            fail(path.appending("simple"), "PASSTHROUGH needs traffic capture, which meshd's sidecars do not use")
        }
        if let locality = balancer?.localityLbSetting { check(locality, at: path.appending("localityLbSetting")) }
        guard let hash = balancer?.consistentHash else { return }
        let keys = [hash.httpHeaderName != nil, hash.httpCookie != nil, hash.useSourceIp == true, hash.httpQueryParameterName != nil].filter { $0 }.count
        if keys == 0 {
            fail(path.appending("consistentHash"), "a hash key is required: httpHeaderName, httpCookie, useSourceIp or httpQueryParameterName")
        }
    }

    /// Istio's rules: `distribute` or `failover`, not both; weights 1-100 adding up to 100 per
    /// `from`; localities that do not overlap, `*` only as their last part; failover between two
    /// different regions.
    mutating func check(_ setting: LocalityLoadBalancerSetting, at path: FieldPath) {
        let distribute = setting.distribute ?? []
        let failover = setting.failover ?? []
        if !distribute.isEmpty && !failover.isEmpty {
            fail(path, "distribute and failover cannot be set together")
            return
        }
        if !failover.isEmpty {
            let topology: Set = ["topology.kubernetes.io/region", "topology.kubernetes.io/zone", "topology.istio.io/subzone"]
            for (index, entry) in (setting.failoverPriority ?? []).enumerated() where topology.contains(String(entry.prefix { $0 != "=" })) {
                fail(path.appending("failoverPriority").appending(index: index), "\(entry) cannot be used together with failover, which already orders by region, zone and subzone")
            }
        }
        for (index, entry) in (setting.failoverPriority ?? []).enumerated() where entry.prefix(while: { $0 != "=" }).isEmpty {
            fail(path.appending("failoverPriority").appending(index: index), "a label name is required")
        }
        for (index, rule) in distribute.enumerated() {
            let rulePath = path.appending("distribute").appending(index: index)
            let targets = rule.to ?? [:]
            for name in targets.keys.sorted() where !(1...100).contains(targets[name]!) {
                fail(rulePath.appending("to").appending(name), "a locality's weight must be within 1-100")
            }
            let total = targets.values.reduce(UInt64(0)) { $0 + UInt64($1) }
            if total != 100 { fail(rulePath.appending("to"), "the weights add up to \(total), not 100") }
            localities(targets.keys.sorted(), at: rulePath.appending("to"))
        }
        localities(distribute.map { $0.from ?? "" }, at: path.appending("distribute"), field: "from")
        for (index, rule) in failover.enumerated() {
            let rulePath = path.appending("failover").appending(index: index)
            for (field, value) in [("from", rule.from ?? ""), ("to", rule.to ?? "")] {
                if value.isEmpty { fail(rulePath.appending(field), "a region is required") }
                if value.contains("/") { fail(rulePath.appending(field), "\"\(value)\" is not a region: failover names regions only") }
                if value.contains("*") { fail(rulePath.appending(field), "a failover region cannot contain the wildcard *") }
            }
            if rule.from == rule.to { fail(rulePath, "from and to must be different regions") }
        }
    }

    /// Localities of a rule: `region[/zone[/subzone]]`, no empty part, `*` only once and last, and
    /// no two naming the same place.
    private mutating func localities(_ values: [String], at path: FieldPath, field: String? = nil) {
        func parts(_ text: String) -> [Substring] { text.split(separator: "/", maxSplits: 2, omittingEmptySubsequences: false) }
        func covers(_ pattern: [Substring], _ other: [Substring]) -> Bool {
            for (index, part) in pattern.enumerated() where part != "*" {
                guard index < other.count, other[index] == part else { return false }
            }
            return true
        }
        for (index, value) in values.enumerated() {
            let at = field.map { path.appending(index: index).appending($0) } ?? path.appending(value)
            let split = parts(value)
            if split.contains(where: \.isEmpty) {
                fail(at, "\"\(value)\" has an empty region, zone or subzone")
                continue
            }
            let wildcards = value.filter { $0 == "*" }.count
            if wildcards > 1 || (wildcards == 1 && split.last != "*") {
                fail(at, "\"\(value)\": the wildcard * may appear once, as the last part")
                continue
            }
            if let earlier = values[..<index].first(where: { covers(parts($0), split) || covers(split, parts($0)) }) {
                fail(at, "\"\(value)\" overlaps \"\(earlier)\"")
            }
        }
    }

    mutating func check(_ pool: ConnectionPoolSettings?, at path: FieldPath) {
        guard let pool else { return }
        nonNegative(pool.tcp?.maxConnections, at: path.appending("tcp").appending("maxConnections"))
        let http = path.appending("http")
        nonNegative(pool.http?.http1MaxPendingRequests, at: http.appending("http1MaxPendingRequests"))
        nonNegative(pool.http?.http2MaxRequests, at: http.appending("http2MaxRequests"))
        nonNegative(pool.http?.maxRequestsPerConnection, at: http.appending("maxRequestsPerConnection"))
        nonNegative(pool.http?.maxRetries, at: http.appending("maxRetries"))
    }

    mutating func check(_ detection: OutlierDetection?, at path: FieldPath) {
        guard let detection else { return }
        if let value = detection.maxEjectionPercent, !(0...100).contains(value) {
            fail(path.appending("maxEjectionPercent"), "must be within 0-100")
        }
        if let value = detection.minHealthPercent, !(0...100).contains(value) {
            fail(path.appending("minHealthPercent"), "must be within 0-100")
        }
    }

    mutating func check(_ sidecar: Sidecar) {
        labels(sidecar.workloadSelector?.labels, at: root.appending("workloadSelector").appending("labels"))
        for (index, listener) in (sidecar.egress ?? []).enumerated() {
            let path = root.appending("egress").appending(index: index)
            if sidecar.outboundTrafficPolicy?.mode == .ALLOW_ANY, let bind = listener.bind, let address = IPAddress(bind), !address.isLoopback {
                fail(path.appending("bind"), "outboundTrafficPolicy ALLOW_ANY forwards to any host a request names, so meshd allows it only on loopback binds; \(bind) is reachable from other machines (use REGISTRY_ONLY, or a 127.x address)")
            }
            port(listener.port?.number, at: path.appending("port").appending("number"))
            knownProtocol(listener.port?.protocol, at: path.appending("port"))
            captureMode(listener.captureMode, at: path.appending("captureMode"))
            if let bind = listener.bind, !bind.isEmpty, IPAddress(bind) == nil, !bind.hasPrefix("unix://") {
                fail(path.appending("bind"), "\"\(bind)\" is not an IP address")
            }
            if listener.hosts.isEmpty { fail(path.appending("hosts"), "at least one host is required") }
            for (position, host) in listener.hosts.enumerated() {
                let hostPath = path.appending("hosts").appending(index: position)
                let parts = host.split(separator: "/", maxSplits: 1)
                guard parts.count == 2 else {
                    fail(hostPath, "\"\(host)\" must have the form namespace/host (use \"*/\", \"./\" or \"~/\" for the namespace)")
                    continue
                }
                let namespace = parts[0]
                if !(namespace == "*" || namespace == "." || namespace == "~" || NameRules.isLabel(namespace)) {
                    fail(hostPath, "\"\(namespace)\" is not a namespace, \"*\", \".\" or \"~\"")
                }
                add(HostName.problems(String(parts[1]), at: hostPath))
            }
        }
        for (index, listener) in (sidecar.ingress ?? []).enumerated() {
            let path = root.appending("ingress").appending(index: index)
            port(listener.port.number, at: path.appending("port").appending("number"))
            if listener.port.number == nil { fail(path.appending("port").appending("number"), "a port number is required") }
            knownProtocol(listener.port.protocol, at: path.appending("port"))
            captureMode(listener.captureMode, at: path.appending("captureMode"))
            if let bind = listener.bind, !bind.isEmpty, IPAddress(bind) == nil {
                fail(path.appending("bind"), "\"\(bind)\" is not an IP address")
            }
            if let endpoint = listener.defaultEndpoint, !endpoint.isEmpty, !endpoint.hasPrefix("unix://") {
                if HostPort(endpoint).flatMap({ IPAddress($0.host) }) == nil {
                    fail(path.appending("defaultEndpoint"), "\"\(endpoint)\" must be IP:PORT (such as 127.0.0.1:8080) or unix:///path")
                }
            }
        }
    }

    /// Whether `text` is padded base64, as proto3 JSON writes `bytes`.
    static func isBase64(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count % 4 == 0 else { return false }
        let padding = bytes.reversed().prefix { $0 == UInt8(ascii: "=") }.count
        guard padding <= 2 else { return false }
        return bytes.dropLast(padding).allSatisfy { byte in
            (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "/")
        }
    }

    /// A port's protocol (at `port.protocol`, or taken from its `name`'s prefix): one Istio
    /// names, and not UDP, which neither Istio's sidecars nor meshd's proxy.
    mutating func knownProtocol(_ text: String?, name: String? = nil, at port: FieldPath) {
        if let text, ServiceProtocol(istioName: text) == nil {
            fail(port.appending("protocol"), "unknown protocol \"\(text)\"; expected one of \(ServiceProtocol.allCases.map(\.rawValue).joined(separator: ", "))")
        } else if ServiceProtocol.of(protocol: text, name: name) == .udp {
            fail(port.appending(text == nil ? "name" : "protocol"), "UDP is not proxied (by Istio's sidecars either); leave the port out, its traffic goes directly")
        }
    }

    mutating func captureMode(_ mode: CaptureMode?, at path: FieldPath) {
        if mode == .IPTABLES { fail(path, "meshd does not capture traffic; use NONE (or DEFAULT, which is NONE in meshd)") }
    }

    /// A Gateway's servers: protocols meshd serves on a gateway, TLS that says where its
    /// certificate is, and no two servers on one port that contradict each other.
    mutating func check(_ gateway: Gateway) {
        labels(gateway.selector, at: root.appending("selector"))
        if gateway.selector?.isEmpty ?? true {
            fail(root.appending("selector"), "a Gateway needs a selector naming the labels of its gateway workloads (without one Istio applies it to every gateway; meshd decides which workloads are gateways by it)")
        }
        let servers = gateway.servers ?? []
        for (index, server) in servers.enumerated() {
            let path = root.appending("servers").appending(index: index)
            port(server.port.number, at: path.appending("port").appending("number"))
            let protocolPath = path.appending("port").appending("protocol")
            let kind = server.port.protocol.uppercased()
            if !Self.gatewayProtocols.contains(kind) {
                fail(protocolPath, "meshd serves \(Self.gatewayProtocols.joined(separator: ", ")) on a gateway; \"\(server.port.protocol)\" is not one")
            }
            if server.hosts.isEmpty { fail(path.appending("hosts"), "at least one host is required") }
            for (position, host) in server.hosts.enumerated() {
                let hostPath = path.appending("hosts").appending(index: position)
                let parts = host.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
                if parts.count == 2, !(parts[0] == "*" || parts[0] == "." || NameRules.isLabel(parts[0])) {
                    fail(hostPath, "\"\(parts[0])\" is not a namespace, \"*\" or \".\"")
                }
                add(HostName.problems(String(parts.last ?? ""), at: hostPath))
            }
            if let bind = server.bind, !bind.isEmpty, IPAddress(bind) == nil {
                fail(path.appending("bind"), "\"\(bind)\" is not an IP address")
            }
            check(server.tls, protocol: kind, at: path.appending("tls"))
        }
        // Servers sharing a port must agree on the protocol; HTTPS servers on one port are told
        // apart by their hosts (SNI) and by their port names (route configuration names).
        for (index, server) in servers.enumerated() {
            let path = root.appending("servers").appending(index: index)
            for (other, earlier) in servers.prefix(index).enumerated() where earlier.port.number == server.port.number && (earlier.bind ?? "") == (server.bind ?? "") {
                if earlier.portKind != server.portKind {
                    fail(path.appending("port").appending("protocol"), "port \(server.port.number) is \(earlier.port.protocol) in servers[\(other)]; servers on one port must all be HTTP, all TCP, or all HTTPS and TLS (told apart by SNI)")
                } else if server.portKind == .tls {
                    let shared = Set(server.hostNames).intersection(earlier.hostNames)
                    if !shared.isEmpty && server.tls != earlier.tls {
                        fail(path.appending("tls"), "servers[\(other)] serves \(shared.sorted().joined(separator: ", ")) on port \(server.port.number) with other TLS settings; a client could not tell which applies")
                    } else if earlier.port.name == server.port.name && server.tls?.mode != .PASSTHROUGH && earlier.tls?.mode != .PASSTHROUGH {
                        fail(path.appending("port").appending("name"), "servers[\(other)] has the port name \"\(server.port.name)\" on port \(server.port.number); HTTPS servers on one port need names of their own")
                    }
                }
            }
        }
    }

    /// The protocols a gateway server may have.
    static let gatewayProtocols = ["HTTP", "HTTPS", "HTTP2", "GRPC", "TCP", "TLS"]

    /// A server's `tls`: what its protocol and mode can act on, and nothing else.
    mutating func check(_ tls: ServerTLSSettings?, protocol kind: String, at path: FieldPath) {
        let set = Self.setFields(tls)
        guard kind == "HTTPS" || kind == "TLS" else {
            if let mode = tls?.mode { fail(path.appending("mode"), "TLS mode \(mode.rawValue) needs protocol HTTPS or TLS") }
            for field in set where field != "mode" && !(field == "httpsRedirect" && kind != "TCP") {
                fail(path.appending(field), field == "httpsRedirect" ? "httpsRedirect applies to HTTP servers" : "\(field) applies to HTTPS and TLS servers")
            }
            return
        }
        guard let tls, let mode = tls.mode else {
            fail(path.appending("mode"), kind == "TLS" ? "a TLS server needs tls.mode PASSTHROUGH" : "an HTTPS server needs tls.mode (SIMPLE, MUTUAL, OPTIONAL_MUTUAL, ISTIO_MUTUAL or PASSTHROUGH)")
            return
        }
        if kind == "TLS" && mode != .PASSTHROUGH && mode != .AUTO_PASSTHROUGH {
            fail(path.appending("mode"), "a TLS server passes TLS through (PASSTHROUGH); terminating TLS for TCP traffic is not supported by meshd yet")
        }
        if tls.httpsRedirect == true { fail(path.appending("httpsRedirect"), "httpsRedirect applies to HTTP servers, which it redirects to HTTPS") }
        // What each mode reads; any other field set is refused.
        let files: Set<String> = ["serverCertificate", "privateKey"]
        let credentials: Set<String> = ["credentialName", "credentialNames"]
        let clientChecks: Set<String> = ["subjectAltNames", "verifyCertificateSpki", "verifyCertificateHash"]
        let parameters: Set<String> = ["minProtocolVersion", "maxProtocolVersion", "cipherSuites"]
        let reads: Set<String>
        let why: String
        switch mode {
        case .PASSTHROUGH:
            reads = []
            why = "PASSTHROUGH does not terminate TLS"
        case .AUTO_PASSTHROUGH:
            fail(path.appending("mode"), "AUTO_PASSTHROUGH serves multi-network meshes, which meshd does not support")
            return
        case .SIMPLE:
            reads = files.union(parameters).union(credentials)
            why = "SIMPLE checks no client certificate (use MUTUAL or OPTIONAL_MUTUAL)"
        case .MUTUAL, .OPTIONAL_MUTUAL:
            reads = files.union(parameters).union(clientChecks).union(credentials).union(["caCertificates", "caCertCredentialName"])
            why = "not read in \(mode.rawValue)"
        case .ISTIO_MUTUAL:
            reads = parameters.union(clientChecks)
            why = "ISTIO_MUTUAL uses the gateway's mesh certificate and the mesh's roots"
        }
        for field in set.subtracting(reads).subtracting(["mode", "httpsRedirect"]).sorted() where !FieldSupport.isRefused("servers.tls.\(field)", in: .gateway) {
            fail(path.appending(field), "\(why); do not give \(field)")
        }
        guard mode == .SIMPLE || mode == .MUTUAL || mode == .OPTIONAL_MUTUAL else { return }
        if !set.isDisjoint(with: credentials) {
            credentialNames(tls, mode: mode, set: set, at: path)
            return
        }
        if set.contains("caCertCredentialName") {
            fail(path.appending("caCertCredentialName"), "caCertCredentialName goes with credentialName; with certificate files give caCertificates")
        }
        for field in files.sorted() where !((field == "serverCertificate" ? tls.serverCertificate : tls.privateKey) ?? "").hasPrefix("/") {
            fail(path.appending(field), "\(mode.rawValue) needs credentialName (a Secret held by meshd) or \(field): an absolute path to a PEM file on the gateway's machine")
        }
        if mode == .MUTUAL || mode == .OPTIONAL_MUTUAL, !(tls.caCertificates ?? "").hasPrefix("/") {
            fail(path.appending("caCertificates"), "\(mode.rawValue) needs caCertificates: an absolute path to the PEM bundle that verifies client certificates")
        }
    }

    /// A server that presents credentials held by meshd: names of Secrets, one or two, and no
    /// files beside them (whether the Secrets exist is checked against the whole configuration:
    /// ``GatewayCredentials``).
    private mutating func credentialNames(_ tls: ServerTLSSettings, mode: ServerTLSSettings.TLSmode, set: Set<String>, at path: FieldPath) {
        for field in ["serverCertificate", "privateKey", "caCertificates"] where set.contains(field) {
            fail(path.appending(field), "give either credentialName (a Secret held by meshd) or certificate files, not both")
        }
        if set.contains("credentialName") && set.contains("credentialNames") {
            fail(path.appending("credentialNames"), "credentialName and credentialNames are exclusive; list every credential in credentialNames")
        }
        let names = GatewayCredentials.names(tls)
        if names.count > 2 {
            fail(path.appending("credentialNames"), "at most two credentials (an RSA and an ECDSA one); found \(names.count)")
        }
        let secretName = tls.credentialNames?.isEmpty == false ? path.appending("credentialNames") : path.appending("credentialName")
        for (index, name) in (names + [tls.caCertCredentialName].compactMap { $0 }).enumerated() {
            let field = index < names.count ? (tls.credentialNames?.isEmpty == false ? secretName.appending(index: index) : secretName) : path.appending("caCertCredentialName")
            add(NameRules.problems(name: name, at: field))
        }
    }

    /// The fields set in a server's `tls`, by their YAML names (proto3: empty is unset).
    static func setFields(_ tls: ServerTLSSettings?) -> Set<String> {
        guard case .object(let object)? = tls?.configValue else { return [] }
        return Set(object.pairs.filter { !FieldSupport.isUnset($0.value) }.map(\.key))
    }

    mutating func exportTo(_ values: [String]?) {
        for (index, value) in (values ?? []).enumerated() {
            if !(value == "*" || value == "." || value == "~" || NameRules.isLabel(Substring(value))) {
                fail(root.appending("exportTo").appending(index: index), "\"\(value)\" is not \"*\", \".\", \"~\" or a namespace")
            }
        }
    }
}
