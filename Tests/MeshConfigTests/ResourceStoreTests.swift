import Foundation
import Logging
import MetricsTestKit
import Testing
import MeshConfig
import MeshModel

@Suite("Resources applied through the API: the stores and the merge with files")
struct ResourceStoreTests {
    static func virtualService(_ name: String, prefix: String = "/") throws -> MeshResource {
        try ResourceDocuments.decode("""
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: \(name), namespace: ns}
            spec: {hosts: [svc], http: [{match: [{uri: {prefix: "\(prefix)"}}], route: [{destination: {host: svc}}]}]}
            """, source: "test").first!.resource
    }

    static func temporaryPath() throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("meshd-store-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return directory
    }

    @Test("SQLite: create, replace with versions, conflicts, delete; everything survives reopening; the file is 0600")
    func sqlite() throws {
        let directory = try Self.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/config.db"
        do {
            let store = try SQLiteResourceStore(path: path)
            let created = try #require(try store.apply(.create(try Self.virtualService("a"))))
            let version = try #require(created.metadata.resourceVersion)
            #expect(throws: ResourceChangeError.self) { try store.apply(.create(try Self.virtualService("a"))) }
            #expect { try store.apply(.replace(try Self.virtualService("a", prefix: "/x"), expectedVersion: "999")) } throws: { error in
                if case .conflict = error as? ResourceChangeError { return true } else { return false }
            }
            let replaced = try #require(try store.apply(.replace(try Self.virtualService("a", prefix: "/x"), expectedVersion: version)))
            #expect(replaced.metadata.resourceVersion != version)
            _ = try store.apply(.create(try Self.virtualService("b")))
            #expect { try store.apply(.delete(ResourceKey(kind: .virtualService, namespace: "ns", name: "zz"), expectedVersion: nil)) } throws: { error in
                if case .notFound = error as? ResourceChangeError { return true } else { return false }
            }
            #expect(try store.apply(.delete(try Self.virtualService("b").key, expectedVersion: nil)) == nil)
        }
        let reopened = try SQLiteResourceStore(path: path)
        let loaded = try reopened.load()
        #expect(loaded.map(\.metadata.name) == ["a"])
        #expect(ConfigJSON.encode(loaded.first!.configValue).contains("/x"))
        let mode = (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue
        #expect(mode == 0o600)
        // Versions keep increasing after a reopen, even past deleted resources.
        let next = try #require(try reopened.apply(.create(try Self.virtualService("c"))))
        #expect(Int(next.metadata.resourceVersion ?? "") ?? 0 > Int(loaded[0].metadata.resourceVersion ?? "") ?? 0)
        // A stored resource that carries a uid keeps meshd's own version when read back (the
        // store reads its documents as written, not as a Kubernetes export).
        var withUID = try Self.virtualService("d")
        withUID.metadata.passthrough["uid"] = .string("k8s-uid")
        let stored = try #require(try reopened.apply(.create(withUID)))
        let reread = try #require(try reopened.load().first { $0.metadata.name == "d" })
        #expect(reread.metadata.resourceVersion == stored.metadata.resourceVersion && reread.metadata.resourceVersion != nil)
    }

    @Test("the API's resources are served with the files'; a file resource is read-only through the API; a file may not redefine an API resource")
    func mergedWithFiles() throws {
        let store = ConfigStore(resourceStore: MemoryResourceStore(), logger: Logger(label: "test"), metrics: TestMetrics())
        let file = try ResourceDocuments.decode("""
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: from-file, namespace: ns}
            spec: {hosts: [svc]}
            """, source: "dir/file.yaml")
        #expect(store.applyFiles(.success(file)))
        try store.applyAPI(.create(try Self.virtualService("from-api")))
        #expect(store.publisher.current.virtualServices.map(\.metadata.name).sorted() == ["from-api", "from-file"])
        #expect(store.source(of: file[0].resource.key) == .file("dir/file.yaml, document 1"))
        #expect(store.source(of: try Self.virtualService("from-api").key) == .api)
        #expect { try store.applyAPI(.delete(file[0].resource.key, expectedVersion: nil)) } throws: { error in
            (error as? ResourceChangeError)?.description.contains("read-only") == true
        }
        // Dry run: checked, not served.
        let revision = store.revision
        try store.applyAPI(.create(try Self.virtualService("dry")), dryRun: true)
        #expect(store.revision == revision && store.publisher.current.virtualServices.count == 2)
        // A file defining what the API defined is refused whole.
        let clash = try ResourceDocuments.decode("""
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: from-api, namespace: ns}
            spec: {hosts: [svc]}
            """, source: "dir/clash.yaml")
        #expect(!store.applyFiles(.success(file + clash)))
        #expect(store.lastRejection?.description.contains("also applied through the API") == true)
        #expect(store.publisher.current.virtualServices.count == 2)
    }
}
