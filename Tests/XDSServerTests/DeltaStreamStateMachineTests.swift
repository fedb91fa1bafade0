import EnvoyAPI
import SwiftProtobuf
import Testing
import XDSServer

typealias DeltaRequest = Envoy_Service_Discovery_V3_DeltaDiscoveryRequest
typealias DeltaResponse = Envoy_Service_Discovery_V3_DeltaDiscoveryResponse

func delta(
    _ typeURL: String, subscribe: [String] = [], unsubscribe: [String] = [], initial: [String: String] = [:],
    nonce: String = "", error: String? = nil
) -> DeltaRequest {
    var request = DeltaRequest()
    request.typeURL = typeURL
    request.resourceNamesSubscribe = subscribe
    request.resourceNamesUnsubscribe = unsubscribe
    request.initialResourceVersions = initial
    request.responseNonce = nonce
    if let error {
        var status = Google_Rpc_Status()
        status.message = error
        request.errorDetail = status
    }
    return request
}

func sent(_ actions: [DeltaStreamStateMachine.Action]) -> [DeltaResponse] {
    actions.compactMap { if case .send(let response) = $0 { return response } else { return nil } }
}

extension DeltaResponse {
    var names: [String] { resources.map(\.name) }
    var versions: [String: String] { Dictionary(uniqueKeysWithValues: resources.map { ($0.name, $0.version) }) }
}

@Suite("The delta ADS stream state machine")
struct DeltaStreamStateMachineTests {
    /// A stream that subscribed to CDS (wildcard), EDS a+b, LDS (wildcard) and RDS r1, and acknowledged everything.
    func synced(_ set: XDSResourceSet = resources()) throws -> DeltaStreamStateMachine {
        var machine = DeltaStreamStateMachine()
        _ = machine.update(set)
        let cds = try #require(sent(try machine.received(delta(XDSTypeURL.cluster))).first)
        let eds = try #require(sent(try machine.received(delta(XDSTypeURL.endpoint, subscribe: ["a", "b"]))).first)
        _ = try machine.received(delta(XDSTypeURL.cluster, nonce: cds.nonce))
        _ = try machine.received(delta(XDSTypeURL.endpoint, nonce: eds.nonce))
        let lds = try #require(sent(try machine.received(delta(XDSTypeURL.listener))).first)
        let rds = try #require(sent(try machine.received(delta(XDSTypeURL.route, subscribe: ["r1"]))).first)
        _ = try machine.received(delta(XDSTypeURL.listener, nonce: lds.nonce))
        _ = try machine.received(delta(XDSTypeURL.route, nonce: rds.nonce))
        #expect(machine.isSettled)
        return machine
    }

    @Test("wildcard CDS and named EDS: every cluster, only the subscribed assignments, a content version per resource")
    func subscriptions() throws {
        var machine = DeltaStreamStateMachine()
        _ = machine.update(resources(clusters: ["a", "b", "c"]))
        let cds = try #require(sent(try machine.received(delta(XDSTypeURL.cluster))).first)
        #expect(cds.names == ["a", "b", "c"] && cds.removedResources.isEmpty)
        #expect(Set(cds.versions.values).count == 3 && !cds.systemVersionInfo.isEmpty)
        _ = try machine.received(delta(XDSTypeURL.cluster, nonce: cds.nonce))
        let eds = try #require(sent(try machine.received(delta(XDSTypeURL.endpoint, subscribe: ["b", "zz"]))).first)
        #expect(eds.names == ["b"], "a name that does not exist is neither sent nor reported removed")
        _ = try machine.received(delta(XDSTypeURL.endpoint, nonce: eds.nonce))
        // Subscribing to one more name sends only that one.
        let more = sent(try machine.received(delta(XDSTypeURL.endpoint, subscribe: ["c"])))
        #expect(more.map(\.names) == [["c"]])
    }

