import EnvoyAPI
import SwiftProtobuf
import Testing
import XDSServer

typealias Request = Envoy_Service_Discovery_V3_DiscoveryRequest
typealias Response = Envoy_Service_Discovery_V3_DiscoveryResponse

/// Builds small resource sets: clusters, endpoints, listeners and routes named as given.
func resources(clusters: [String] = ["a", "b"], listeners: [String] = ["l1"], routes: [String: String] = ["r1": "x"], tag: String = "") -> XDSResourceSet {
    var set = XDSResourceSet()
    for name in clusters {
        var cluster = Envoy_Config_Cluster_V3_Cluster()
        cluster.name = name
        cluster.altStatName = tag
        set.insert(XDSResource(name: name, message: cluster))
        var assignment = Envoy_Config_Endpoint_V3_ClusterLoadAssignment()
        assignment.clusterName = name
        set.insert(XDSResource(name: name, message: assignment))
    }
    for name in listeners {
        var listener = Envoy_Config_Listener_V3_Listener()
        listener.name = name
        listener.statPrefix = tag
        set.insert(XDSResource(name: name, message: listener))
    }
    for (name, value) in routes {
        var route = Envoy_Config_Route_V3_RouteConfiguration()
        route.name = name
        route.requestHeadersToRemove = [value]
        set.insert(XDSResource(name: name, message: route))
    }
    return set
}

func request(_ typeURL: String, names: [String] = [], version: String = "", nonce: String = "", error: String? = nil) -> Request {
    var request = Request()
    request.typeURL = typeURL
    request.resourceNames = names
    request.versionInfo = version
    request.responseNonce = nonce
    if let error {
        var status = Google_Rpc_Status()
        status.message = error
        request.errorDetail = status
    }
    return request
}

func sent(_ actions: [SotWStreamStateMachine.Action]) -> [Response] {
    actions.compactMap { if case .send(let response) = $0 { return response } else { return nil } }
}

func names(_ response: Response) -> [String] {
    response.resources.map { any in
        if let cluster = try? Envoy_Config_Cluster_V3_Cluster(unpackingAny: any), any.typeURL.hasSuffix("Cluster") { return cluster.name }
        if let listener = try? Envoy_Config_Listener_V3_Listener(unpackingAny: any), any.typeURL.hasSuffix("Listener") { return listener.name }
        if let route = try? Envoy_Config_Route_V3_RouteConfiguration(unpackingAny: any), any.typeURL.hasSuffix("RouteConfiguration") { return route.name }
        if let assignment = try? Envoy_Config_Endpoint_V3_ClusterLoadAssignment(unpackingAny: any) { return assignment.clusterName }
        return "?"
    }
}

@Suite("The state-of-the-world ADS stream state machine")
struct SotWStreamStateMachineTests {
    /// A stream where CDS, EDS, LDS and RDS have been requested and acknowledged once.
    func synced(_ set: XDSResourceSet = resources()) throws -> SotWStreamStateMachine {
        try syncedWithResponses(set).machine
    }

    /// The same, with the response of each type the proxy holds (whose nonce its next request
    /// carries).
    func syncedWithResponses(_ set: XDSResourceSet = resources()) throws -> (machine: SotWStreamStateMachine, held: [String: Response]) {
        var machine = SotWStreamStateMachine()
        _ = machine.update(set)
        let cds = try #require(sent(try machine.received(request(XDSTypeURL.cluster))).first)
        let eds = try #require(sent(try machine.received(request(XDSTypeURL.endpoint, names: ["a", "b"]))).first)
        _ = try machine.received(request(XDSTypeURL.cluster, version: cds.versionInfo, nonce: cds.nonce))
        _ = try machine.received(request(XDSTypeURL.endpoint, names: ["a", "b"], version: eds.versionInfo, nonce: eds.nonce))
        let lds = try #require(sent(try machine.received(request(XDSTypeURL.listener))).first)
        let rds = try #require(sent(try machine.received(request(XDSTypeURL.route, names: ["r1"]))).first)
        _ = try machine.received(request(XDSTypeURL.listener, version: lds.versionInfo, nonce: lds.nonce))
        _ = try machine.received(request(XDSTypeURL.route, names: ["r1"], version: rds.versionInfo, nonce: rds.nonce))
        return (machine, [XDSTypeURL.cluster: cds, XDSTypeURL.endpoint: eds, XDSTypeURL.listener: lds, XDSTypeURL.route: rds])
    }

