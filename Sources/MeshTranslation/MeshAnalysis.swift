public import MeshModel

/// `meshctl describe` and `meshctl analyze`: what applies to a workload, whether its connections
/// really use mTLS, and what is wrong with a configuration. Pure functions of a snapshot.
public enum MeshAnalysis {
    // MARK: describe

    /// What applies to `workload` and what happens to each connection it makes.
    public static func describe(_ workload: WorkloadInstance, in snapshot: MeshSnapshot) -> WorkloadDescription {
        let suffix = snapshot.settings.domainSuffix
        let served = snapshot.registry.services(servedBy: workload)
        let servedHosts = Set(served.map(\.hostname))
        func name<T>(_ item: Configured<T>) -> String { "\(item.metadata.namespace)/\(item.metadata.name)" }
        let gateways = snapshot.gateways.filter { GatewayTranslator.selects($0.spec, workload) }.map(name).sorted()
        let virtualServices = snapshot.virtualServices.filter { item in
            gateways.contains { GatewayNames.binds(item.spec.gateways ?? [], namespace: item.metadata.namespace, to: $0) }
                || (item.spec.hosts ?? []).contains { host in
                let resolved = HostName.resolve(host, in: item.metadata.namespace, domainSuffix: suffix)
                return servedHosts.contains { HostName.matches($0, pattern: resolved) }
            }
        }.map(name)
        let destinationRules = snapshot.destinationRules.filter { item in
            let resolved = HostName.resolve(item.spec.host, in: item.metadata.namespace, domainSuffix: suffix)
            return servedHosts.contains { HostName.matches($0, pattern: resolved) }
        }.map(name)
        let peer = PeerAuthenticationPolicy(workload: workload, snapshot: snapshot)
        let authorization = AuthorizationBuilder(workload: workload, snapshot: snapshot).policies.map(name)
        let scope = SidecarScope(workload: workload, snapshot: snapshot)
        let inbound = scope.ingress.map { ingress in
            let decision = peer.decision(port: ingress.port)
            return WorkloadDescription.Port(port: Int(ingress.port), mtlsMode: decision.mode.rawValue, decidedBy: decision.decidedBy)
        }
        let rules = DestinationRuleIndex(snapshot: snapshot)
        var outbound: [WorkloadDescription.Connection] = []
        for service in scope.reachableServices where service.location == .MESH_INTERNAL {
            for port in service.ports {
                outbound.append(connection(from: workload, to: service, port: port, rule: rules.rule(for: service, proxy: workload), snapshot: snapshot))
            }
        }
        return WorkloadDescription(
            workload: "\(workload.namespace)/\(workload.name)", identity: workload.identity(trustDomain: snapshot.settings.trustDomain).uri,
            labels: workload.labels, services: served.map(\.hostname), virtualServices: virtualServices, destinationRules: destinationRules,
            peerAuthentications: peer.applied, authorizationPolicies: authorization,
            requestAuthentications: JWTAuthentication.selecting(workload, in: snapshot).map(name), sidecar: scope.sidecar.map(name), gateways: gateways,
            inbound: inbound, outbound: outbound,
            workloadGroup: snapshot.resources[ResourceKey(kind: .workloadEntry, namespace: workload.namespace, name: workload.name)]?.autoRegistrationGroup
                .map { "\(workload.namespace)/\($0)" },
            health: snapshot.healthCondition(of: .init(namespace: workload.namespace, name: workload.name)).map { condition in
                let word = ["True": "Healthy", "False": "Unhealthy"][condition.status] ?? condition.status
                return condition.message.map { "\(word): \($0)" } ?? word
            })
    }

