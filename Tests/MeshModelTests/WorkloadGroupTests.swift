import Testing
import MeshModel

@Suite("WorkloadGroups: Istio's checks, and readiness of the workloads registered from them")
struct WorkloadGroupTests {
    func problems(_ spec: ConfigValue) -> [String] {
        let document: ConfigValue = ["apiVersion": "networking.istio.io/v1", "kind": "WorkloadGroup", "metadata": ["name": "vm", "namespace": "ns"], "spec": spec]
        do {
            return Validation.problems(of: try MeshResource(document: document)).map(\.description)
        } catch {
            return error.problems.map(\.description)
        }
    }

    @Test("a template without an address, a probe with one method, ports in range, HTTP only; gRPC probes and networks refused with their paths")
    func validation() {
        #expect(problems(["template": ["serviceAccount": "vm", "labels": ["app": "vm"]], "metadata": ["labels": ["app": "vm"]]]).isEmpty)
        #expect(problems(["probe": ["tcpSocket": ["port": 80]]]) == ["spec.template: missing required field \"template\""])
        #expect(problems(["template": ["address": "10.0.0.1"]]) == ["spec.template.address: each auto-registered WorkloadEntry takes its address from its proxy; leave it out of the template"])
        #expect(problems(["template": ["network": "n1"]]) == ["spec.template.network: meshd serves one network; multi-network meshes are not supported"])
        #expect(problems(["template": [:], "probe": ["periodSeconds": 5]]) == ["spec.probe: a probe needs one of httpGet, tcpSocket or exec"])
        #expect(problems(["template": [:], "probe": ["httpGet": ["port": 70000]]]) == ["spec.probe.httpGet.port: port 70000 is out of range 1-65535"])
        #expect(problems(["template": [:], "probe": ["httpGet": ["port": 80, "scheme": "HTTPS"]]]) == ["spec.probe.httpGet.scheme: meshd's prober speaks HTTP only; probe an HTTP port (or use tcpSocket)"])
        #expect(problems(["template": [:], "probe": ["httpGet": ["port": 80, "path": "healthz"]]]) == ["spec.probe.httpGet.path: the path must start with /"])
        #expect(problems(["template": [:], "probe": ["exec": ["command": [""]]]]) == ["spec.probe.exec.command: the command must name a program"])
        #expect(problems(["template": [:], "probe": ["tcpSocket": ["port": 80], "failureThreshold": -1]]) == ["spec.probe.failureThreshold: must not be negative"])
        #expect(problems(["template": [:], "probe": ["grpc": ["port": 80]]]) == ["spec.probe.grpc: gRPC health probes are not supported by meshd yet; use httpGet, tcpSocket or exec"])
        let both = problems(["template": [:], "probe": ["tcpSocket": ["port": 80], "exec": ["command": ["true"]]]])
        #expect(both.count == 1 && both[0].hasPrefix("spec.probe"), "one method only (a oneof): \(both)")
    }

    static func entry(_ name: String, group: String?) throws -> MeshResource {
        let annotations: ConfigValue = group.map { ["istio.io/autoRegistrationGroup": .string($0)] } ?? [:]
        return try MeshResource(document: [
            "apiVersion": "networking.istio.io/v1", "kind": "WorkloadEntry",
            "metadata": ["name": .string(name), "namespace": "ns", "annotations": annotations],
            "spec": ["address": "10.0.0.1", "labels": ["app": "vm"]],
        ])
    }

    static func resources(probe: Bool) throws -> [MeshResource] {
        var group: ConfigValue = ["template": ["labels": ["app": "vm"]]]
        if probe, case .object(var object) = group {
            object["probe"] = ["tcpSocket": ["port": 80]]
            group = .object(object)
        }
        return [
            try MeshResource(document: [
                "apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry", "metadata": ["name": "vm", "namespace": "ns"],
                "spec": ["hosts": ["vm.ns.svc.cluster.local"], "ports": [["number": 80, "name": "http"]], "workloadSelector": ["labels": ["app": "vm"]]],
            ]),
            try MeshResource(document: ["apiVersion": "networking.istio.io/v1", "kind": "WorkloadGroup", "metadata": ["name": "vm", "namespace": "ns"], "spec": group]),
            try entry("vm-a", group: "vm"), try entry("vm-b", group: "vm"), try entry("hand-written", group: nil),
        ]
    }

    @Test("with a probe, a registered workload takes traffic once reported healthy and not while reported failing; without a probe it always does; hand-written entries ignore reports")
    func readiness() throws {
        let a = ServiceRegistry.WorkloadID(namespace: "ns", name: "vm-a")
        let b = ServiceRegistry.WorkloadID(namespace: "ns", name: "vm-b")
        let hand = ServiceRegistry.WorkloadID(namespace: "ns", name: "hand-written")
        func members(_ snapshot: MeshSnapshot) -> [String] {
            snapshot.registry.instances(of: snapshot.registry.services[0]).map(\.name).sorted()
        }
        let pending = MeshSnapshot(revision: 1, resources: try Self.resources(probe: true), health: [b: WorkloadHealth(healthy: true)])
        #expect(members(pending) == ["hand-written", "vm-b"], "vm-a has not reported yet")
        #expect(pending.registry.workload(a) != nil, "its own proxy is still served")
        #expect(pending.healthCondition(of: a)?.status == "Unknown" && pending.healthCondition(of: b)?.status == "True")
        #expect(pending.healthCondition(of: hand) == nil)

        let failing = MeshSnapshot(revision: 2, resources: try Self.resources(probe: true), health: [
            a: WorkloadHealth(healthy: true), b: WorkloadHealth(healthy: false, message: "connection refused"), hand: WorkloadHealth(healthy: false),
        ])
        #expect(members(failing) == ["hand-written", "vm-a"])
        #expect(failing.healthCondition(of: b)?.status == "False" && failing.healthCondition(of: b)?.message == "connection refused")
        #expect(!failing.isReady(b) && failing.isReady(hand))

        let noProbe = MeshSnapshot(revision: 3, resources: try Self.resources(probe: false))
        #expect(members(noProbe) == ["hand-written", "vm-a", "vm-b"])
        #expect(noProbe.healthCondition(of: a) == nil)
        let reported = MeshSnapshot(revision: 4, resources: try Self.resources(probe: false), health: [a: WorkloadHealth(healthy: false)])
        #expect(members(reported) == ["hand-written", "vm-b"], "a failing report counts without a probe in the group too")
        #expect(AutoRegistration.entryName(group: "vm", address: "fd00::1") == "vm-fd00--1")
    }
}
