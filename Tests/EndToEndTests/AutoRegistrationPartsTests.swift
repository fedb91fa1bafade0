@testable import ControlPlane
import EnvoyAPI
import Foundation
import Logging
import MeshConfig
import MeshModel
import Metrics
import SwiftProtobuf
import Testing
import XDSTesting

@Suite("Auto-registration, part by part: the node, the entry, the ledger, the registrar on a real store")
struct AutoRegistrationPartsTests {
    static func node(_ metadata: [String: String], id: String = "sidecar~10.0.0.7~vm-1.vms~vms.svc.cluster.local") -> Envoy_Config_Core_V3_Node {
        var node = Envoy_Config_Core_V3_Node()
        node.id = id
        for (key, value) in metadata { node.metadata.fields[key] = Google_Protobuf_Value(stringValue: value) }
        return node
    }

    @Test("AUTO_REGISTER_GROUP names the entry as Istio does, from INSTANCE_IPS (else the node id's address); LABELS and node.locality are read")
    func nodeIdentity() throws {
        var node = Self.node(["AUTO_REGISTER_GROUP": "vm", "INSTANCE_IPS": "10.0.0.9,10.0.0.10"])
        var labels = Google_Protobuf_Struct()
        labels.fields["version"] = Google_Protobuf_Value(stringValue: "v2")
        node.metadata.fields["LABELS"] = Google_Protobuf_Value(structValue: labels)
        node.locality.region = "r1"
        node.locality.zone = "z2"
        let identity = try NodeIdentity(node: node)
        #expect(identity.workload.description == "vms/vm-10.0.0.9" && identity.address == "10.0.0.9" && identity.autoRegisterGroup == "vm")
        #expect(identity.labels == ["version": "v2"] && identity.locality == "r1/z2")
        let fromID = try NodeIdentity(node: Self.node(["AUTO_REGISTER_GROUP": "vm"]))
        #expect(fromID.workload.name == "vm-10.0.0.7")
        #expect(throws: NodeIdentity.IdentityError.self) { try NodeIdentity(node: Self.node(["AUTO_REGISTER_GROUP": "vm", "NAMESPACE": "vms"], id: "no-address")) }
        #expect(throws: NodeIdentity.IdentityError.self) { try NodeIdentity(node: Self.node(["AUTO_REGISTER_GROUP": "Not_A_Name"])) }
        #expect(throws: NodeIdentity.IdentityError.self) { try NodeIdentity(node: Self.node(["AUTO_REGISTER_GROUP": "vm", "INSTANCE_IPS": "vm.example.com"])) }
    }

    static let group = Configured(
        metadata: ObjectMeta(name: "vm", namespace: "vms", annotations: [:]),
        spec: WorkloadGroup(
            metadata: WorkloadGroupMetadata(labels: ["app": "vm", "version": "v1"], annotations: ["team": "infra"]),
            template: WorkloadEntry(labels: ["tier": "backend", "version": "v0"], locality: "r1/z1", serviceAccount: "vm")),
        kind: .workloadGroup)

    @Test("the entry: the template with the proxy's address, labels template < group < proxy, the proxy's locality, Istio's annotations and owner")
    func entry() throws {
        var node = Self.node(["AUTO_REGISTER_GROUP": "vm"])
        var labels = Google_Protobuf_Struct()
        labels.fields["version"] = Google_Protobuf_Value(stringValue: "v2")
        node.metadata.fields["LABELS"] = Google_Protobuf_Value(structValue: labels)
        node.locality.region = "r2"
        let now = Date(timeIntervalSince1970: 1_800_000_000.25)
        let entry = AutoRegistration.entry(for: try NodeIdentity(node: node), group: Self.group, now: now, controller: "meshd@test")
        #expect(entry.key == ResourceKey(kind: .workloadEntry, namespace: "vms", name: "vm-10.0.0.7"))
        guard case .workloadEntry(let spec) = entry.spec else { Issue.record("not a WorkloadEntry"); return }
        #expect(spec.address == "10.0.0.7" && spec.serviceAccount == "vm" && spec.locality == "r2")
        #expect(spec.labels == ["tier": "backend", "app": "vm", "version": "v2"])
        #expect(entry.metadata.annotations["istio.io/autoRegistrationGroup"] == "vm" && entry.metadata.annotations["istio.io/workloadController"] == "meshd@test")
        #expect(entry.metadata.annotations["team"] == "infra")
        let connected = try #require(entry.metadata.annotations["istio.io/connectedAt"])
        #expect(AutoRegistration.parseTimestamp(connected) == now, "\(connected)")
        let nanoseconds = AutoRegistration.parseTimestamp("2027-01-15T08:00:00.123456789Z")
        #expect(nanoseconds != nil && nanoseconds == AutoRegistration.parseTimestamp("2027-01-15T08:00:00.123Z"), "Istio's nanoseconds are read")
        #expect(Validation.problems(of: entry).isEmpty)
    }