    /// What a client sends to `service` on `port`, what its endpoints accept, and the outcome.
    static func connection(from client: WorkloadInstance, to service: MeshService, port: MeshService.Port, rule: Configured<DestinationRule>?, snapshot: MeshSnapshot) -> WorkloadDescription.Connection {
        let endpoints = snapshot.registry.instances(of: service)
        let modes = endpoints.map { endpoint -> String in
            endpoint.hasSidecar ? PeerAuthenticationPolicy(workload: endpoint, snapshot: snapshot).mode(port: endpoint.endpointPort(for: port)).rawValue : "no sidecar"
        }
        let serverModes = Array(Set(modes)).sorted()
        let sends: String
        let reason: String
        if let rule, let tls = rule.spec.tlsSettings(port: port.number) {
            reason = "DestinationRule \(rule.metadata.namespace)/\(rule.metadata.name) tls.mode \((tls.mode ?? .DISABLE).rawValue)"
            switch tls.mode ?? .DISABLE {
            case .ISTIO_MUTUAL: sends = "mTLS"
            case .DISABLE: sends = "plaintext"
            case .SIMPLE, .MUTUAL: sends = "TLS (files)"
            }
        } else {
            let accepting = modes.filter { $0 == MTLSMode.strict.rawValue || $0 == MTLSMode.permissive.rawValue }.count
            reason = "auto mTLS"
            sends = accepting == 0 ? "plaintext" : accepting == modes.count ? "mTLS" : "mTLS to endpoints with a sidecar, plaintext to the rest"
        }
        var result = sends
        if endpoints.isEmpty {
            result = "fails: no endpoints"
        } else if sends == "plaintext", modes.contains(MTLSMode.strict.rawValue) {
            result = "fails: the server is STRICT and refuses plaintext"
        } else if sends == "mTLS", modes.contains(MTLSMode.disable.rawValue) || modes.contains("no sidecar") {
            result = "fails: the server does not accept mTLS (\(serverModes.joined(separator: ", ")))"
        }
        return WorkloadDescription.Connection(host: service.hostname, port: Int(port.number), client: sends, clientReason: reason, serverModes: serverModes, result: result)
    }

    // MARK: analyze

