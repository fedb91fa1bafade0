import ControlPlane
import Foundation
import MeshModel
import Testing
import XDSTesting

extension EndToEnd {
    /// Moving a mesh off Kubernetes: the ADR's mesh as kubectl exports it, through
    /// `meshctl import kubernetes`, served by meshd to real Envoys (addresses 127.32.x.y).
    @Suite("meshctl import kubernetes: an exported Istio mesh on meshd")
    struct KubernetesImport {
        static let pods = (
            governor: "governor-v1-7c9d8f6b5d-x2lqp", coordinatorV1: "coordinator-v1-5b8f7d9c6c-q4wnv", coordinatorV2: "coordinator-v2-84d6c7b9f8-p7rjd")

        @Test("the ADR's mesh exported from Kubernetes imports without edits: canary split, authorization and STRICT mTLS hold as with examples/tai-system; a bad export writes nothing; meshctl apply and analyze take a List export")
        func importedMesh() async throws {
            let directory = try TestTools.temporaryDirectory("k8s-import")
            defer { try? FileManager.default.removeItem(atPath: directory) }
            // Only the addresses move (to 127.32.x.y); the export is used as written.
            let export = try String(contentsOfFile: TestTools.packageRoot + "/examples/kubernetes-import/tai-system-export.yaml", encoding: .utf8)
                .replacingOccurrences(of: "127.0.", with: "127.32.")
            let exportPath = directory + "/export.yaml", output = directory + "/imported"
            try export.write(toFile: exportPath, atomically: true, encoding: .utf8)

            // A bad export (a kind meshd does not import) writes nothing.
            let bad = export + "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: governor-v1, namespace: tai-system}\nspec: {}\n"
            try bad.write(toFile: directory + "/bad.yaml", atomically: true, encoding: .utf8)
            let refused = try await meshctl(["import", "kubernetes", "-f", directory + "/bad.yaml", "-o", output], in: directory)
            #expect(refused.status != 0 && refused.output.contains("bad.yaml, document 2 (Deployment tai-system/governor-v1): meshd does not import Deployment"), "\(refused.output)")
            #expect(refused.output.contains("nothing was written") && !FileManager.default.fileExists(atPath: output))

            let imported = try await meshctl(["import", "kubernetes", "-f", exportPath, "-o", output], in: directory)
            #expect(imported.status == 0 && imported.output.contains("imported 12 resources"), "\(imported.output)")
            let files = [
                "tai-system.yaml": try String(contentsOfFile: output + "/tai-system.yaml", encoding: .utf8),
                // Without traffic capture each sidecar needs its egress bind and inbound endpoint
                // (docs/ADDRESSING.md): the example's Sidecars, as docs/MIGRATION.md says.
                "sidecars.yaml": try String(contentsOfFile: TestTools.packageRoot + "/examples/tai-system/sidecars.yaml", encoding: .utf8)
                    .replacingOccurrences(of: "127.0.", with: "127.32."),
            ]
            try await MeshHarness("k8s-import-mesh", files: files).run { mesh in
                let v1 = try await mesh.startApp("coordinator-v1", host: "127.32.2.4", port: 8080)
                try await mesh.startApp("coordinator-v2", host: "127.32.2.5", port: 8080)
                for pod in [Self.pods.coordinatorV1, Self.pods.coordinatorV2, Self.pods.governor] { try await mesh.startSidecar("tai-system", pod) }
                let egress = HostPort(host: "127.32.1.2", port: 8080)
                func call(_ path: String = "/tai.Governor/Status", tester: Bool = false) async throws -> HTTPProbe.Response {
                    try await HTTPProbe.request(egress, authority: "coordinator", path: path, headers: tester ? [("user-agent", "canary-tester")] : [])
                }
                // The canary: testers always reach v2; everyone else 90/10.
                for _ in 0..<20 { #expect(try await call(tester: true).body == "coordinator-v2\n") }
                var tally: [String: Int] = [:]
                for _ in 0..<10 {
                    await withTaskGroup(of: String.self) { group in
                        for _ in 0..<80 { group.addTask { (try? await call())?.body ?? "error" } }
                        for await body in group { tally[body, default: 0] += 1 }
                    }
                }
                let canary = Double(tally["coordinator-v2\n"] ?? 0) / 800
                #expect(tally["error"] == nil && abs(canary - 0.10) <= 0.04, "canary share \(canary) of \(tally)")
                // coordinator-authz: governor may call the Governor API, nothing else.
                #expect(try await call("/other").status == 403)
                // STRICT mTLS: the call carried governor's identity; plaintext straight to
                // coordinator's sidecar is refused.
                let xfcc = try #require(v1.requests.last?.headers["x-forwarded-client-cert"])
                #expect(xfcc.contains("spiffe://cluster.local/ns/tai-system/sa/governor"), "\(xfcc)")
                let plaintext = try? await HTTPProbe.request(HostPort(host: "127.32.0.4", port: 8080), authority: "coordinator", timeout: .seconds(2))
                #expect(plaintext == nil, "STRICT refuses plaintext: \(String(describing: plaintext?.status))")
                #expect(try await mesh.envoyHealthProblems() == [])

                // meshctl apply takes kubectl's List form and drops what the API server set.
                let list = """
                    apiVersion: v1
                    kind: List
                    metadata: {resourceVersion: ""}
                    items:
                    - apiVersion: networking.istio.io/v1
                      kind: VirtualService
                      metadata: {name: governor-timeout, namespace: tai-system, uid: 5e1c, resourceVersion: "90210", managedFields: []}
                      spec: {hosts: [governor], http: [{timeout: 5s, route: [{destination: {host: governor}}]}]}
                      status: {observedGeneration: 1}
                    """
                try list.write(toFile: directory + "/list.yaml", atomically: true, encoding: .utf8)
                let applied = try await meshctl(
                    ["apply", "-f", directory + "/list.yaml", "--server", "http://\(mesh.adminAddress)", "--data-dir", mesh.controlPlane.options.dataDirectory], in: directory)
                #expect(applied.status == 0 && applied.output.contains("VirtualService tai-system/governor-timeout created"), "\(applied.output)")
                let stored = try await mesh.admin("/apis/networking.istio.io/v1/namespaces/tai-system/virtualservices/governor-timeout")
                #expect(stored.status == 200 && !stored.body.contains("5e1c") && !stored.body.contains("90210"), "\(stored.body)")

                // meshctl analyze -f takes a List too, and applies nothing.
                let broken = list.replacingOccurrences(of: "governor-timeout", with: "broken-route").replacingOccurrences(of: "host: governor}", with: "host: nowhere}")
                try broken.write(toFile: directory + "/broken.yaml", atomically: true, encoding: .utf8)
                let analyzed = try await meshctl(
                    ["analyze", "-f", directory + "/broken.yaml", "--server", "http://\(mesh.adminAddress)", "--data-dir", mesh.controlPlane.options.dataDirectory], in: directory)
                #expect(analyzed.status == 1 && analyzed.output.contains("[IST0101]") && analyzed.output.contains("broken-route"), "\(analyzed.output)")
                #expect(try await mesh.admin("/apis/networking.istio.io/v1/namespaces/tai-system/virtualservices/broken-route").status == 404)
            }
        }
    }
}
