public import MeshModel

/// What one sidecar sees of the mesh: its workload, the Sidecar resource that applies to it, the
/// listeners it binds and the services each egress listener reaches.
///
/// Without traffic capture (Istio's `captureMode: NONE`), every listener binds a real address:
/// egress listeners bind `bind` (default `127.0.0.1`) where the app calls other services; ingress
/// listeners bind the workload's mesh address (the WorkloadEntry `address`) and forward to the app
/// at `defaultEndpoint` (default `127.0.0.1:<port>`).
public struct SidecarScope: Sendable {
    /// One egress listener: a bind address, an optional port, and the services it reaches.
    public struct Egress: Sendable {
        /// The address outbound listeners bind.
        public var bind: String
        /// The only port, when the Sidecar names one.
        public var port: UInt32?
        /// The protocol the Sidecar gives that port, if any: it decides whether the port's
        /// listener is HTTP or TCP, as in Istio.
        public var declaredProtocol: ServiceProtocol? = nil
        /// The services reachable through this listener, sorted by host.
        public var services: [MeshService]
    }

    /// One ingress listener: where the sidecar accepts mesh traffic and where the app listens.
    public struct Ingress: Sendable, Hashable {
        /// The address the listener binds (the workload address unless the Sidecar says otherwise).
        public var bind: String
        /// The port the listener binds.
        public var port: UInt32
        /// The port's protocol.
        public var serviceProtocol: ServiceProtocol
        /// The port name, if known.
        public var portName: String?
        /// Where the app listens: `host:port` or `unix:///path`.
        public var endpointHost: String
        /// The app's port (0 for Unix sockets).
        public var endpointPort: UInt32
    }

    /// The workload.
    public let workload: WorkloadInstance
    /// The Sidecar resource that applies, if any.
    public let sidecar: Configured<Sidecar>?
    /// Egress listeners, in the order the Sidecar lists them.
    public let egress: [Egress]
    /// Ingress listeners, by port.
    public let ingress: [Ingress]
    /// Every service reachable through any egress listener, sorted by host.
    public let reachableServices: [MeshService]
    /// Problems found while resolving the scope (the config is still served).
    public private(set) var warnings: [String] = []

    /// The default egress bind address when no Sidecar names one: Istio's localhost bind.
    public static let defaultBind = "127.0.0.1"

    /// Resolves the scope of `workload` in `snapshot`.
    public init(workload: WorkloadInstance, snapshot: MeshSnapshot) {
        self.workload = workload
        let sidecar = SidecarScope.selectSidecar(for: workload, in: snapshot)
        self.sidecar = sidecar
        var warnings: [String] = []

        let registry = snapshot.registry
        let namespace = workload.namespace
        var egress: [Egress] = []
        if let listeners = sidecar?.spec.egress, !listeners.isEmpty {
            for listener in listeners {
                let patterns = listener.hosts.compactMap { HostPattern(parsing: $0, sidecarNamespace: sidecar!.metadata.namespace, domainSuffix: snapshot.settings.domainSuffix) }
                // Only the namespaces the patterns name are searched (in registry order).
                var candidates: [Int]
                if patterns.contains(where: \.isAnyNamespace) {
                    candidates = Array(registry.services.indices)
                } else {
                    candidates = Set(patterns.flatMap { $0.namespaceName(proxyNamespace: namespace).map(registry.serviceIndexes(inNamespace:)) ?? [] }).sorted()
                }
                var services = candidates.map { registry.services[$0] }.filter { service in
                    service.exportTo.isVisible(from: namespace) && patterns.contains { $0.matches(service, proxyNamespace: namespace) }
                }
                if let port = listener.port?.number {
                    services = services.filter { $0.port(port) != nil }
                }
                let bind = (listener.bind?.isEmpty == false ? listener.bind! : SidecarScope.defaultBind)
                let declared = listener.port?.protocol.flatMap(ServiceProtocol.init(istioName:))
                egress.append(Egress(bind: bind, port: listener.port?.number, declaredProtocol: declared, services: SidecarScope.uniqueByHost(services)))
            }
        } else {
            let visible = registry.services.filter { $0.exportTo.isVisible(from: namespace) }
            egress.append(Egress(bind: SidecarScope.defaultBind, port: nil, services: SidecarScope.uniqueByHost(visible)))
        }
        self.egress = egress
        var reachable: [String: MeshService] = [:]
        for listener in egress {
            for service in listener.services where reachable[service.hostname] == nil { reachable[service.hostname] = service }
        }
        reachableServices = reachable.keys.sorted().map { reachable[$0]! }

        var ingress: [Ingress] = []
        if let listeners = sidecar?.spec.ingress, !listeners.isEmpty {
            for listener in listeners {
                guard let port = listener.port.number else { continue }
                let bind = listener.bind?.isEmpty == false ? listener.bind! : workload.address
                let proto = ServiceProtocol.of(protocol: listener.port.protocol, name: listener.port.name)
                let endpoint = SidecarScope.endpoint(listener.defaultEndpoint, defaultPort: port)
                ingress.append(Ingress(bind: bind, port: port, serviceProtocol: proto, portName: listener.port.name, endpointHost: endpoint.host, endpointPort: endpoint.port))
            }
        } else {
            var seen: Set<UInt32> = []
            for service in snapshot.registry.services(servedBy: workload) {
                for port in service.ports {
                    let target = workload.endpointPort(for: port)
                    guard seen.insert(target).inserted else { continue }
                    ingress.append(Ingress(bind: workload.address, port: target, serviceProtocol: port.serviceProtocol, portName: port.name, endpointHost: "127.0.0.1", endpointPort: target))
                }
            }
        }
        var seenIngress: Set<String> = []
        self.ingress = ingress.filter { listener in
            let key = "\(listener.bind):\(listener.port)"
            if seenIngress.insert(key).inserted { return true }
            warnings.append("ingress port \(listener.port) on \(listener.bind) is listed twice; using the first")
            return false
        }
        self.warnings = warnings
    }

