import EnvoyAPI
import Foundation
import MeshConfig
import MeshModel
import MeshTranslation
import Testing
import XDSTesting

@Suite("Dry-run diffs: what a change would do to each proxy")
struct ConfigurationDiffTests {
    /// The example mesh with `resources` added (replacing those of the same key).
    static func adding(_ yaml: String, to base: MeshSnapshot) throws -> MeshSnapshot {
        base.adding(try ResourceDocuments.decode(yaml, source: "change.yaml").map(\.resource))
    }

    static var canary: String {
        get throws {
            try String(contentsOfFile: TestTools.packageRoot + "/examples/tai-system/coordinator-canary.yaml", encoding: .utf8)
        }
    }

    @Test("the ADR's canary moving to 50/50 changes exactly the proxies that route to coordinator, and shows the weights")
    func canaryWeights() throws {
        let base = try exampleSnapshot()
        let changed = try Self.canary.replacingOccurrences(of: "weight: 90", with: "weight: 50").replacingOccurrences(of: "weight: 10\n", with: "weight: 50\n")
        let diff = ConfigurationDiff.between(base, try Self.adding(changed, to: base))
        // The callers: every proxy with a route configuration naming coordinator's host.
        var callers: [String] = []
        for id in base.registry.workloads.keys.sorted() {
            let resources = try SidecarTranslator.translate(base, workload: id).resources
            let routes = resources.resources(ofType: XDSTypeURL.route).values.compactMap { try? EnvoyJSON.string($0.body) }
            if routes.contains(where: { $0.contains("coordinator.tai-system.svc.cluster.local") }) { callers.append("\(id.namespace)/\(id.name)") }
        }
        #expect(!callers.isEmpty)
        #expect(diff.proxies.map(\.workload) == callers)
        #expect(diff.unchanged == base.registry.workloads.count - callers.count)
        for proxy in diff.proxies {
            #expect(proxy.resources.map { "\($0.change) \($0.type)" } == ["changed rds"], "\(proxy)")
            let weights = proxy.resources.flatMap(\.fields).filter { $0.path.hasSuffix(".weight") }
            #expect(weights.map { "\($0.before ?? "-")→\($0.after ?? "-")" }.sorted() == ["10→50", "90→50"], "\(proxy.resources)")
        }
        #expect(diff.warnings.isEmpty)
    }

    @Test("STRICT to DISABLE warns that traffic goes from mTLS to plaintext; removing a service's only route warns who loses it; a no-op changes no proxy")
    func warnings() throws {
        let base = try exampleSnapshot()
        let disable = """
            apiVersion: security.istio.io/v1
            kind: PeerAuthentication
            metadata: {name: default, namespace: tai-system}
            spec: {mtls: {mode: DISABLE}}
            """
        let plaintext = ConfigurationDiff.between(base, try Self.adding(disable, to: base))
        #expect(!plaintext.proxies.isEmpty)
        #expect(plaintext.warnings.contains { $0.contains("changes from mTLS to plaintext") && $0.contains("coordinator.tai-system.svc.cluster.local") }, "\(plaintext.warnings)")

        let same = ConfigurationDiff.between(base, try Self.adding(try Self.canary, to: base))
        #expect(same.proxies.isEmpty && same.warnings.isEmpty && same.unchanged == base.registry.workloads.count)

        // Without coordinator's ServiceEntry, its callers lose their route to it.
        let withoutCoordinator = MeshSnapshot(
            revision: 2, settings: base.settings, mesh: base.mesh,
            resources: base.allResources.filter { !($0.kind == .serviceEntry && $0.metadata.name == "coordinator") })
        let lost = ConfigurationDiff.between(base, withoutCoordinator)
        #expect(lost.warnings.contains { $0.contains("lose their route to coordinator.tai-system.svc.cluster.local") }, "\(lost.warnings)")
        #expect(lost.proxies.contains { $0.resources.contains { $0.change == "removed" && $0.type == "cds" } })
    }
}