    @Test("a wildcard CDS request gets every cluster, with a content version and a fresh nonce")
    func wildcardCDS() throws {
        var machine = SotWStreamStateMachine()
        _ = machine.update(resources())
        let responses = sent(try machine.received(request(XDSTypeURL.cluster)))
        #expect(responses.count == 1)
        #expect(names(responses[0]) == ["a", "b"])
        #expect(responses[0].typeURL == XDSTypeURL.cluster)
        #expect(!responses[0].versionInfo.isEmpty)
        #expect(responses[0].nonce == "1")
    }

    @Test("named types get only what was asked for; a name that appears later is sent then")
    func namedSubscriptions() throws {
        var machine = SotWStreamStateMachine()
        _ = machine.update(resources())
        let first = try #require(sent(try machine.received(request(XDSTypeURL.endpoint, names: ["b", "c"]))).first)
        #expect(names(first) == ["b"])
        _ = try machine.received(request(XDSTypeURL.endpoint, names: ["b", "c"], version: first.versionInfo, nonce: first.nonce))
        let later = sent(machine.update(resources(clusters: ["a", "b", "c"])))
        #expect(later.map(names) == [["b", "c"]])
    }

    @Test("an ACK records the version and sends nothing; a NACK is reported by error_detail")
    func ackAndNack() throws {
        var machine = SotWStreamStateMachine()
        _ = machine.update(resources())
        let cds = try #require(sent(try machine.received(request(XDSTypeURL.cluster))).first)
        let ack = try machine.received(request(XDSTypeURL.cluster, version: cds.versionInfo, nonce: cds.nonce))
        #expect(ack == [.acknowledged(typeURL: XDSTypeURL.cluster, version: cds.versionInfo, nonce: cds.nonce)])

        let update = try #require(sent(machine.update(resources(clusters: ["a", "b", "z"]))).first)
        // The NACK keeps the old version: detection must not rely on versions.
        let nack = try machine.received(request(XDSTypeURL.cluster, version: cds.versionInfo, nonce: update.nonce, error: "bad cluster z"))
        #expect(nack.contains(.rejected(typeURL: XDSTypeURL.cluster, version: cds.versionInfo, nonce: update.nonce, message: "bad cluster z")))
        #expect(sent(nack).isEmpty, "a rejected configuration must not be sent again unchanged")
        #expect(sent(machine.update(resources(clusters: ["a", "b", "z"]))).isEmpty)
        let fixed = sent(machine.update(resources(clusters: ["a", "b", "y"])))
        #expect(fixed.map(names) == [["a", "b", "y"]], "a changed configuration is sent after a NACK")
    }

    @Test("a request with a stale nonce is not answered")
    func staleNonce() throws {
        var machine = try synced()
        let first = try #require(sent(machine.update(resources(clusters: ["a"]))).first)
        // The proxy has not answered `first`; a request echoing an older nonce is stale.
        let stale = try machine.received(request(XDSTypeURL.cluster, version: "old", nonce: "1"))
        #expect(stale.isEmpty)
        #expect(machine.isAwaitingAck(XDSTypeURL.cluster))
        #expect(first.nonce != "1")
    }

    @Test("at most one unacknowledged response per type; the newest config follows the ACK")
    func oneInFlight() throws {
        var machine = try synced()
        let first = try #require(sent(machine.update(resources(clusters: ["a", "c"]))).first { $0.typeURL == XDSTypeURL.cluster })
        #expect(sent(machine.update(resources(clusters: ["a", "d"]))).filter { $0.typeURL == XDSTypeURL.cluster }.isEmpty)
        let next = sent(try machine.received(request(XDSTypeURL.cluster, version: first.versionInfo, nonce: first.nonce)))
        #expect(next.first { $0.typeURL == XDSTypeURL.cluster }.map(names) == ["a", "d"])
    }

