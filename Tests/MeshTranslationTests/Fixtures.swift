import EnvoyAPI
import Foundation
import MeshConfig
import MeshModel
import MeshTranslation
import Testing
import XDSTesting

/// Records an issue for each resource that does not print as Envoy JSON (`meshctl proxy-config`):
/// a type packed into an `Any` that `EnvoyJSON` does not know.
func expectPrintable(_ resources: XDSResourceSet, sourceLocation: SourceLocation = #_sourceLocation) {
    for type in resources.byType.keys.sorted() {
        for resource in resources.sortedResources(ofType: type) {
            do {
                _ = try EnvoyJSON.string(resource.body)
            } catch {
                Issue.record("\(resource.name) does not print as JSON: \(error)", sourceLocation: sourceLocation)
            }
        }
    }
}

/// The example mesh of examples/tai-system as a snapshot.
func exampleSnapshot() throws -> MeshSnapshot {
    let directory = ConfigDirectory(path: TestTools.packageRoot + "/examples/tai-system")
    return MeshSnapshot(revision: 1, mesh: try directory.loadMesh(), resources: try directory.load().map(\.resource))
}

/// A snapshot of the resources in `yaml`.
func snapshot(_ yaml: String) throws -> MeshSnapshot {
    MeshSnapshot(revision: 1, resources: try ResourceDocuments.decode(yaml, source: "test.yaml").map(\.resource))
}

/// The translation of one workload, as a simulator.
func simulator(_ snapshot: MeshSnapshot, _ namespace: String, _ name: String) throws -> TrafficSimulator {
    TrafficSimulator(try SidecarTranslator.translate(snapshot, workload: .init(namespace: namespace, name: name)).resources)
}

let twoNamespaces = """
    apiVersion: networking.istio.io/v1
    kind: ServiceEntry
    metadata: {name: ratings, namespace: shop}
    spec:
      hosts: [ratings]
      location: MESH_INTERNAL
      resolution: STATIC
      ports: [{number: 9080, name: http}]
      workloadSelector: {labels: {app: ratings}}
    ---
    apiVersion: networking.istio.io/v1
    kind: ServiceEntry
    metadata: {name: db, namespace: shop}
    spec:
      hosts: [db.shop.svc.cluster.local]
      location: MESH_INTERNAL
      resolution: STATIC
      ports: [{number: 5432, name: tcp-postgres, targetPort: 15432}]
      workloadSelector: {labels: {app: db}}
    ---
    apiVersion: networking.istio.io/v1
    kind: ServiceEntry
    metadata: {name: secret, namespace: vault}
    spec:
      hosts: [secret.vault.svc.cluster.local]
      location: MESH_INTERNAL
      resolution: STATIC
      exportTo: ["."]
      ports: [{number: 8200, name: http}]
      workloadSelector: {labels: {app: secret}}
    ---
    apiVersion: networking.istio.io/v1
    kind: WorkloadEntry
    metadata: {name: ratings-1, namespace: shop}
    spec: {address: 127.0.0.10, labels: {app: ratings}, serviceAccount: ratings}
    ---
    apiVersion: networking.istio.io/v1
    kind: WorkloadEntry
    metadata: {name: db-1, namespace: shop}
    spec: {address: 127.0.0.11, labels: {app: db}}
    ---
    apiVersion: networking.istio.io/v1
    kind: WorkloadEntry
    metadata: {name: client, namespace: web}
    spec: {address: 127.0.0.12, labels: {app: client}}
    ---
    apiVersion: networking.istio.io/v1
    kind: WorkloadEntry
    metadata: {name: secret-1, namespace: vault}
    spec: {address: 127.0.0.13, labels: {app: secret}}
    """
