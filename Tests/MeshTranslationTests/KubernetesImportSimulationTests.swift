import Foundation
import MeshConfig
import MeshModel
import MeshTranslation
import Testing
import XDSTesting

@Suite("An imported Kubernetes export routes as the example mesh it came from (simulated)")
struct KubernetesImportSimulationTests {
    /// The governor's view of coordinator: the canary tester's route and everyone else's split.
    static func coordinatorRoutes(_ snapshot: MeshSnapshot, governor: String) throws -> (tester: [String], split: [UInt32], canaryEndpoints: [String]) {
        let simulator = try simulator(snapshot, "tai-system", governor)
        let request = TrafficSimulator.HTTPRequest(address: "127.0.1.2", port: 8080, authority: "coordinator", path: "/tai.Governor/Status")
        var tester = request
        tester.headers = ["user-agent": "canary-tester"]
        let canary = try simulator.http(tester)
        let everyone = try simulator.http(request)
        return (canary.clusters.map(\.name), everyone.clusters.map(\.weight), try simulator.endpoints(of: canary.clusters[0].name))
    }

    @Test("examples/kubernetes-import through meshctl import's conversion, plus the example's Sidecars: the same clusters, weights and endpoints as examples/tai-system")
    func sameRouting() throws {
        let export = try String(contentsOfFile: TestTools.packageRoot + "/examples/kubernetes-import/tai-system-export.yaml", encoding: .utf8)
        let inputs = try ResourceDocuments.documents(export, source: "export.yaml").map { KubernetesImport.Input(source: "export.yaml", document: $0) }
        let imported = KubernetesImport.convert(inputs)
        #expect(imported.errors.isEmpty)
        let sidecars = try ResourceDocuments.decode(try String(contentsOfFile: TestTools.packageRoot + "/examples/tai-system/sidecars.yaml", encoding: .utf8), source: "sidecars.yaml")
        let importedSnapshot = MeshSnapshot(revision: 1, resources: imported.resources + sidecars.map(\.resource))
        let fromImport = try Self.coordinatorRoutes(importedSnapshot, governor: "governor-v1-7c9d8f6b5d-x2lqp")
        let fromExample = try Self.coordinatorRoutes(try exampleSnapshot(), governor: "governor-v1")
        #expect(fromImport.tester == ["outbound|8080|canary|coordinator.tai-system.svc.cluster.local"])
        #expect(fromImport.split == [90, 10] && fromImport.canaryEndpoints == ["127.0.0.5:8080"])
        #expect(fromImport.tester == fromExample.tester && fromImport.split == fromExample.split && fromImport.canaryEndpoints == fromExample.canaryEndpoints)
    }
}
