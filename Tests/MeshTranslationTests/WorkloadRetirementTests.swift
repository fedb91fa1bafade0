import MeshModel
import MeshTranslation
import Testing
import XDSTesting

@Suite("Workload retirement: clients drop a removed workload before its sidecar loses its listeners")
struct WorkloadRetirementTests {
    static let mesh = """
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata: {name: server, namespace: ns}
        spec:
          hosts: [server.ns.svc.cluster.local]
          location: MESH_INTERNAL
          resolution: STATIC
          ports: [{number: 8080, name: http, protocol: HTTP}]
          workloadSelector: {labels: {app: server}}
        ---
        apiVersion: networking.istio.io/v1
        kind: WorkloadEntry
        metadata: {name: client, namespace: ns}
        spec: {address: 127.0.0.2, serviceAccount: client, labels: {app: client}}
        """
    static func server(_ name: String, _ host: Int) -> String {
        """

        ---
        apiVersion: networking.istio.io/v1
        kind: WorkloadEntry
        metadata: {name: \(name), namespace: ns}
        spec: {address: 127.0.0.\(host), serviceAccount: server, labels: {app: server}}
        """
    }

    let a = ServiceRegistry.WorkloadID(namespace: "ns", name: "server-a")
    let b = ServiceRegistry.WorkloadID(namespace: "ns", name: "server-b")
    let client = ServiceRegistry.WorkloadID(namespace: "ns", name: "client")

    @Test("a removed workload with a proxy: wait for the others on the configuration without it, then retire it; one without a proxy is not waited for")
    func removal() throws {
        let both = try snapshot(Self.mesh + Self.server("server-a", 3) + Self.server("server-b", 4))
        let onlyA = try snapshot(Self.mesh + Self.server("server-a", 3))
        var retirement = WorkloadRetirement()
        retirement.retarget(previous: both.registry, next: onlyA.registry, connected: [a, client])
        #expect(retirement.isSettled, "server-b has no proxy: nothing to order")

        retirement.retarget(previous: both.registry, next: onlyA.registry, connected: [a, b, client])
        #expect(retirement.retiring.keys.sorted() == [b])
        #expect(retirement.retiring[b] == both.registry.workload(b))
        #expect(retirement.advance() == .waitForClients(of: [b]))
        #expect(!retirement.isSettled)
        #expect(retirement.advance() == .retire([b]))
        #expect(retirement.isSettled && retirement.advance() == nil)
    }

    @Test("a workload removed while another retires is waited for too; one that comes back stops retiring")
    func overlapping() throws {
        let both = try snapshot(Self.mesh + Self.server("server-a", 3) + Self.server("server-b", 4))
        let onlyA = try snapshot(Self.mesh + Self.server("server-a", 3))
        let none = try snapshot(Self.mesh)
        var retirement = WorkloadRetirement()
        retirement.retarget(previous: both.registry, next: onlyA.registry, connected: [a, b, client])
        #expect(retirement.advance() == .waitForClients(of: [b]))
        retirement.retarget(previous: onlyA.registry, next: none.registry, connected: [a, b, client])
        #expect(retirement.advance() == .waitForClients(of: [a, b]), "server-a's clients were not waited for yet")
        retirement.retarget(previous: none.registry, next: onlyA.registry, connected: [a, b, client])
        #expect(retirement.retiring.keys.sorted() == [b], "server-a is back")
        #expect(retirement.advance() == .retire([b]))
    }

    @Test("while retiring, clients lose the workload's endpoint and its own sidecar keeps its inbound listener")
    func translation() throws {
        let both = try snapshot(Self.mesh + Self.server("server-a", 3) + Self.server("server-b", 4))
        let onlyA = try snapshot(Self.mesh + Self.server("server-a", 3))
        var retirement = WorkloadRetirement()
        retirement.retarget(previous: both.registry, next: onlyA.registry, connected: [a, b, client])
        let staged = onlyA.staged(MTLSStaging(), retiring: retirement.retiring, step: 1)

        let cluster = "outbound|8080||server.ns.svc.cluster.local"
        #expect(try simulator(both, "ns", "client").endpoints(of: cluster).count == 2)
        #expect(try simulator(staged, "ns", "client").endpoints(of: cluster).count == 1)
        let retiring = TrafficSimulator(SidecarTranslator.translate(staged, workload: staged.retiring[b]!).resources)
        #expect(throws: Never.self) { try retiring.listener(address: "127.0.0.4", port: 8080) }
        #expect(staged.registry.workload(b) == nil)
    }
}
