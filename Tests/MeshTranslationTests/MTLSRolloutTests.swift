import MeshModel
import MeshTranslation
import Testing

@Suite("mTLS rollout: servers accept before clients send, clients move before servers stop accepting")
struct MTLSRolloutTests {
    let key = MTLSStaging.Key(workload: .init(namespace: "ns", name: "server"), port: 8080)
    var server: ServiceRegistry.WorkloadID { key.workload }

    func rollout(from old: MTLSMode) -> MTLSRollout {
        var rollout = MTLSRollout()
        rollout.retarget([key: .init(configured: old)])
        return rollout
    }

    /// Every step until settled: (what is served, whom it waits for).
    func steps(_ rollout: inout MTLSRollout, to new: MTLSMode) -> [(MTLSStaging.Entry, MTLSRollout.Wait)] {
        rollout.retarget([key: .init(configured: new)])
        var out: [(MTLSStaging.Entry, MTLSRollout.Wait)] = []
        for _ in 0..<5 where !rollout.isSettled {
            let wait = rollout.advance()
            out.append((rollout.served[key]!, wait))
        }
        #expect(rollout.isSettled && rollout.staging.entries.isEmpty)
        return out
    }

    @Test("DISABLE to STRICT: the server takes both, then clients send mTLS, then the server refuses plaintext")
    func disableToStrict() {
        var rollout = rollout(from: .disable)
        let steps = steps(&rollout, to: .strict)
        #expect(steps.map(\.0) == [
            .init(accept: .permissive, clientsUseTLS: false), .init(accept: .permissive, clientsUseTLS: true), .init(accept: .strict, clientsUseTLS: true),
        ])
        #expect(steps.map(\.1) == [.init(servers: [server]), .init(clientsOf: [server]), .init()])
    }

    @Test("STRICT to DISABLE: the server takes both, then clients send plaintext, then the server refuses mTLS")
    func strictToDisable() {
        var rollout = rollout(from: .strict)
        #expect(steps(&rollout, to: .disable).map(\.0) == [
            .init(accept: .permissive, clientsUseTLS: true), .init(accept: .permissive, clientsUseTLS: false), .init(accept: .disable, clientsUseTLS: false),
        ])
    }

    @Test("DISABLE to PERMISSIVE and back: two steps each; PERMISSIVE to STRICT and back: one step, nothing to wait for")
    func shortTransitions() {
        var rollout = rollout(from: .disable)
        #expect(steps(&rollout, to: .permissive).map(\.1) == [.init(servers: [server]), .init(clientsOf: [server])])
        #expect(steps(&rollout, to: .disable).map(\.1) == [.init(clientsOf: [server]), .init()])
        #expect(steps(&rollout, to: .permissive).count == 2)
        #expect(steps(&rollout, to: .strict).map(\.1) == [.init()])
        #expect(steps(&rollout, to: .permissive).map(\.1) == [.init()])
    }

    @Test("while staged, the configured mode is not served; a port that appears is served as configured at once; one that goes is forgotten")
    func stagingAndPorts() {
        var rollout = rollout(from: .disable)
        let other = MTLSStaging.Key(workload: .init(namespace: "ns", name: "new"), port: 9090)
        rollout.retarget([key: .init(configured: .strict), other: .init(configured: .strict)])
        #expect(rollout.staging.entries == [key: .init(configured: .disable)])
        _ = rollout.advance()
        #expect(rollout.staging.entries == [key: .init(accept: .permissive, clientsUseTLS: false)])
        rollout.retarget([other: .init(configured: .strict)])
        #expect(rollout.isSettled && rollout.staging.entries.isEmpty)
    }

    @Test("a change of mind half-way goes back the same safe way")
    func changeOfMind() {
        var rollout = rollout(from: .disable)
        rollout.retarget([key: .init(configured: .strict)])
        _ = rollout.advance()  // the server takes both; clients still plaintext
        #expect(steps(&rollout, to: .disable).map(\.0) == [.init(accept: .disable, clientsUseTLS: false)])
    }

    @Test("the modes a snapshot configures are read per endpoint port of each sidecar workload")
    func configured() throws {
        let snapshot = try snapshot("""
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: server, namespace: ns}
            spec:
              hosts: [server.ns.svc.cluster.local]
              location: MESH_INTERNAL
              resolution: STATIC
              ports: [{number: 8080, name: http, protocol: HTTP}]
              workloadSelector: {labels: {app: server}}
            ---
            apiVersion: networking.istio.io/v1
            kind: WorkloadEntry
            metadata: {name: server, namespace: ns}
            spec: {address: 127.0.0.3, serviceAccount: server, labels: {app: server}}
            ---
            apiVersion: security.istio.io/v1
            kind: PeerAuthentication
            metadata: {name: default, namespace: ns}
            spec: {mtls: {mode: DISABLE}}
            """)
        #expect(MTLSRollout.configured(snapshot) == [key: .init(configured: .disable)])
    }
}
