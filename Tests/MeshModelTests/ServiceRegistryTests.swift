import Testing
import MeshModel

@Suite("The registry without Kubernetes")
struct ServiceRegistryTests {
    static func resource(_ document: ConfigValue) throws -> MeshResource {
        try MeshResource(document: document)
    }

    static func serviceEntry(_ name: String, namespace: String, hosts: [String], ports: ConfigValue, selector: [String: String]? = nil, exportTo: [String]? = nil) throws -> MeshResource {
        var spec: ConfigObject = ["hosts": .array(hosts.map(ConfigValue.string)), "ports": ports, "location": "MESH_INTERNAL", "resolution": "STATIC"]
        if let selector { spec["workloadSelector"] = ["labels": .object(ConfigObject(selector.map { ($0.key, .string($0.value)) }))] }
        if let exportTo { spec["exportTo"] = .array(exportTo.map(ConfigValue.string)) }
        return try resource(["apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry", "metadata": ["name": .string(name), "namespace": .string(namespace)], "spec": .object(spec)])
    }

    static func workload(_ name: String, namespace: String, address: String, labels: [String: String], account: String? = nil, ports: [String: Int64] = [:]) throws -> MeshResource {
        var spec: ConfigObject = ["address": .string(address), "labels": .object(ConfigObject(labels.map { ($0.key, .string($0.value)) }))]
        if let account { spec["serviceAccount"] = .string(account) }
        if !ports.isEmpty { spec["ports"] = .object(ConfigObject(ports.map { ($0.key, .int($0.value)) })) }
        return try resource(["apiVersion": "networking.istio.io/v1", "kind": "WorkloadEntry", "metadata": ["name": .string(name), "namespace": .string(namespace)], "spec": .object(spec)])
    }

    @Test("a ServiceEntry's selector picks WorkloadEntries of its own namespace only")
    func selectorScope() throws {
        let snapshot = MeshSnapshot(revision: 1, resources: [
            try Self.serviceEntry("reviews", namespace: "default", hosts: ["reviews"], ports: [["number": 9080, "name": "http"]], selector: ["app": "reviews"]),
            try Self.workload("reviews-v1", namespace: "default", address: "127.0.0.2", labels: ["app": "reviews", "version": "v1"]),
            try Self.workload("reviews-other", namespace: "other", address: "127.0.0.3", labels: ["app": "reviews"]),
        ])
        let service = try #require(snapshot.registry.service(hostname: "reviews.default.svc.cluster.local", visibleFrom: "default"))
        #expect(service.ports.first?.serviceProtocol == .http)
        #expect(snapshot.registry.instances(of: service).map(\.name) == ["reviews-v1"])
        let instance = try #require(snapshot.registry.workload(.init(namespace: "default", name: "reviews-v1")))
        #expect(instance.serviceAccount == "default")
        #expect(instance.identity(trustDomain: "cluster.local").uri == "spiffe://cluster.local/ns/default/sa/default")
        #expect(snapshot.registry.services(servedBy: instance).map(\.hostname) == ["reviews.default.svc.cluster.local"])
    }

    @Test("endpoint ports: WorkloadEntry port by name, else targetPort, else the service port")
    func endpointPorts() {
        let http = MeshService.Port(number: 80, name: "http", serviceProtocol: .http, targetPort: 8080)
        let grpc = MeshService.Port(number: 90, name: "grpc", serviceProtocol: .grpc)
        let instance = WorkloadInstance(name: "w", namespace: "n", address: "127.0.0.2", ports: ["grpc": 9090])
        #expect(instance.endpointPort(for: http) == 8080)
        #expect(instance.endpointPort(for: grpc) == 9090)
        #expect(WorkloadInstance(name: "w", namespace: "n", address: "127.0.0.2").endpointPort(for: grpc) == 90)
    }

    @Test("exportTo limits which namespaces see a service")
    func exportTo() throws {
        let snapshot = MeshSnapshot(revision: 1, resources: [
            try Self.serviceEntry("private", namespace: "a", hosts: ["private.a.svc.cluster.local"], ports: [["number": 80, "name": "http"]], exportTo: ["."]),
        ])
        #expect(snapshot.registry.service(hostname: "private.a.svc.cluster.local", visibleFrom: "a") != nil)
        #expect(snapshot.registry.service(hostname: "private.a.svc.cluster.local", visibleFrom: "b") == nil)
    }

    @Test("protocols come from the protocol field, else the port name prefix, else they are detected per connection")
    func protocols() {
        #expect(ServiceProtocol.of(protocol: "grpc", name: nil) == .grpc)
        #expect(ServiceProtocol.of(protocol: nil, name: "http2-api") == .http2)
        #expect(ServiceProtocol.of(protocol: nil, name: "db") == .auto)
        #expect(ServiceProtocol.of(protocol: "", name: nil) == .auto && ServiceProtocol.auto.isDetected && !ServiceProtocol.auto.isHTTP)
        #expect(ServiceProtocol(istioName: "auto") == nil, "auto is what a port gets by declaring nothing, never a name")
        #expect(ServiceProtocol.of(protocol: nil, name: "mysql-main") == .mysql && !ServiceProtocol.mysql.isDetected)
        #expect(ServiceProtocol.grpc.usesHTTP2 && ServiceProtocol.grpc.isHTTP)
        #expect(!ServiceProtocol.tcp.isHTTP)
    }
}
