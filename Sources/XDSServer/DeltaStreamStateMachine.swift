public import EnvoyAPI

/// The state of one delta (incremental) ADS stream, as a pure state machine.
///
/// Per `reference/xds-protocol.md`: every resource has its own version (its content hash); the
/// proxy subscribes and unsubscribes names (`*` and the legacy empty first request mean all of a
/// wildcard type); subscription changes apply even when the request's nonce is stale; a
/// reconnecting proxy's `initial_resource_versions` are what it holds, so only what differs is
/// sent; removals name only what the proxy holds. As in state of the world: at most one
/// unacknowledged response per type, CDS before EDS before LDS and RDS (make before break),
/// cluster and endpoint removals only once listeners and routes are acknowledged, EDS
/// re-sent for every cluster update, and a rejected resource version is not sent again.
public struct DeltaStreamStateMachine: ADSStreamMachine {
    public typealias Action = StreamAction<Envoy_Service_Discovery_V3_DeltaDiscoveryResponse>
    public static let apiName = "delta"

    struct InFlight: Sendable {
        var nonce: String
        var versions: [String: String]
        var removed: [String]
    }

    struct TypeState: Sendable {
        var requested = false
        var wildcard = false
        var names: Set<String> = []
        /// What the proxy holds: name -> version.
        var held: [String: String] = [:]
        var inFlight: InFlight?
        /// Versions the proxy refused, by name.
        var rejected: [String: String] = [:]
        /// Names to send even if the proxy holds their version (EDS after a cluster update).
        var forced: Set<String> = []
        /// The nonce of the last response, when the proxy rejected it.
        var rejectedNonce: String?
        /// A reconnecting proxy's first request, not yet answered: if it holds the current
        /// versions, nothing is sent and that counts as an acknowledgement.
        var reconnected = false
    }

    private(set) var resources: XDSResourceSet?
    private(set) var types: [String: TypeState] = [:]
    private var nonceCounter: UInt64 = 0

    public init() {}

    public mutating func received(_ request: Envoy_Service_Discovery_V3_DeltaDiscoveryRequest) throws(StreamFailure) -> [Action] {
        let typeURL = request.typeURL
        if let report = Self.healthReport(typeURL: typeURL, errorDetail: request.hasErrorDetail ? request.errorDetail : nil) { return [report] }
        guard try Self.isServed(typeURL) else { return [.unserved(typeURL: typeURL)] }
        var actions: [Action] = []
        var state = types[typeURL] ?? TypeState()
        let wildcardType = XDSTypeURL.wildcardTypes.contains(typeURL)
        if !state.requested {
            state.requested = true
            state.held = request.initialResourceVersions
            state.reconnected = !request.initialResourceVersions.isEmpty
            // Legacy wildcard: the first request of a wildcard type names nothing.
            state.wildcard = wildcardType && request.resourceNamesSubscribe.isEmpty
        }
        // Subscription changes apply whatever the nonce.
        for name in request.resourceNamesSubscribe {
            if name == "*" { state.wildcard = wildcardType } else { state.names.insert(name) }
        }
        for name in request.resourceNamesUnsubscribe {
            if name == "*" {
                state.wildcard = false
            } else {
                state.names.remove(name)
            }
        }
        if !state.wildcard {
            // The proxy forgets what it no longer subscribes to.
            for name in state.held.keys where !state.names.contains(name) { state.held[name] = nil }
            // Watching nothing, it will not answer a response it ignores as unwatched.
            if state.names.isEmpty && !request.resourceNamesUnsubscribe.isEmpty {
                state.inFlight = nil
                actions.append(.unwatched(typeURL: typeURL))
            }
        }

        let nonce = request.responseNonce
        if !nonce.isEmpty, let inFlight = state.inFlight, inFlight.nonce == nonce {
            state.inFlight = nil
            if request.hasErrorDetail {
                for (name, version) in inFlight.versions { state.rejected[name] = version }
                state.rejectedNonce = nonce
                actions.append(.rejected(typeURL: typeURL, version: heldVersion(state, typeURL), nonce: nonce, message: request.errorDetail.message))
            } else {
                for (name, version) in inFlight.versions where state.wildcard || state.names.contains(name) {
                    state.held[name] = version
                    state.rejected[name] = nil
                }
                for name in inFlight.removed { state.held[name] = nil }
                state.rejectedNonce = nil
                actions.append(.acknowledged(typeURL: typeURL, version: heldVersion(state, typeURL), nonce: nonce))
            }
        }
        types[typeURL] = state
        actions += pushPending()
        return actions
    }

    public mutating func update(_ resources: XDSResourceSet) -> [Action] {
        self.resources = resources
        return pushPending()
    }

    public var isSettled: Bool {
        types.values.allSatisfy { $0.inFlight == nil }
    }

    /// The names the proxy holds of `typeURL` (for tests and status views).
    public func held(_ typeURL: String) -> [String: String] {
        types[typeURL]?.held ?? [:]
    }

    public static func node(of request: Envoy_Service_Discovery_V3_DeltaDiscoveryRequest) -> Envoy_Config_Core_V3_Node? {
        request.hasNode ? request.node : nil
    }

    public static func summary(of response: Envoy_Service_Discovery_V3_DeltaDiscoveryResponse) -> ResponseSummary {
        ResponseSummary(
            typeURL: response.typeURL, version: response.systemVersionInfo, nonce: response.nonce,
            resources: response.resources.count, removed: response.removedResources.count)
    }

