import CertificateAuthority
import ControlPlane
import Foundation
import MeshConfig
import MeshModel
import Testing
import XDSTesting

extension EndToEnd {
    /// Envoy's official Python bindings (`xds-protos`) decode what meshd serves.
    @Suite("Conformance with the official Envoy API bindings")
    struct Conformance {
        /// What each example workload must receive.
        static func expectations(token: (String) throws -> String) rethrows -> [[String: Any]] {
            let services = ["coordinator", "governor", "scheduler"].map { "outbound|8080||\($0).tai-system.svc.cluster.local" }
            let workloads = [("governor-v1", 2, "governor"), ("scheduler-v1", 3, "scheduler"), ("coordinator-v1", 4, "coordinator"), ("coordinator-v2", 5, "coordinator")]
            return try workloads.map { name, host, account in
                [
                    "token": try token(account),
                    "sds": ["ROOTCA", "default"],
                    "node": ["id": "sidecar~127.0.0.\(host)~\(name).tai-system~tai-system.svc.cluster.local"],
                    "cds": services + ["inbound|8080||", "outbound|8080|stable|coordinator.tai-system.svc.cluster.local", "outbound|8080|canary|coordinator.tai-system.svc.cluster.local", "tracing|jaeger",
                            "PassthroughCluster"],
                    "eds": services + ["outbound|8080|stable|coordinator.tai-system.svc.cluster.local", "outbound|8080|canary|coordinator.tai-system.svc.cluster.local"],
                    "lds": ["127.0.0.\(host)_8080", "127.0.1.\(host)_8080"],
                    "rds": ["8080"],
                ] as [String: Any]
            }
        }

        @Test("every resource type meshd emits for the example mesh decodes with zero unknown fields and the expected names")
        func exampleMesh() async throws {
            let python = try TestTools.python()
            let files = try FileManager.default.contentsOfDirectory(atPath: TestTools.packageRoot + "/examples/tai-system")
            var contents: [String: String] = [:]
            for file in files where file.hasSuffix(".yaml") {
                contents[file] = try String(contentsOfFile: TestTools.packageRoot + "/examples/tai-system/" + file, encoding: .utf8)
            }
            try await MeshHarness("conformance", files: contents).run { mesh in
            let expectationsPath = mesh.directory + "/expectations.json"
            try JSONSerialization.data(withJSONObject: try Self.expectations { try mesh.token("tai-system", $0) }).write(to: URL(fileURLWithPath: expectationsPath))
            let bundlePath = mesh.directory + "/root.pem"
            try mesh.controlPlane.certificates.trustBundlePEM().write(toFile: bundlePath, atomically: true, encoding: .utf8)
            let check = try ProcessHandle(
                executable: python,
                arguments: [
                    TestTools.packageRoot + "/Tests/Conformance/check_xds.py", "\(mesh.xdsAddress)", expectationsPath,
                    TestTools.packageRoot + "/proto/envoy-api-roots.txt", bundlePath,
                ],
                logPath: mesh.directory + "/conformance.log")
            #expect(await check.waitForExit(timeout: .seconds(60)))
            let report = check.log
            #expect(check.terminationStatus == 0, "conformance report:\n\(report)")
            let parsed = try #require(try JSONSerialization.jsonObject(with: Data(report.utf8)) as? [[String: Any]], "not JSON: \(report)")
            #expect(parsed.count == 4)
            for entry in parsed {
                #expect((entry["problems"] as? [String]) == [], "\(entry["node"] ?? "?"): \(entry["problems"] ?? "")")
                let counts = entry["counts"] as? [String: Int] ?? [:]
                #expect(counts["cds"] == 8 && counts["eds"] == 5 && counts["lds"] == 2 && counts["rds"] == 1 && counts["sds"] == 2, "\(counts)")
            }
            }
        }
    }
}