    @Test("the ledger: an entry goes the grace period after its last stream closes; a stream opening meanwhile keeps it; at start, stored entries count as disconnected")
    func ledger() {
        let a = ServiceRegistry.WorkloadID(namespace: "vms", name: "a")
        let b = ServiceRegistry.WorkloadID(namespace: "vms", name: "b")
        let t0 = Date(timeIntervalSince1970: 1000)
        var ledger = AutoRegistrationLedger()
        ledger.connected(a)
        ledger.connected(a)
        let firstClosed = ledger.disconnected(a, at: t0)
        #expect(!firstClosed, "one stream of two closed")
        #expect(ledger.due(at: t0.addingTimeInterval(60), grace: 10).isEmpty)
        let lastClosed = ledger.disconnected(a, at: t0)
        #expect(lastClosed)
        #expect(ledger.due(at: t0.addingTimeInterval(9), grace: 10).isEmpty)
        #expect(ledger.due(at: t0.addingTimeInterval(10), grace: 10) == [a])
        ledger.connected(a)
        #expect(ledger.due(at: t0.addingTimeInterval(60), grace: 10).isEmpty, "it came back")
        let neverCounted = ledger.disconnected(b, at: t0)
        #expect(!neverCounted, "never counted")
        ledger.unconnected(b, since: t0)
        ledger.unconnected(a, since: t0)
        #expect(ledger.due(at: t0.addingTimeInterval(10), grace: 10) == [b], "a has a stream open")
        ledger.removed(b)
        #expect(ledger.due(at: t0.addingTimeInterval(100), grace: 10).isEmpty)
    }

    final class Clock: @unchecked Sendable {
        var now = Date(timeIntervalSince1970: 2_000_000)
    }

    @Test("the registrar on SQLite: register, disconnect, reconnect, sweep after the grace period; a new registrar (meshd restarted) removes what did not come back; probe reports are kept across restarts and dropped with the entry")
    func registrar() throws {
        let directory = try TestTools.temporaryDirectory("registrar")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let clock = Clock()
        func makeStore() throws -> ConfigStore {
            let store = ConfigStore(resourceStore: try SQLiteResourceStore(path: directory + "/config.db"), logger: Logger(label: "test"), metrics: NOOPMetricsHandler.instance)
            try store.loadStoredResources()
            return store
        }
        let logger = Logger(label: "test")
        var store = try makeStore()
        #expect(store.applyFiles(.success([SourcedResource(resource: MeshResource(metadata: Self.group.metadata, spec: .workloadGroup(Self.group.spec)), source: "groups.yaml", document: 1)])))
        var registrar = WorkloadAutoRegistrar(store: store, grace: 10, healthPath: directory + "/health.json", clock: { clock.now }, logger: logger)
        var ids: [ServiceRegistry.WorkloadID] = []
        for address in ["10.0.0.1", "10.0.0.2"] {
            let identity = try NodeIdentity(node: Self.node(["AUTO_REGISTER_GROUP": "vm", "INSTANCE_IPS": address]))
            _ = try registrar.register(AutoRegistration.entry(for: identity, group: Self.group, now: clock.now, controller: "meshd"))
            registrar.connected(identity.workload)
            ids.append(identity.workload)
        }
        #expect(store.storedResources.filter { $0.autoRegistrationGroup == "vm" }.count == 2)
        #expect(registrar.report(ids[0], WorkloadHealth(healthy: false, message: "refused")))
        #expect(!registrar.report(.init(namespace: "vms", name: "hand-written"), WorkloadHealth(healthy: true)), "only registered workloads take reports")

        registrar.disconnected(ids[0])
        #expect(store.storedResource(ResourceKey(kind: .workloadEntry, namespace: "vms", name: ids[0].name))?.metadata.annotations["istio.io/disconnectedAt"] != nil)
        clock.now += 5
        #expect(registrar.sweep().isEmpty)
        registrar.connected(ids[0])
        #expect(store.storedResource(ResourceKey(kind: .workloadEntry, namespace: "vms", name: ids[0].name))?.metadata.annotations["istio.io/disconnectedAt"] == nil, "reconnected")
        clock.now += 60
        #expect(registrar.sweep().isEmpty, "both connected")

        // meshd restarts: nothing is connected to the new one; only ids[1] comes back.
        store = try makeStore()
        registrar = WorkloadAutoRegistrar(store: store, grace: 10, healthPath: directory + "/health.json", clock: { clock.now }, logger: logger)
        #expect(store.applyFiles(.success([SourcedResource(resource: MeshResource(metadata: Self.group.metadata, spec: .workloadGroup(Self.group.spec)), source: "groups.yaml", document: 1)])))
        #expect(store.health[ids[0]] == WorkloadHealth(healthy: false, message: "refused"), "the report is kept across the restart")
        #expect(store.publisher.current.healthCondition(of: ids[0])?.status == "False")
        registrar.connected(ids[1])
        clock.now += 9
        #expect(registrar.sweep().isEmpty)
        clock.now += 1
        #expect(registrar.sweep() == [ids[0]])
        #expect(store.storedResources.filter { $0.autoRegistrationGroup == "vm" }.map(\.metadata.name) == [ids[1].name])
        #expect(store.health[ids[0]] == nil, "its report went with it")
        let kept = try JSONDecoder().decode([String: WorkloadHealth].self, from: try #require(FileManager.default.contents(atPath: directory + "/health.json")))
        #expect(kept.isEmpty)
    }
}