    // MARK: Pushing

    private mutating func pushPending() -> [Action] {
        guard resources != nil else { return [] }
        var actions: [Action] = []
        var gate = PushGate()
        for typeURL in XDSTypeURL.pushOrder {
            guard gate.allows(typeURL, clusterSideBusy: { clusterSideBusy() }) else { continue }
            if let response = responseIfDue(typeURL) {
                types[typeURL]?.reconnected = false
                actions.append(.send(response))
            } else if var state = types[typeURL], state.reconnected, state.inFlight == nil, holdsCurrent(typeURL, state) {
                // Reconnected holding exactly the current versions (a meshd restart): in sync.
                state.reconnected = false
                types[typeURL] = state
                actions.append(.acknowledged(typeURL: typeURL, version: heldVersion(state, typeURL), nonce: ""))
            } else if var state = types[typeURL], state.inFlight == nil, let nonce = state.rejectedNonce, holdsCurrent(typeURL, state) {
                // The configuration went back to what the proxy kept when it rejected the last
                // response: nothing to send, and the proxy is in sync again.
                state.rejectedNonce = nil
                types[typeURL] = state
                actions.append(.acknowledged(typeURL: typeURL, version: heldVersion(state, typeURL), nonce: nonce))
            }
        }
        return actions
    }

    private func clusterSideBusy() -> Bool {
        [XDSTypeURL.cluster, XDSTypeURL.endpoint].contains { typeURL in
            guard let state = types[typeURL], state.requested else { return false }
            return state.inFlight != nil || diff(typeURL, state).isDue
        }
    }

    struct Diff {
        var changed: [XDSResource] = []
        var removed: [String] = []
        var isDue: Bool { !changed.isEmpty || !removed.isEmpty }
    }

    /// What the proxy should get of `typeURL`: the subscribed resources whose version it does not
    /// hold (and did not refuse), and the names it holds that are gone.
    func diff(_ typeURL: String, _ state: TypeState) -> Diff {
        guard state.requested, let resources else { return Diff() }
        let all = resources.resources(ofType: typeURL)
        var out = Diff()
        let wanted = state.wildcard ? Array(all.values) : state.names.compactMap { all[$0] }
        for item in wanted.sorted(by: { $0.name < $1.name }) {
            let version = item.hash.description
            if state.forced.contains(item.name) || (state.held[item.name] != version && state.rejected[item.name] != version) {
                out.changed.append(item)
            }
        }
        out.removed = state.held.keys.filter { all[$0] == nil }.sorted()
        if !out.removed.isEmpty, typeURL == XDSTypeURL.cluster || typeURL == XDSTypeURL.endpoint, routeSideBusy() {
            // Break after make: a route may still name them until the new routes are acknowledged.
            out.removed = []
        }
        return out
    }

    /// Whether listeners or routes are on their way to the proxy.
    private func routeSideBusy() -> Bool {
        [XDSTypeURL.listener, XDSTypeURL.route].contains { typeURL in
            guard let state = types[typeURL], state.requested else { return false }
            return state.inFlight != nil || diff(typeURL, state).isDue
        }
    }

    /// Whether the proxy holds exactly the current version of everything it subscribes to.
    private func holdsCurrent(_ typeURL: String, _ state: TypeState) -> Bool {
        var held = state
        held.rejected = [:]
        held.forced = []
        return !diff(typeURL, held).isDue
    }

    private mutating func responseIfDue(_ typeURL: String) -> Envoy_Service_Discovery_V3_DeltaDiscoveryResponse? {
        guard var state = types[typeURL], state.inFlight == nil else { return nil }
        let diff = diff(typeURL, state)
        guard diff.isDue else { return nil }
        nonceCounter += 1
        var response = Envoy_Service_Discovery_V3_DeltaDiscoveryResponse()
        response.typeURL = typeURL
        response.nonce = String(nonceCounter)
        response.resources = diff.changed.map { item in
            var resource = Envoy_Service_Discovery_V3_Resource()
            resource.name = item.name
            resource.version = item.hash.description
            resource.resource = item.body
            return resource
        }
        response.removedResources = diff.removed
        let versions = Dictionary(uniqueKeysWithValues: diff.changed.map { ($0.name, $0.hash.description) })
        state.inFlight = InFlight(nonce: response.nonce, versions: versions, removed: diff.removed)
        state.forced.subtract(versions.keys)
        var after = state
        after.held.merge(versions) { $1 }
        for name in diff.removed { after.held[name] = nil }
        response.systemVersionInfo = heldVersion(after, typeURL)
        types[typeURL] = state
        if typeURL == XDSTypeURL.cluster, var endpoints = types[XDSTypeURL.endpoint], endpoints.requested {
            // Envoy needs fresh endpoints after every cluster update, changed or not.
            endpoints.forced.formUnion(versions.keys.filter { endpoints.wildcard || endpoints.names.contains($0) })
            types[XDSTypeURL.endpoint] = endpoints
        }
        return response
    }

    /// The state-of-the-world style version of what the proxy holds of a type (the combined hash
    /// of the held resources that are still current), so status views and secret tracking read
    /// delta and SotW streams alike.
    private func heldVersion(_ state: TypeState, _ typeURL: String) -> String {
        let all = resources?.resources(ofType: typeURL) ?? [:]
        let items = state.held.compactMap { name, version in all[name].flatMap { $0.hash.description == version ? $0 : nil } }
        return SotWStreamStateMachine.version(of: items)
    }
}
