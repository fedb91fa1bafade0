/// A service in the mesh registry: one host of a ServiceEntry.
public struct MeshService: Hashable, Sendable {
    /// One port of the service.
    public struct Port: Hashable, Sendable {
        /// The port clients call.
        public var number: UInt32
        /// The port name (unique within the service).
        public var name: String
        /// The protocol, from the `protocol` field or the name prefix.
        public var serviceProtocol: ServiceProtocol
        /// The port the workloads listen on when their WorkloadEntry does not say; `nil` = `number`.
        public var targetPort: UInt32?

        /// A port.
        public init(number: UInt32, name: String, serviceProtocol: ServiceProtocol, targetPort: UInt32? = nil) {
            self.number = number
            self.name = name
            self.serviceProtocol = serviceProtocol
            self.targetPort = targetPort
        }
    }

    /// The fully qualified host (`governor.tai-system.svc.cluster.local`).
    public var hostname: String
    /// The namespace of the ServiceEntry that defines it.
    public var namespace: String
    /// The ports.
    public var ports: [Port]
    /// Inside or outside the mesh.
    public var location: ServiceEntry.Location
    /// How endpoints are found.
    public var resolution: ServiceEntry.Resolution
    /// Virtual IPs or CIDR blocks of the service.
    public var addresses: [String]
    /// The namespaces that may see the service.
    public var exportTo: ExportScope
    /// The ServiceEntry.
    public var source: ResourceKey
    /// The labels whose WorkloadEntries serve it (`workloadSelector`), if any.
    public var selector: [String: String]?
    /// Extra SANs a client accepts from its endpoints (`subjectAltNames`).
    public var subjectAltNames: [String]

    /// The port with this number, if any.
    public func port(_ number: UInt32) -> Port? {
        ports.first { $0.number == number }
    }

    /// A service.
    public init(
        hostname: String, namespace: String, ports: [Port], location: ServiceEntry.Location = .MESH_INTERNAL,
        resolution: ServiceEntry.Resolution = .STATIC, addresses: [String] = [], exportTo: ExportScope = .everywhere,
        source: ResourceKey, selector: [String: String]? = nil, subjectAltNames: [String] = []
    ) {
        self.hostname = hostname
        self.namespace = namespace
        self.ports = ports
        self.location = location
        self.resolution = resolution
        self.addresses = addresses
        self.exportTo = exportTo
        self.source = source
        self.selector = selector
        self.subjectAltNames = subjectAltNames
    }
}

/// Which namespaces may see a resource (`exportTo`).
public struct ExportScope: Hashable, Sendable {
    /// Every namespace (`*`, and the default).
    public static let everywhere = ExportScope(everywhere: true, namespaces: [])

    let everywhere: Bool
    let namespaces: Set<String>

    init(everywhere: Bool, namespaces: Set<String>) {
        self.everywhere = everywhere
        self.namespaces = namespaces
    }

    /// The scope of an `exportTo` list written in `namespace`: empty means everywhere, `.` the
    /// namespace itself, `~` nowhere, `*` everywhere, other entries those namespaces.
    public init(exportTo: [String]?, namespace: String) {
        let values = exportTo ?? []
        if values.isEmpty || values.contains("*") {
            self = .everywhere
            return
        }
        var namespaces: Set<String> = []
        for value in values {
            switch value {
            case ".": namespaces.insert(namespace)
            case "~": break
            default: namespaces.insert(value)
            }
        }
        self.init(everywhere: false, namespaces: namespaces)
    }

    /// Whether a proxy in `namespace` sees the resource.
    public func isVisible(from namespace: String) -> Bool {
        everywhere || namespaces.contains(namespace)
    }
}