    @Test("only what changed is sent; a removed cluster is named in removed_resources once, after the listeners; a never-present name is never 'removed'")
    func changesAndRemovals() throws {
        var machine = try synced()
        #expect(sent(machine.update(resources())).isEmpty, "nothing changed, nothing sent")
        let changed = sent(machine.update(resources(clusters: ["a", "c"], tag: "t")))
        let cds = try #require(changed.first { $0.typeURL == XDSTypeURL.cluster })
        #expect(cds.names == ["a", "c"] && cds.removedResources.isEmpty, "b stays while the listeners change")
        let eds = try #require(changed.first { $0.typeURL == XDSTypeURL.endpoint })
        #expect(eds.names == ["a"] && eds.removedResources.isEmpty, "EDS: a re-sent after its cluster changed, c not subscribed")
        #expect(!changed.contains { $0.typeURL == XDSTypeURL.listener }, "listeners wait for clusters (make before break)")
        _ = try machine.received(delta(XDSTypeURL.cluster, nonce: cds.nonce))
        let after = sent(try machine.received(delta(XDSTypeURL.endpoint, nonce: eds.nonce)))
        #expect(after.map(\.typeURL) == [XDSTypeURL.listener], "then the listeners that changed: \(after.map(\.typeURL))")
        #expect(after.first?.names == ["l1"])
        // Once the listeners are acknowledged, b goes (break after make), once.
        let removals = sent(try machine.received(delta(XDSTypeURL.listener, nonce: after[0].nonce)))
        #expect(removals.map(\.typeURL) == [XDSTypeURL.cluster, XDSTypeURL.endpoint])
        #expect(removals.allSatisfy { $0.removedResources == ["b"] && $0.resources.isEmpty }, "\(removals.map(\.removedResources))")
        for response in removals { _ = try machine.received(delta(response.typeURL, nonce: response.nonce)) }
        #expect(machine.isSettled)
        // "b" comes back: it is sent again (it was removed, not banned).
        let back = sent(machine.update(resources(clusters: ["a", "b", "c"], tag: "t")))
        #expect(back.first { $0.typeURL == XDSTypeURL.cluster }?.names == ["b"])
    }

    @Test("a reconnecting proxy's initial_resource_versions: only what differs is sent")
    func initialVersions() throws {
        let original = try synced()
        let held = original.held(XDSTypeURL.cluster)
        #expect(held.count == 2)
        var machine = DeltaStreamStateMachine()
        _ = machine.update(resources(clusters: ["a", "b", "c"]))
        let cds = try #require(sent(try machine.received(delta(XDSTypeURL.cluster, initial: held))).first)
        #expect(cds.names == ["c"] && cds.removedResources.isEmpty)
        var same = DeltaStreamStateMachine()
        _ = same.update(resources())
        #expect(sent(try same.received(delta(XDSTypeURL.cluster, initial: held))).isEmpty, "holds exactly the current clusters")
        var stale = DeltaStreamStateMachine()
        _ = stale.update(resources(clusters: ["a"]))
        let removal = try #require(sent(try stale.received(delta(XDSTypeURL.cluster, initial: held))).first)
        #expect(removal.names.isEmpty && removal.removedResources == ["b"])
    }

    @Test("subscription changes apply even with a stale nonce; unsubscribing drops a name without a response")
    func staleNonce() throws {
        var machine = try synced()
        let update = sent(machine.update(resources(clusters: ["a", "b"], tag: "t")))
        let eds = try #require(update.first { $0.typeURL == XDSTypeURL.endpoint }, "EDS follows the cluster update")
        #expect(eds.names == ["a", "b"])
        // A request with an old nonce that unsubscribes b: the subscription change is applied, no ACK.
        let actions = try machine.received(delta(XDSTypeURL.endpoint, unsubscribe: ["b"], nonce: "0"))
        #expect(!actions.contains { if case .acknowledged = $0 { true } else { false } }, "a stale nonce is no ACK")
        _ = try machine.received(delta(XDSTypeURL.endpoint, nonce: eds.nonce))
        #expect(machine.held(XDSTypeURL.endpoint).keys.sorted() == ["a"], "b was unsubscribed before the ACK arrived")
    }

    @Test("a NACKed resource version is not sent again; a new version is; one unacknowledged response per type")
    func nack() throws {
        var machine = try synced()
        let bad = try #require(sent(machine.update(resources(clusters: ["a", "b"], listeners: ["l1"], tag: "bad"))).first { $0.typeURL == XDSTypeURL.cluster })
        #expect(sent(machine.update(resources(clusters: ["a", "b"], listeners: ["l1"], tag: "bad2"))).isEmpty, "nothing while a CDS response is unacknowledged")
        let rejected = try machine.received(delta(XDSTypeURL.cluster, nonce: bad.nonce, error: "bad cluster"))
        #expect(rejected.contains { if case .rejected(_, _, _, "bad cluster") = $0 { true } else { false } })
        // The machine now holds "bad2" (newer than the NACKed one): that is sent.
        let retry = sent(rejected).first { $0.typeURL == XDSTypeURL.cluster }
        #expect(retry?.names == ["a", "b"])
        _ = try machine.received(delta(XDSTypeURL.cluster, nonce: retry!.nonce, error: "still bad"))
        #expect(sent(machine.update(resources(clusters: ["a", "b"], listeners: ["l1"], tag: "bad2"))).filter { $0.typeURL == XDSTypeURL.cluster }.isEmpty, "the refused version is not resent")
        let fixed = sent(machine.update(resources(clusters: ["a", "b"], listeners: ["l1"], tag: "good")))
        #expect(fixed.first { $0.typeURL == XDSTypeURL.cluster }?.names == ["a", "b"])
    }