    @Test("push order: CDS, then EDS (always after CDS), then LDS and RDS once clusters are acknowledged")
    func pushOrder() throws {
        var machine = try synced()
        let changed = resources(clusters: ["a", "b"], listeners: ["l1", "l2"], routes: ["r1": "y"], tag: "v2")
        let first = sent(machine.update(changed))
        #expect(first.map(\.typeURL) == [XDSTypeURL.cluster, XDSTypeURL.endpoint])
        #expect(names(first[1]) == ["a", "b"], "EDS is re-sent after CDS even though these endpoints did not change")
        let afterCDS = sent(try machine.received(request(XDSTypeURL.cluster, version: first[0].versionInfo, nonce: first[0].nonce)))
        #expect(afterCDS.isEmpty, "listeners wait while endpoints are unacknowledged")
        let settled = sent(try machine.received(request(XDSTypeURL.endpoint, names: ["a", "b"], version: first[1].versionInfo, nonce: first[1].nonce)))
        #expect(settled.map(\.typeURL) == [XDSTypeURL.listener, XDSTypeURL.route])
        #expect(names(settled[0]) == ["l1", "l2"], "LDS always carries the full set")
    }

    @Test("a CDS or LDS response that changes what the proxy watches: EDS and RDS wait for the new names instead of answering the old ones (4 responses, not 6)")
    func subscriptionAboutToChange() throws {
        var (machine, held) = try syncedWithResponses()
        var responses: [Response] = []
        // A new cluster c and a new route configuration r2 (its listener l2).
        let changed = resources(clusters: ["a", "b", "c"], listeners: ["l1", "l2"], routes: ["r1": "x", "r2": "y"], tag: "v2")
        let cds = sent(machine.update(changed))
        responses += cds
        #expect(cds.map(\.typeURL) == [XDSTypeURL.cluster], "EDS waits: the proxy is about to watch c too")
        #expect(sent(try machine.received(request(XDSTypeURL.cluster, version: cds[0].versionInfo, nonce: cds[0].nonce))).isEmpty, "the CDS ACK alone sends nothing")
        // Envoy asks for c (with the nonce of the EDS response it holds) right after its CDS ACK.
        let eds = sent(try machine.received(request(XDSTypeURL.endpoint, names: ["a", "b", "c"], version: held[XDSTypeURL.endpoint]!.versionInfo, nonce: held[XDSTypeURL.endpoint]!.nonce)))
        responses += eds
        #expect(eds.map(names) == [["a", "b", "c"]])
        let lds = sent(try machine.received(request(XDSTypeURL.endpoint, names: ["a", "b", "c"], version: eds[0].versionInfo, nonce: eds[0].nonce)))
        responses += lds
        #expect(lds.map(\.typeURL) == [XDSTypeURL.listener], "RDS waits: the proxy is about to watch r2 too")
        #expect(sent(try machine.received(request(XDSTypeURL.listener, version: lds[0].versionInfo, nonce: lds[0].nonce))).isEmpty)
        let rds = sent(try machine.received(request(XDSTypeURL.route, names: ["r1", "r2"], version: held[XDSTypeURL.route]!.versionInfo, nonce: held[XDSTypeURL.route]!.nonce)))
        responses += rds
        #expect(rds.map(names) == [["r1", "r2"]])
        #expect(responses.count == 4)
        _ = try machine.received(request(XDSTypeURL.route, names: ["r1", "r2"], version: rds[0].versionInfo, nonce: rds[0].nonce))
        #expect(machine.isSettled)
    }

    @Test("Envoy's own order: the request for the new names may come before the CDS acknowledgement")
    func newNamesBeforeAck() throws {
        var (machine, held) = try syncedWithResponses()
        let cds = sent(machine.update(resources(clusters: ["a", "b", "c"], tag: "v2")))
        #expect(cds.map(\.typeURL) == [XDSTypeURL.cluster])
        #expect(!machine.isSettled, "a type waiting for its new subscription is not settled")
        let eds = sent(try machine.received(request(XDSTypeURL.endpoint, names: ["a", "b", "c"], version: held[XDSTypeURL.endpoint]!.versionInfo, nonce: held[XDSTypeURL.endpoint]!.nonce)))
        #expect(eds.map(names) == [["a", "b", "c"]])
        #expect(sent(try machine.received(request(XDSTypeURL.cluster, version: cds[0].versionInfo, nonce: cds[0].nonce))).isEmpty)
        // The listeners changed too (the tag): they follow the endpoints' acknowledgement.
        let rest = sent(try machine.received(request(XDSTypeURL.endpoint, names: ["a", "b", "c"], version: eds[0].versionInfo, nonce: eds[0].nonce)))
        #expect(rest.map(\.typeURL) == [XDSTypeURL.listener])
        for response in rest { _ = try machine.received(request(response.typeURL, version: response.versionInfo, nonce: response.nonce)) }
        #expect(machine.isSettled)
    }

