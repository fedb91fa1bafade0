/// Services and workloads without Kubernetes: services from ServiceEntries, workloads from
/// WorkloadEntries (and inline ServiceEntry endpoints), joined by `workloadSelector` within a
/// namespace — the way Istio runs VMs.
public struct ServiceRegistry: Sendable {
    /// Identifies a service: its host and the namespace of its ServiceEntry.
    public struct ServiceID: Hashable, Sendable, Comparable {
        /// The host.
        public var hostname: String
        /// The namespace.
        public var namespace: String

        public static func < (lhs: ServiceID, rhs: ServiceID) -> Bool {
            (lhs.hostname, lhs.namespace) < (rhs.hostname, rhs.namespace)
        }
    }

    /// Identifies a workload: namespace and WorkloadEntry name.
    public struct WorkloadID: Hashable, Sendable, Comparable, CustomStringConvertible {
        /// The namespace.
        public var namespace: String
        /// The WorkloadEntry name.
        public var name: String

        /// A workload id.
        public init(namespace: String, name: String) {
            self.namespace = namespace
            self.name = name
        }

        public var description: String { "\(namespace)/\(name)" }

        public static func < (lhs: WorkloadID, rhs: WorkloadID) -> Bool {
            (lhs.namespace, lhs.name) < (rhs.namespace, rhs.name)
        }
    }

    /// Every service, sorted by host then namespace.
    public let services: [MeshService]
    /// Every WorkloadEntry, by id.
    public let workloads: [WorkloadID: WorkloadInstance]
    /// The workloads that take no traffic (their probe fails).
    public let unready: Set<WorkloadID>
    private let instancesByService: [ServiceID: [WorkloadInstance]]
    private let servicesByHost: [String: [MeshService]]
    /// Positions in `services` of each namespace's services, ascending.
    private let serviceIndexesByNamespace: [String: [Int]]

    /// Builds the registry. Hosts without a dot resolve in the ServiceEntry's namespace.
    /// Workloads in `unready` (failing their probe) are behind no service; their own proxies are
    /// still served.
    public init(
        serviceEntries: [Configured<ServiceEntry>], workloadEntries: [Configured<WorkloadEntry>], unready: Set<WorkloadID> = [],
        domainSuffix: String = HostName.defaultDomainSuffix
    ) {
        self.unready = unready
        var workloads: [WorkloadID: WorkloadInstance] = [:]
        var workloadsByNamespace: [String: [WorkloadInstance]] = [:]
        for entry in workloadEntries {
            let instance = WorkloadInstance(entry: entry.spec, name: entry.metadata.name, namespace: entry.metadata.namespace, source: entry.key)
            workloads[WorkloadID(namespace: instance.namespace, name: instance.name)] = instance
            workloadsByNamespace[instance.namespace, default: []].append(instance)
        }
        for key in workloadsByNamespace.keys { workloadsByNamespace[key]!.sort { $0.name < $1.name } }

        var services: [MeshService] = []
        var instances: [ServiceID: [WorkloadInstance]] = [:]
        for entry in serviceEntries {
            let namespace = entry.metadata.namespace
            let spec = entry.spec
            let ports = (spec.ports ?? []).map {
                MeshService.Port(
                    number: $0.number, name: $0.name,
                    serviceProtocol: .of(protocol: $0.protocol, name: $0.name),
                    targetPort: $0.targetPort)
            }
            let selector = spec.workloadSelector?.labels
            var members: [WorkloadInstance] = []
            if let selector {
                members = (workloadsByNamespace[namespace] ?? []).filter {
                    $0.matches(selector) && !unready.contains(WorkloadID(namespace: $0.namespace, name: $0.name))
                }
            }
            for (index, endpoint) in (spec.endpoints ?? []).enumerated() {
                members.append(WorkloadInstance(entry: endpoint, name: "\(entry.metadata.name)/\(index)", namespace: namespace, source: nil))
            }
            for host in spec.hosts {
                let service = MeshService(
                    hostname: HostName.resolve(host, in: namespace, domainSuffix: domainSuffix), namespace: namespace, ports: ports,
                    location: spec.location ?? .MESH_EXTERNAL, resolution: spec.resolution ?? .NONE,
                    addresses: spec.addresses ?? [], exportTo: ExportScope(exportTo: spec.exportTo, namespace: namespace),
                    source: entry.key, selector: selector, subjectAltNames: spec.subjectAltNames ?? [])
                services.append(service)
                instances[ServiceID(hostname: service.hostname, namespace: namespace), default: []] += members
            }
        }
        services.sort { ($0.hostname, $0.namespace, $0.source.name) < ($1.hostname, $1.namespace, $1.source.name) }
        self.services = services
        self.workloads = workloads
        self.instancesByService = instances
        self.servicesByHost = Dictionary(grouping: services, by: \.hostname)
        var byNamespace: [String: [Int]] = [:]
        for (index, service) in services.enumerated() { byNamespace[service.namespace, default: []].append(index) }
        self.serviceIndexesByNamespace = byNamespace
    }

    /// Positions in ``services`` of the services defined in `namespace`, ascending.
    public func serviceIndexes(inNamespace namespace: String) -> [Int] {
        serviceIndexesByNamespace[namespace] ?? []
    }

    /// The workloads behind a service.
    public func instances(of service: MeshService) -> [WorkloadInstance] {
        instancesByService[ServiceID(hostname: service.hostname, namespace: service.namespace)] ?? []
    }

    /// The services whose ServiceEntry selects `workload` (the services it serves).
    public func services(servedBy workload: WorkloadInstance) -> [MeshService] {
        serviceIndexes(inNamespace: workload.namespace).map { services[$0] }.filter { service in
            service.selector.map { workload.matches($0) } == true
        }
    }

    /// The service a proxy in `namespace` reaches for `hostname`: the one defined in its own
    /// namespace if there is one, else the first visible one (by namespace name).
    public func service(hostname: String, visibleFrom namespace: String) -> MeshService? {
        let candidates = (servicesByHost[hostname] ?? []).filter { $0.exportTo.isVisible(from: namespace) }
        return candidates.first { $0.namespace == namespace } ?? candidates.first
    }

    /// The workload of a WorkloadEntry.
    public func workload(_ id: WorkloadID) -> WorkloadInstance? {
        workloads[id]
    }
}