    @Test("after a NACK, going back to what the proxy kept sends nothing and reports it in sync")
    func revertAfterNack() throws {
        var machine = try synced()
        let bad = try #require(sent(machine.update(resources(routes: ["r1": "bad"]))).first { $0.typeURL == XDSTypeURL.route })
        _ = try machine.received(delta(XDSTypeURL.route, nonce: bad.nonce, error: "bad route"))
        let reverted = machine.update(resources())
        #expect(sent(reverted).isEmpty)
        #expect(reverted.contains { if case .acknowledged(XDSTypeURL.route, _, bad.nonce) = $0 { true } else { false } }, "\(reverted)")
        #expect(machine.update(resources()).isEmpty, "reported once")
    }

    @Test("the version acknowledged for a type is the state-of-the-world version of what the proxy holds")
    func heldVersion() throws {
        var machine = DeltaStreamStateMachine()
        let set = resources()
        _ = machine.update(set)
        let cds = try #require(sent(try machine.received(delta(XDSTypeURL.cluster))).first)
        let ack = try machine.received(delta(XDSTypeURL.cluster, nonce: cds.nonce))
        let expected = SotWStreamStateMachine.version(of: set.sortedResources(ofType: XDSTypeURL.cluster))
        #expect(cds.systemVersionInfo == expected)
        #expect(ack.contains(.acknowledged(typeURL: XDSTypeURL.cluster, version: expected, nonce: cds.nonce)))
    }

    @Test("a request without a type is refused")
    func noType() {
        var machine = DeltaStreamStateMachine()
        #expect(throws: StreamFailure.self) { try machine.received(delta("")) }
    }

    @Test("a reconnect holding every current version is acknowledged without a response; one holding old versions gets what changed")
    func reconnectAcknowledged() throws {
        let set = resources()
        let before = try synced(set)
        var reconnected = DeltaStreamStateMachine()
        _ = reconnected.update(set)
        let held = before.held(XDSTypeURL.cluster)
        let actions = try reconnected.received(delta(XDSTypeURL.cluster, initial: held))
        #expect(sent(actions).isEmpty)
        guard case .acknowledged(let type, let version, _) = try #require(actions.first) else {
            Issue.record("expected an acknowledgement, got \(actions)")
            return
        }
        #expect(type == XDSTypeURL.cluster && !version.isEmpty)

        var stale = DeltaStreamStateMachine()
        _ = stale.update(resources(tag: "new"))
        let response = try #require(sent(try stale.received(delta(XDSTypeURL.cluster, initial: held))).first)
        #expect(response.names == ["a", "b"])
    }

    @Test("health reports on a delta stream: passing, failing with the reason")
    func healthReports() throws {
        var machine = DeltaStreamStateMachine()
        _ = machine.update(resources())
        #expect(try machine.received(delta(XDSTypeURL.healthInformation)) == [.health(healthy: true, message: nil)])
        #expect(try machine.received(delta(XDSTypeURL.healthInformation, error: "503")) == [.health(healthy: false, message: "503")])
    }

    @Test("a request for a type meshd does not serve is left unanswered and the stream goes on")
    func unservedType() throws {
        var machine = DeltaStreamStateMachine()
        _ = machine.update(resources())
        let runtime = "type.googleapis.com/envoy.service.runtime.v3.Runtime"
        #expect(try machine.received(delta(runtime, subscribe: ["rtds"])) == [.unserved(typeURL: runtime)])
        #expect(sent(try machine.received(delta(XDSTypeURL.cluster))).first?.names == ["a", "b"])
    }

    @Test("break after make: a dropped cluster is removed only once the new routes are acknowledged")
    func removalAfterRoutes() throws {
        var machine = try synced()
        // Cluster b goes, and the route that named it changes: the route goes first.
        let rds = try #require(sent(machine.update(resources(clusters: ["a"], routes: ["r1": "y"]))).first)
        #expect(rds.typeURL == XDSTypeURL.route)
        let removals = sent(try machine.received(delta(XDSTypeURL.route, nonce: rds.nonce)))
        #expect(removals.map(\.typeURL) == [XDSTypeURL.cluster, XDSTypeURL.endpoint])
        #expect(removals.allSatisfy { $0.removedResources == ["b"] })
    }
}
