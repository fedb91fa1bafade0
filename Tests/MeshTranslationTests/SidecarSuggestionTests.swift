import Foundation
import MeshConfig
import MeshModel
import MeshTranslation
import Testing

@Suite("meshctl sidecar suggest: a Sidecar importing what a workload uses")
struct SidecarSuggestionTests {
    /// The example mesh with governor's Sidecar importing every namespace, as Istio's default.
    static func wideGovernor() throws -> MeshSnapshot {
        let base = try exampleSnapshot()
        let wide = """
            apiVersion: networking.istio.io/v1
            kind: Sidecar
            metadata: {name: governor-v1, namespace: tai-system}
            spec:
              workloadSelector: {labels: {app: governor, version: v1}}
              ingress:
              - port: {number: 8080, protocol: HTTP, name: http}
                defaultEndpoint: 127.0.2.2:8080
              egress:
              - {bind: 127.0.1.2, captureMode: NONE, hosts: ["*/*"]}
            """
        return base.adding(try ResourceDocuments.decode(wide, source: "wide.yaml").map(\.resource))
    }

    @Test("the ADR mesh, governor importing everything as Istio's default: after calls to coordinator only, the Sidecar imports coordinator and istio-system, keeps governor's binds, and applying it shrinks the configuration to exactly the size printed")
    func governor() throws {
        let snapshot = try Self.wideGovernor()
        let id = ServiceRegistry.WorkloadID(namespace: "tai-system", name: "governor-v1")
        let observed: [String: UInt64] = ["outbound|8080|stable|coordinator.tai-system.svc.cluster.local": 9, "outbound|8080|canary|coordinator.tai-system.svc.cluster.local": 1, "inbound|8080||": 4]
        let suggestion = try #require(SidecarSuggestion.make(for: id, in: snapshot, observed: observed))
        #expect(suggestion.hosts.map(\.host) == ["istio-system/*", "tai-system/coordinator.tai-system.svc.cluster.local"], "\(suggestion.hosts)")
        #expect(suggestion.hosts[1].reason == "requests seen")
        #expect(suggestion.after.bytes < suggestion.before.bytes && suggestion.after.clusters < suggestion.before.clusters, "\(suggestion.before) → \(suggestion.after)")
        // governor's own Sidecar is kept (its ingress and egress bind), only the hosts change.
        guard case .sidecar(let spec) = suggestion.sidecar.spec else { Issue.record("not a Sidecar"); return }
        #expect(suggestion.sidecar.metadata.name == "governor-v1")
        #expect(spec.ingress?.isEmpty == false)
        #expect(spec.egress?.first?.bind == "127.0.1.2")
        #expect(spec.egress?.first?.hosts == suggestion.hosts.map(\.host))
        // Applied (through YAML, as meshctl apply reads it), the configuration is the size printed,
        // and governor still routes to coordinator.
        let yaml = try YAMLDocuments.write(suggestion.sidecar.configValue)
        let applied = try ResourceDocuments.decode(yaml, source: "suggested.yaml").map(\.resource)
        let scoped = snapshot.adding(applied)
        let again = try #require(SidecarSuggestion.make(for: id, in: scoped, observed: observed))
        #expect(again.before == suggestion.after)
        let simulation = try RequestSimulation.run(scoped, request: .init(from: "tai-system/governor-v1", url: "http://coordinator:8080/tai.Governor/Plan"))
        #expect(Set(simulation.outcomes.compactMap(\.servedBy)) == ["tai-system/coordinator-v1", "tai-system/coordinator-v2"])
        // analyze's note: more than 10× the clusters used (here governor uses 2 of its clusters).
        let oversized = SidecarSuggestion.oversized(in: snapshot, observed: ["tai-system/governor-v1": observed], factor: 1)
        #expect(oversized.map(\.workload) == ["tai-system/governor-v1"])
        #expect(SidecarSuggestion.oversized(in: snapshot, observed: ["tai-system/governor-v1": observed]).isEmpty, "the example mesh is small")
        // The root namespace is imported as Istio does, even where that adds a service (the
        // example's jaeger collector, which governor's own Sidecar did not import): the sizes say so.
        let narrow = try #require(SidecarSuggestion.make(for: id, in: try exampleSnapshot(), observed: observed))
        #expect(narrow.after.clusters == suggestion.after.clusters)
    }

    @Test("a workload named by an ALLOW policy imports the policy's services even before any request; no workload, no suggestion")
    func fromPolicies() throws {
        let snapshot = try exampleSnapshot()
        let scheduler = try #require(SidecarSuggestion.make(for: .init(namespace: "tai-system", name: "scheduler-v1"), in: snapshot, observed: [:]))
        #expect(scheduler.hosts.contains { $0.host == "tai-system/coordinator.tai-system.svc.cluster.local" && $0.reason == "allowed by AuthorizationPolicy tai-system/coordinator-authz" }, "\(scheduler.hosts)")
        #expect(SidecarSuggestion.make(for: .init(namespace: "tai-system", name: "nobody"), in: snapshot, observed: [:]) == nil)
    }
}