    @Test("a new configuration while EDS waits ends the wait; a listener that goes away (its routes may drain) is not waited for")
    func waitEndsWithNewConfiguration() throws {
        var machine = try synced()
        let cds = sent(machine.update(resources(clusters: ["a", "b", "c"], tag: "v2")))
        #expect(cds.map(\.typeURL) == [XDSTypeURL.cluster])
        let next = sent(machine.update(resources(clusters: ["a", "b", "c"], tag: "v3")))
        #expect(next.map(\.typeURL) == [XDSTypeURL.endpoint], "CDS is still unacknowledged; EDS goes for the names watched")

        var shrinking = try synced()
        // l1 and r1 give way to l9 and r9: r9 is new, so RDS waits; a later config dropping r9
        // again (routes only shrink) answers at once.
        let lds = sent(shrinking.update(resources(listeners: ["l9"], routes: ["r9": "x"])))
        #expect(lds.map(\.typeURL) == [XDSTypeURL.listener])
        let back = sent(shrinking.update(resources(listeners: [], routes: [:])))
        #expect(back.map(\.typeURL) == [XDSTypeURL.route], "nothing new to watch: the routes go at once")
    }

    @Test("a rejected CDS response, or any other request after it, ends the wait: EDS goes out for the names watched")
    func subscriptionWaitEnds() throws {
        var machine = try synced()
        let cds = sent(machine.update(resources(clusters: ["a", "b", "c"], tag: "v2")))
        #expect(cds.map(\.typeURL) == [XDSTypeURL.cluster])
        let afterNack = sent(try machine.received(request(XDSTypeURL.cluster, nonce: cds[0].nonce, error: "bad cluster")))
        #expect(afterNack.map(names) == [["a", "b"]], "the proxy keeps its clusters and their endpoints are re-sent")

        var other = try synced()
        let update = sent(other.update(resources(clusters: ["a", "b", "c"], listeners: ["l1", "l2"], tag: "v2")))
        _ = try other.received(request(XDSTypeURL.cluster, version: update[0].versionInfo, nonce: update[0].nonce))
        // Not the EDS request expected: an unrelated request (a new SDS watch) ends the wait.
        let released = sent(try other.received(request(XDSTypeURL.secret, names: ["default"])))
        #expect(released.filter { $0.typeURL == XDSTypeURL.endpoint }.map(names) == [["a", "b"]])
    }

    @Test("a listener-only change is sent at once")
    func listenerOnly() throws {
        var machine = try synced()
        let responses = sent(machine.update(resources(listeners: ["l1", "l9"])))
        #expect(responses.map(\.typeURL) == [XDSTypeURL.listener])
    }

    @Test("a reconnecting proxy that already holds the current version gets nothing new, and that counts as its acknowledgement")
    func reconnectWithCurrentVersion() throws {
        var original = SotWStreamStateMachine()
        _ = original.update(resources())
        let cds = try #require(sent(try original.received(request(XDSTypeURL.cluster))).first)

        var reconnected = SotWStreamStateMachine()
        _ = reconnected.update(resources())
        let actions = try reconnected.received(request(XDSTypeURL.cluster, version: cds.versionInfo))
        #expect(sent(actions).isEmpty)
        #expect(actions == [.acknowledged(typeURL: XDSTypeURL.cluster, version: cds.versionInfo, nonce: "")])
        #expect(SotWStreamStateMachine.version(of: resources().sortedResources(ofType: XDSTypeURL.cluster)) == cds.versionInfo)
        var outdated = SotWStreamStateMachine()
        _ = outdated.update(resources())
        #expect(sent(try outdated.received(request(XDSTypeURL.cluster, version: "0123456789abcdef"))).count == 1)
    }

    @Test("explicit CDS names limit the set; `*` asks for everything")
    func explicitWildcard() throws {
        var machine = SotWStreamStateMachine()
        _ = machine.update(resources())
        #expect(sent(try machine.received(request(XDSTypeURL.cluster, names: ["b"]))).map(names) == [["b"]])
        var star = SotWStreamStateMachine()
        _ = star.update(resources())
        #expect(sent(try star.received(request(XDSTypeURL.cluster, names: ["*"]))).map(names) == [["a", "b"]])
    }

