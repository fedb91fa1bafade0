import Foundation
import Logging
import Metrics
import MetricsTestKit
import Testing
import MeshConfig
import MeshModel

@Suite("All-or-nothing configuration changes")
struct ConfigStoreTests {
    let metrics = TestMetrics()

    func makeStore() -> ConfigStore {
        ConfigStore(logger: Logger(label: "test"), metrics: metrics)
    }

    @Test("a valid change is published as a new revision; an unchanged one is not")
    func accepts() throws {
        let store = makeStore()
        let resources = try ConfigDirectory(path: examplesDirectory).load()
        #expect(store.applyFiles(.success(resources)))
        #expect(store.revision == 1)
        #expect(store.publisher.current.resources.count == resources.count)
        #expect(!store.applyFiles(.success(resources)))
        #expect(store.revision == 1)
    }

    @Test("a refused change keeps the served snapshot, counts and records the reason")
    func rejects() throws {
        let store = makeStore()
        store.applyFiles(.success(try ConfigDirectory(path: examplesDirectory).load()))
        let before = store.publisher.current
        let error = ConfigLoadError(source: "bad.yaml", document: 1, resource: "VirtualService ns/x", path: "spec.hosts", reason: "at least one host is required")
        #expect(!store.applyFiles(.failure(error)))
        #expect(store.revision == before.revision)
        #expect(store.publisher.current.resources == before.resources)
        #expect(store.lastRejection == error)
        #expect(store.rejectionCount == 1)
        #expect(try metrics.expectCounter("meshd_config_rejected_total").values == [1])
    }

    @Test("a refused API change is counted by reason, the config-directory counter untouched")
    func apiRejections() throws {
        let store = makeStore()
        store.recordAPIRejection(of: "VirtualService ns/x", reason: "conflict", message: "exists")
        store.recordAPIRejection(of: "VirtualService ns/y", reason: "invalid", message: "spec.hosts: required")
        store.recordAPIRejection(of: "VirtualService ns/z", reason: "invalid", message: "spec.hosts: required")
        #expect(try metrics.expectCounter("meshd_config_api_rejected_total", [("reason", "conflict")]).totalValue == 1)
        #expect(try metrics.expectCounter("meshd_config_api_rejected_total", [("reason", "invalid")]).totalValue == 2)
        #expect(store.rejectionCount == 0)
    }

    @Test("the watcher applies a valid edit and refuses an invalid one, keeping the old config")
    func watcher() async throws {
        let directory = try temporaryDirectory()
        let entry = { (address: String) in "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: w, namespace: ns}\nspec: {address: \(address)}\n" }
        try entry("127.0.0.2").write(toFile: directory + "/w.yaml", atomically: true, encoding: .utf8)
        let store = makeStore()
        let watcher = ConfigDirectoryWatcher(directory: ConfigDirectory(path: directory), store: store, interval: .milliseconds(20), logger: Logger(label: "test"))
        #expect(watcher.loadNow() == nil)
        let task = Task { await watcher.run() }
        defer { task.cancel() }

        try entry("127.0.0.3").write(toFile: directory + "/w.yaml", atomically: true, encoding: .utf8)
        try await waitFor { store.revision == 2 }
        #expect(store.publisher.current.registry.workload(.init(namespace: "ns", name: "w"))?.address == "127.0.0.3")

        try entry("not-an-ip").write(toFile: directory + "/w.yaml", atomically: true, encoding: .utf8)
        try await waitFor { store.rejectionCount == 1 }
        #expect(store.revision == 2)
        #expect(store.publisher.current.registry.workload(.init(namespace: "ns", name: "w"))?.address == "127.0.0.3")
        #expect(store.lastRejection?.path == "spec.address")
    }

    @Test("mesh.yaml is applied with the resources: a change publishes; an invalid one is refused with its field and keeps the old settings")
    func meshFile() async throws {
        let directory = try temporaryDirectory()
        let mesh = { (sampling: String) in "extensionProviders: [{name: jaeger, zipkin: {service: jaeger.example.com, port: 9411}}]\ndefaultConfig: {tracing: {sampling: \(sampling)}}\n" }
        try mesh("5").write(toFile: directory + "/mesh.yaml", atomically: true, encoding: .utf8)
        let store = makeStore()
        let watcher = ConfigDirectoryWatcher(directory: ConfigDirectory(path: directory), store: store, interval: .milliseconds(20), logger: Logger(label: "test"))
        #expect(watcher.loadNow() == nil)
        #expect(store.publisher.current.mesh.defaultSampling == 5)
        #expect(store.publisher.current.resources.isEmpty, "mesh.yaml is not a resource")
        let task = Task { await watcher.run() }
        defer { task.cancel() }

        try mesh("20").write(toFile: directory + "/mesh.yaml", atomically: true, encoding: .utf8)
        try await waitFor { store.revision == 2 }
        #expect(store.publisher.current.mesh.defaultSampling == 20)

        try "extensionProviders: [{name: x, skywalking: {service: a, port: 1}}]\n".write(toFile: directory + "/mesh.yaml", atomically: true, encoding: .utf8)
        try await waitFor { store.rejectionCount == 1 }
        #expect(store.revision == 2)
        #expect(store.publisher.current.mesh.defaultSampling == 20)
        #expect(store.lastRejection?.source == directory + "/mesh.yaml")
        #expect(store.lastRejection?.path?.hasPrefix("extensionProviders[0]") == true, "\(String(describing: store.lastRejection))")

        // Resources in mesh.yaml (a name meshd once let resource files have) are refused with a hint.
        try "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: w, namespace: ns}\nspec: {address: 127.0.0.2}\n".write(toFile: directory + "/mesh.yaml", atomically: true, encoding: .utf8)
        try await waitFor { store.rejectionCount == 2 }
        #expect(store.lastRejection?.reason.contains("not resources") == true, "\(String(describing: store.lastRejection))")
        #expect(store.publisher.current.mesh.defaultSampling == 20)
    }

    func waitFor(_ condition: () -> Bool) async throws {
        for _ in 0..<200 {
            if condition() { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("condition not met within 4 s")
    }
}