    /// Everything `meshctl analyze` reports, errors first.
    public static func analyze(_ snapshot: MeshSnapshot) -> [AnalysisMessage] {
        var messages: [AnalysisMessage] = []
        let suffix = snapshot.settings.domainSuffix
        // Unknown hosts, subsets and providers (ReferenceCheck ends each reason with its code).
        for (key, problems) in ReferenceCheck.warnings(in: snapshot).sorted(by: { $0.key < $1.key }) {
            for problem in problems {
                let (code, reason) = ReferenceCheck.code(of: problem)
                messages.append(.init(level: code == "IST0174" ? "Warning" : "Error", code: code, resource: key.description, message: "\(problem.path): \(reason)"))
            }
        }
        // Two VirtualServices for the same host on the mesh gateway.
        var owners: [String: [String]] = [:]
        for item in snapshot.virtualServices {
            let gateways = item.spec.gateways ?? []
            guard gateways.isEmpty || gateways.contains("mesh") else { continue }
            for host in Set((item.spec.hosts ?? []).map { HostName.resolve($0, in: item.metadata.namespace, domainSuffix: suffix) }) {
                owners[host, default: []].append("\(item.metadata.namespace)/\(item.metadata.name)")
            }
        }
        for (host, names) in owners.sorted(by: { $0.key < $1.key }) where names.count > 1 {
            for name in names.sorted() {
                messages.append(.init(
                    level: "Error", code: "IST0109", resource: "VirtualService \(name)",
                    message: "host \(host) is also routed by \(names.sorted().filter { $0 != name }.joined(separator: ", ")); only one VirtualService takes effect"))
            }
        }
        // Rules that can never match (Istio's IST0130).
        for item in snapshot.virtualServices {
            let resource = "VirtualService \(item.metadata.namespace)/\(item.metadata.name)"
            let http = (item.spec.http ?? []).map { rule in
                (rule.name.map { "\"\($0)\"" }, (rule.match ?? []).map { match -> ConfigValue in
                    var unnamed = match
                    unnamed.name = nil
                    return unnamed.configValue
                })
            }
            let tcp = (item.spec.tcp ?? []).map { rule in (String?.none, (rule.match ?? []).map(\.configValue)) }
            for (field, rules) in [("http", http), ("tcp", tcp)] {
                for (index, reason) in unreachableRules(rules.map(\.1)) {
                    messages.append(.init(
                        level: "Warning", code: "IST0130", resource: resource,
                        message: "spec.\(field)[\(index)]: rule \(rules[index].0 ?? "#\(index)") not used (\(reason))"))
                }
            }
        }
        for rule in snapshot.destinationRules {
            let resource = "DestinationRule \(rule.metadata.namespace)/\(rule.metadata.name)"
            let host = HostName.resolve(rule.spec.host, in: rule.metadata.namespace, domainSuffix: suffix)
            let services = snapshot.registry.services.filter { HostName.matches($0.hostname, pattern: host) }
            if services.isEmpty { continue }  // reported above (IST0174)
            // A subset that selects no workload.
            for (index, subset) in (rule.spec.subsets ?? []).enumerated() {
                let selected = services.flatMap { snapshot.registry.instances(of: $0) }.filter { $0.matches(subset.labels ?? [:]) }
                if selected.isEmpty {
                    messages.append(.init(
                        level: "Error", code: "IST0173", resource: resource,
                        message: "spec.subsets[\(index)] \(subset.name): labels \(labelText(subset.labels ?? [:])) select no workload of \(host); traffic routed to it fails (503)"))
                }
            }
        }
        // A STRICT server whose clients are told to send plaintext (Istio's dropped IST0113 check).
        for service in snapshot.registry.services where service.location == .MESH_INTERNAL {
            let endpoints = snapshot.registry.instances(of: service).filter(\.hasSidecar)
            for port in service.ports {
                let strict = endpoints.filter { PeerAuthenticationPolicy(workload: $0, snapshot: snapshot).mode(port: $0.endpointPort(for: port)) == .strict }
                guard !strict.isEmpty else { continue }
                for rule in snapshot.destinationRules {
                    let host = HostName.resolve(rule.spec.host, in: rule.metadata.namespace, domainSuffix: suffix)
                    guard HostName.matches(service.hostname, pattern: host), rule.spec.tlsSettings(port: port.number)?.mode == .DISABLE else { continue }
                    messages.append(.init(
                        level: "Error", code: "IST0113", resource: "DestinationRule \(rule.metadata.namespace)/\(rule.metadata.name)",
                        message: "tells clients to send plaintext to \(service.hostname):\(port.number), but \(strict.map { "\($0.namespace)/\($0.name)" }.sorted().joined(separator: ", ")) require mTLS there (PeerAuthentication STRICT): those requests fail"))
                }
            }
        }
        let order = ["Error": 0, "Warning": 1, "Info": 2]
        return messages.sorted { (order[$0.level] ?? 3, $0.resource, $0.code) < (order[$1.level] ?? 3, $1.resource, $1.code) }
    }

    /// The rules of one list (each given by its matches) that no request can reach, with Istio's
    /// reasons: a rule without matches catches everything after it, and a rule all of whose
    /// matches an earlier rule already has never sees a request.
    static func unreachableRules(_ rules: [[ConfigValue]]) -> [(Int, String)] {
        var found: [(Int, String)] = []
        var seen: Set<ConfigValue> = []
        var catchAll = false
        for (index, matches) in rules.enumerated() {
            if catchAll {
                found.append((index, matches.isEmpty ? "only the last rule can have no matches" : "a rule without matches comes before it"))
                continue
            }
            if matches.isEmpty {
                catchAll = true
                continue
            }
            if matches.allSatisfy(seen.contains) {
                found.append((index, "all matches used by prior rules"))
            }
            seen.formUnion(matches)
        }
        return found
    }

    private static func labelText(_ labels: [String: String]) -> String {
        "{" + labels.keys.sorted().map { "\($0)=\(labels[$0]!)" }.joined(separator: ", ") + "}"
    }
}