    /// The Sidecar that applies to a workload, by Istio's precedence: one in its namespace whose
    /// selector matches (the first by name), else its namespace's Sidecar without a selector, else
    /// the root namespace's Sidecar without a selector.
    static func selectSidecar(for workload: WorkloadInstance, in snapshot: MeshSnapshot) -> Configured<Sidecar>? {
        let own = snapshot.sidecars.filter { $0.metadata.namespace == workload.namespace }
        if let selected = own.first(where: { sidecar in
            guard let labels = sidecar.spec.workloadSelector?.labels, !labels.isEmpty else { return false }
            return workload.matches(labels)
        }) {
            return selected
        }
        if let namespaceDefault = own.first(where: { ($0.spec.workloadSelector?.labels ?? [:]).isEmpty }) {
            return namespaceDefault
        }
        return snapshot.sidecars.first {
            $0.metadata.namespace == snapshot.settings.rootNamespace && ($0.spec.workloadSelector?.labels ?? [:]).isEmpty
        }
    }

    private static func endpoint(_ text: String?, defaultPort: UInt32) -> (host: String, port: UInt32) {
        guard let text, !text.isEmpty else { return ("127.0.0.1", defaultPort) }
        if text.hasPrefix("unix://") { return (text, 0) }
        if let parsed = HostPort(text) {
            // Istio's 0.0.0.0 means "the instance IP"; without capture the app's own address is
            // what the user wrote, so 0.0.0.0 maps to localhost.
            return (parsed.host == "0.0.0.0" ? "127.0.0.1" : parsed.host, parsed.port)
        }
        return ("127.0.0.1", defaultPort)
    }

    private static func uniqueByHost(_ services: [MeshService]) -> [MeshService] {
        var seen: Set<String> = []
        return services.filter { seen.insert($0.hostname).inserted }
    }
}

/// One `namespace/host` entry of a Sidecar egress listener.
struct HostPattern: Sendable {
    enum Namespace: Sendable {
        case any
        case proxyNamespace
        case none
        case named(String)
    }

    var namespace: Namespace
    var host: String

    init?(parsing text: String, sidecarNamespace: String, domainSuffix: String) {
        let parts = text.split(separator: "/", maxSplits: 1)
        guard parts.count == 2 else { return nil }
        switch parts[0] {
        case "*": namespace = .any
        case ".": namespace = .proxyNamespace
        case "~": namespace = .none
        default: namespace = .named(String(parts[0]))
        }
        let hostPart = String(parts[1])
        if case .named(let name) = namespace {
            host = HostName.resolve(hostPart, in: name, domainSuffix: domainSuffix)
        } else {
            host = hostPart == "*" || hostPart.contains(".") ? hostPart.lowercased() : HostName.resolve(hostPart, in: sidecarNamespace, domainSuffix: domainSuffix)
        }
    }

    /// Whether the pattern reaches services of every namespace.
    var isAnyNamespace: Bool {
        if case .any = namespace { return true }
        return false
    }

    /// The one namespace whose services the pattern can match (`nil`: none, or every one).
    func namespaceName(proxyNamespace: String) -> String? {
        switch namespace {
        case .any, .none: nil
        case .proxyNamespace: proxyNamespace
        case .named(let name): name
        }
    }

    func matches(_ service: MeshService, proxyNamespace: String) -> Bool {
        switch namespace {
        case .any: break
        case .none: return false
        case .proxyNamespace: guard service.namespace == proxyNamespace else { return false }
        case .named(let name): guard service.namespace == name else { return false }
        }
        return HostName.matches(service.hostname, pattern: host)
    }
}