    @Test("a request without a type is refused; one for a type meshd does not serve is left unanswered and the stream goes on")
    func badTypes() throws {
        var machine = SotWStreamStateMachine()
        _ = machine.update(resources())
        #expect(throws: SotWStreamStateMachine.Failure.self) { try machine.received(request("")) }
        let runtime = "type.googleapis.com/envoy.service.runtime.v3.Runtime"
        #expect(try machine.received(request(runtime, names: ["rtds"])) == [.unserved(typeURL: runtime)])
        #expect(sent(try machine.received(request(XDSTypeURL.cluster))).map(names) == [["a", "b"]])
    }

    @Test("Istio's agent reports its probe as HealthInformation requests: passing without error_detail, failing with it; nothing is sent back and the stream goes on")
    func healthReports() throws {
        var machine = SotWStreamStateMachine()
        _ = machine.update(resources())
        #expect(try machine.received(request(XDSTypeURL.healthInformation)) == [.health(healthy: true, message: nil)])
        #expect(try machine.received(request(XDSTypeURL.healthInformation, error: "connection refused")) == [.health(healthy: false, message: "connection refused")])
        #expect(sent(try machine.received(request(XDSTypeURL.cluster))).map(names) == [["a", "b"]])
    }

    @Test("a named type the proxy stops watching (no names) gets no response, also when its resources change")
    func unwatched() throws {
        var machine = SotWStreamStateMachine()
        _ = machine.update(resources())
        let rds = try #require(sent(try machine.received(request(XDSTypeURL.route, names: ["r1"]))).first)
        #expect(sent(try machine.received(request(XDSTypeURL.route, names: ["r1"], version: rds.versionInfo, nonce: rds.nonce))).isEmpty)
        #expect(sent(try machine.received(request(XDSTypeURL.route, names: [], version: rds.versionInfo, nonce: rds.nonce))).isEmpty)
        #expect(sent(machine.update(resources(routes: ["r1": "changed"]))).filter { $0.typeURL == XDSTypeURL.route }.isEmpty)
        // Watching again: sent.
        #expect(sent(try machine.received(request(XDSTypeURL.route, names: ["r1"], version: rds.versionInfo, nonce: rds.nonce))).map(\.typeURL) == [XDSTypeURL.route])
    }

    @Test("break after make: a dropped cluster and its endpoints stay until the new listeners and routes are acknowledged, then go")
    func removalAfterRoutes() throws {
        var machine = try synced()
        // Cluster b goes, and the route that named it changes in the same configuration: the
        // route goes first (clusters a and b, still held, are all it may name).
        let rds = try #require(sent(machine.update(resources(clusters: ["a"], routes: ["r1": "y"]))).first)
        #expect(rds.typeURL == XDSTypeURL.route)
        let removals = sent(try machine.received(request(XDSTypeURL.route, names: ["r1"], version: rds.versionInfo, nonce: rds.nonce)))
        #expect(removals.map(\.typeURL) == [XDSTypeURL.cluster, XDSTypeURL.endpoint], "b goes once the routes are acknowledged")
        #expect(removals.map(names) == [["a"], ["a"]], "a subscription that only shrinks is not waited for")

        // Added and removed at once: the new cluster first, with the old one kept.
        var second = try synced()
        let cds = try #require(sent(second.update(resources(clusters: ["a", "c"], routes: ["r1": "y"]))).first)
        #expect(cds.typeURL == XDSTypeURL.cluster && names(cds) == ["a", "b", "c"])
    }

    @Test("a proxy that stops watching a named type while a response is on its way is not waited for (it ignores unwatched responses)")
    func unwatchedInFlight() throws {
        var machine = try synced()
        // A cluster update: EDS follows; the proxy drops its clusters and unwatches EDS with an
        // older nonce, ignoring the EDS response as unwatched.
        let update = sent(machine.update(resources(clusters: ["a", "b"], tag: "t")))
        let eds = try #require(update.first { $0.typeURL == XDSTypeURL.endpoint })
        #expect(machine.isAwaitingAck(XDSTypeURL.endpoint))
        let unwatched = try machine.received(request(XDSTypeURL.endpoint, names: [], nonce: "stale"))
        #expect(unwatched == [.unwatched(typeURL: XDSTypeURL.endpoint)])
        #expect(!machine.isAwaitingAck(XDSTypeURL.endpoint))
        // Watching again: sent at once.
        #expect(sent(try machine.received(request(XDSTypeURL.endpoint, names: ["a"], nonce: eds.nonce))).map(\.typeURL) == [XDSTypeURL.endpoint])
    }
}
