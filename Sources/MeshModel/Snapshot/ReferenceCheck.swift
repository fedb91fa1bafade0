/// References between resources that resolve to nothing. Istio accepts them (a route to an unknown
/// host or subset answers 503 at run time), so meshd does too, and reports them: a log line, a
/// counter, and a warning kept with the resource for `meshctl analyze`.
public enum ReferenceCheck {
    /// A problem whose reason ends with the analyzer code Istio gives it: `reason (IST0101)`.
    static func problem(_ path: FieldPath, _ reason: String, code: String) -> SchemaError {
        SchemaError(path: path, reason: "\(reason) (\(code))")
    }

    /// The analyzer code and the bare reason of a problem from ``warnings(in:)``.
    public static func code(of problem: SchemaError) -> (code: String, reason: String) {
        guard problem.reason.hasSuffix(")"), let open = problem.reason.lastIndex(of: "(") else { return ("IST0101", problem.reason) }
        let code = problem.reason[problem.reason.index(after: open)..<problem.reason.index(before: problem.reason.endIndex)]
        return (String(code), String(problem.reason[..<open].dropLast()))
    }

    /// Warnings by resource: a host no service has, a subset no DestinationRule defines, a
    /// DestinationRule for an unknown host, a gateway that does not exist, a Gateway that selects
    /// no workload.
    public static func warnings(in snapshot: MeshSnapshot) -> [ResourceKey: [SchemaError]] {
        var out: [ResourceKey: [SchemaError]] = [:]
        let suffix = snapshot.settings.domainSuffix
        let hosts = Set(snapshot.registry.services.map(\.hostname))
        func known(_ host: String) -> Bool {
            HostName.isWildcard(host) ? hosts.contains { HostName.matches($0, pattern: host) } : hosts.contains(host)
        }
        func subsets(of host: String) -> Set<String> {
            var names: Set<String> = []
            for rule in snapshot.destinationRules where HostName.matches(host, pattern: HostName.resolve(rule.spec.host, in: rule.metadata.namespace, domainSuffix: suffix)) {
                for subset in rule.spec.subsets ?? [] { names.insert(subset.name) }
            }
            return names
        }
        let gateways = Set(snapshot.gateways.map { "\($0.metadata.namespace)/\($0.metadata.name)" })
        for service in snapshot.virtualServices {
            var problems: [SchemaError] = []
            let root = FieldPath().appending("spec")
            func check(_ destination: Destination, at path: FieldPath) {
                let host = HostName.resolve(destination.host, in: service.metadata.namespace, domainSuffix: suffix)
                if !known(host) {
                    problems.append(problem(path.appending("host"), "no service has host \(host)", code: "IST0101"))
                } else if let subset = destination.subset, !subset.isEmpty, !subsets(of: host).contains(subset) {
                    problems.append(problem(path.appending("subset"), "no DestinationRule defines subset \(subset) of \(host)", code: "IST0101"))
                }
            }
            for (index, route) in (service.spec.http ?? []).enumerated() {
                let path = root.appending("http").appending(index: index)
                for (position, destination) in (route.route ?? []).enumerated() {
                    check(destination.destination, at: path.appending("route").appending(index: position).appending("destination"))
                }
                if let mirror = route.mirror { check(mirror, at: path.appending("mirror")) }
                for (position, mirror) in (route.mirrors ?? []).enumerated() {
                    check(mirror.destination, at: path.appending("mirrors").appending(index: position).appending("destination"))
                }
            }
            for (index, route) in (service.spec.tcp ?? []).enumerated() {
                for (position, destination) in (route.route ?? []).enumerated() {
                    check(destination.destination, at: root.appending("tcp").appending(index: index).appending("route").appending(index: position).appending("destination"))
                }
            }
            for (index, route) in (service.spec.tls ?? []).enumerated() {
                for (position, destination) in (route.route ?? []).enumerated() {
                    check(destination.destination, at: root.appending("tls").appending(index: index).appending("route").appending(index: position).appending("destination"))
                }
            }
            // Gateways named at the top and in matches.
            func checkGateways(_ names: [String]?, at path: FieldPath) {
                for (index, name) in (names ?? []).enumerated() where name != "mesh" {
                    let key = HostName.gateway(name, in: service.metadata.namespace)
                    if !gateways.contains(key) {
                        problems.append(problem(path.appending(index: index), "no Gateway \(key)", code: "IST0101"))
                    }
                }
            }
            checkGateways(service.spec.gateways, at: root.appending("gateways"))
            for (index, route) in (service.spec.http ?? []).enumerated() {
                for (position, match) in (route.match ?? []).enumerated() {
                    checkGateways(match.gateways, at: root.appending("http").appending(index: index).appending("match").appending(index: position).appending("gateways"))
                }
            }
            for (index, route) in (service.spec.tcp ?? []).enumerated() {
                for (position, match) in (route.match ?? []).enumerated() {
                    checkGateways(match.gateways, at: root.appending("tcp").appending(index: index).appending("match").appending(index: position).appending("gateways"))
                }
            }
            for (index, route) in (service.spec.tls ?? []).enumerated() {
                for (position, match) in route.match.enumerated() {
                    checkGateways(match.gateways, at: root.appending("tls").appending(index: index).appending("match").appending(index: position).appending("gateways"))
                }
            }
            if !problems.isEmpty { out[service.key] = problems }
        }
        for rule in snapshot.destinationRules {
            let host = HostName.resolve(rule.spec.host, in: rule.metadata.namespace, domainSuffix: suffix)
            if !known(host) {
                out[rule.key, default: []].append(problem(FieldPath().appending("spec").appending("host"), "no service has host \(host)", code: "IST0174"))
            }
        }
        // A Gateway configures the proxies of the workloads its selector (required) matches.
        for gateway in snapshot.gateways {
            let selector = gateway.spec.selector ?? [:]
            let path = FieldPath().appending("spec").appending("selector")
            if !snapshot.registry.workloads.values.contains(where: { $0.matches(selector) }) {
                let text = selector.keys.sorted().map { "\($0)=\(selector[$0]!)" }.joined(separator: ",")
                out[gateway.key, default: []].append(problem(path, "selector \(text) matches no workload", code: "IST0101"))
            }
        }
        for telemetry in snapshot.telemetries {
            var problems: [SchemaError] = []
            let root = FieldPath().appending("spec")
            func check(_ providers: [ProviderRef]?, at path: FieldPath, kinds: [String]) {
                for (index, provider) in (providers ?? []).enumerated() {
                    let at = path.appending("providers").appending(index: index).appending("name")
                    guard let found = snapshot.mesh.provider(named: provider.name) else {
                        problems.append(problem(at, "no extension provider \(provider.name) in mesh.yaml", code: "IST0101"))
                        continue
                    }
                    if let type = MeshTelemetry.providerType(found), !kinds.contains(type) {
                        problems.append(problem(at, "provider \(provider.name) is a \(type) provider, not one of \(kinds.joined(separator: ", "))", code: "IST0101"))
                    }
                }
            }
            for (index, tracing) in (telemetry.spec.tracing ?? []).enumerated() {
                check(tracing.providers, at: root.appending("tracing").appending(index: index), kinds: ["zipkin", "opentelemetry"])
            }
            for (index, logging) in (telemetry.spec.accessLogging ?? []).enumerated() {
                check(logging.providers, at: root.appending("accessLogging").appending(index: index), kinds: ["envoyFileAccessLog"])
            }
            if !problems.isEmpty { out[telemetry.key] = problems }
        }
        // A CUSTOM policy whose provider is missing denies every request it would have sent out.
        for policy in snapshot.authorizationPolicies where policy.spec.action == .CUSTOM {
            guard let name = policy.spec.provider?.name, !name.isEmpty else { continue }
            let path = FieldPath().appending("spec").appending("provider").appending("name")
            guard let provider = snapshot.mesh.authorizationProvider(named: name) else {
                out[policy.key, default: []].append(problem(path, "no envoyExtAuthzHttp or envoyExtAuthzGrpc provider \(name) in mesh.yaml; the workloads it selects deny every request", code: "IST0101"))
                continue
            }
            if let reason = provider.registryProblem(in: snapshot.registry) {
                out[policy.key, default: []].append(problem(path, "\(reason); the workloads it selects deny every request", code: "IST0101"))
            }
            // An HTTP service cannot judge connections: on TCP ports the policy does nothing (Istio).
            guard provider.api == .http else { continue }
            for workload in snapshot.registry.workloads.values.sorted(by: { ($0.namespace, $0.name) < ($1.namespace, $1.name) })
            where policy.selects(workload, rootNamespace: snapshot.settings.rootNamespace) {
                let tcp = Set(snapshot.registry.services(servedBy: workload).flatMap(\.ports).filter { !$0.serviceProtocol.isHTTP }.map(\.number)).sorted()
                guard !tcp.isEmpty else { continue }
                out[policy.key, default: []].append(problem(path, "provider \(name) is an HTTP service, which cannot judge connections: on TCP ports \(tcp.map(String.init).joined(separator: ", ")) of \(workload.namespace)/\(workload.name) this policy does nothing (as in Istio); use an envoyExtAuthzGrpc provider or a DENY policy there", code: "IST0101"))
            }
        }
        return out
    }
}
