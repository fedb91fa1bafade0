import Foundation

/// A synthetic mesh for benchmarks: `services` HTTP services in namespaces of ten, each with
/// `workloads` WorkloadEntries; every namespace's Sidecar imports its own namespace and
/// `istio-system`, so each proxy reaches its ten neighbours plus the `bench` service the load
/// generator changes.
struct GeneratedMesh {
    struct Node: Codable {
        var namespace: String
        var name: String
        var address: String
        var serviceAccount: String
    }

    var services: Int
    var workloads: Int

    static let servicesPerNamespace = 10
    static let benchNamespace = "istio-system"
    static let benchHost = "bench.istio-system.svc.cluster.local"

    func namespace(of service: Int) -> String { "ns\(service / Self.servicesPerNamespace)" }

    /// A unique loopback address per workload (127.64.0.0/10 and up).
    static func address(_ index: Int) -> String {
        "127.\(64 + index / 65536).\(index / 256 % 256).\(index % 256)"
    }

    var nodes: [Node] {
        (0..<services).flatMap { service in
            (0..<workloads).map { replica in
                Node(
                    namespace: namespace(of: service), name: "svc\(service)-\(replica)",
                    address: Self.address(service * workloads + replica + 1), serviceAccount: "svc\(service)")
            }
        }
    }

    /// The resources, as one multi-document YAML text.
    var yaml: String {
        var documents: [String] = []
        let namespaces = Set((0..<services).map(namespace(of:))).sorted()
        for namespace in namespaces {
            documents.append("""
                apiVersion: networking.istio.io/v1
                kind: Sidecar
                metadata: {name: default, namespace: \(namespace)}
                spec:
                  egress: [{hosts: ["./*", "\(Self.benchNamespace)/*"]}]
                """)
        }
        for service in 0..<services {
            let namespace = namespace(of: service)
            documents.append("""
                apiVersion: networking.istio.io/v1
                kind: ServiceEntry
                metadata: {name: svc\(service), namespace: \(namespace)}
                spec:
                  hosts: [svc\(service).\(namespace).svc.cluster.local]
                  location: MESH_INTERNAL
                  resolution: STATIC
                  ports: [{number: 8080, name: http, protocol: HTTP}]
                  workloadSelector: {labels: {app: svc\(service)}}
                """)
        }
        for node in nodes {
            let app = node.serviceAccount
            documents.append("""
                apiVersion: networking.istio.io/v1
                kind: WorkloadEntry
                metadata: {name: \(node.name), namespace: \(node.namespace)}
                spec: {address: \(node.address), serviceAccount: \(node.serviceAccount), labels: {app: \(app)}}
                """)
        }
        return documents.joined(separator: "\n---\n") + "\n"
    }

    /// The ServiceEntry the load generator rewrites to make a change every proxy receives: its
    /// port (and so the cluster `outbound|<port>||bench...`) changes with `round`.
    static func benchService(round: Int) -> String {
        """
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata: {name: bench, namespace: \(benchNamespace)}
        spec:
          hosts: [\(benchHost)]
          location: MESH_EXTERNAL
          resolution: STATIC
          ports: [{number: \(benchPort(round: round)), name: http, protocol: HTTP}]
          endpoints: [{address: 127.0.0.99}]

        """
    }

    static func benchPort(round: Int) -> Int { 20000 + round }

    static func benchCluster(round: Int) -> String { "outbound|\(benchPort(round: round))||\(benchHost)" }
}
