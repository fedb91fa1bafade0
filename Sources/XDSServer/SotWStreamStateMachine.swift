public import EnvoyAPI

/// The state of one state-of-the-world ADS stream, as a pure state machine.
///
/// It follows the rules in `reference/xds-protocol.md`: node from the first request; a fresh nonce
/// per response; ACK/NACK told apart by `error_detail` only; requests with a stale nonce ignored;
/// wildcard LDS/CDS and named RDS/EDS/SDS (nothing sent for a named type watching no names); full
/// LDS/CDS sets; at most one unacknowledged response
/// per type; EDS re-sent after every CDS response, but not for a subscription the CDS (or, for RDS,
/// LDS) response is about to change; and push order CDS, EDS, then LDS and RDS only
/// once the clusters they use are acknowledged (make before break), and clusters removed only once
/// the listeners and routes that may name them are acknowledged (break after make). A NACKed configuration is not
/// sent again until it changes.
public struct SotWStreamStateMachine: ADSStreamMachine {
    /// What the stream shell must do, in order.
    public typealias Action = StreamAction<Envoy_Service_Discovery_V3_DiscoveryResponse>
    /// A request the stream cannot serve: the shell ends the stream with this status.
    public typealias Failure = StreamFailure
    public static let apiName = "sotw"

    struct TypeState: Sendable {
        var requested = false
        var wildcard = false
        var names: Set<String> = []
        var lastNonce: String?
        var awaitingAck = false
        var sentContent: ContentHash?
        var rejectedContent: ContentHash?
        var mustResend = false
        /// The resources of the last response, sorted by name (clusters and endpoints: what may be retained).
        var sentItems: [XDSResource] = []
        /// The names of the last request, as the proxy listed them (most requests repeat them).
        var requestedNames: [String]?
    }

    /// What one type's subscription selects of the configuration, sorted by name, and its hash.
    struct Content {
        var items: [XDSResource]
        var hash: ContentHash
    }

    private(set) var resources: XDSResourceSet?
    private(set) var types: [String: TypeState] = [:]
    private var nonceCounter: UInt64 = 0
    /// Each type's content for the configuration and subscription held (sorting and hashing a
    /// type once per configuration rather than on every request); dropped when either changes.
    private var selected: [String: Content] = [:]
    /// Named types (EDS, RDS) whose subscription the proxy is about to widen: the response of
    /// their parent type (CDS, LDS) names resources they do not watch yet, which Envoy asks for as
    /// soon as it applies it, so a response for what they watch now would be superseded at once.
    /// Theirs waits for the new subscription, or for anything else the proxy sends once it has
    /// answered the parent, or for the next configuration.
    private var awaitingSubscription: Set<String> = []

    /// A new stream.
    public init() {}

    /// Handles a request from the proxy.
    public mutating func received(_ request: Envoy_Service_Discovery_V3_DiscoveryRequest) throws(Failure) -> [Action] {
        let typeURL = request.typeURL
        if let report = Self.healthReport(typeURL: typeURL, errorDetail: request.hasErrorDetail ? request.errorDetail : nil) { return [report] }
        guard try Self.isServed(typeURL) else { return [.unserved(typeURL: typeURL)] }
        var actions: [Action] = []
        if !awaitingSubscription.isEmpty {
            // Only the parent's acknowledgement keeps a child waiting for its new subscription.
            awaitingSubscription = awaitingSubscription.filter { child in
                Self.parentType[child] == typeURL && !request.hasErrorDetail && !request.responseNonce.isEmpty
            }
        }
        var state = types[typeURL] ?? TypeState()
        let nonce = request.responseNonce
        let isInitial = nonce.isEmpty || state.lastNonce == nil
        if !XDSTypeURL.wildcardTypes.contains(typeURL), request.resourceNames.isEmpty, state.requested {
            // The proxy watches nothing of this type any more, whatever the nonce: it will not
            // answer a response it ignores as unwatched, so none is awaited or sent.
            state.names = []
            state.requestedNames = []
            selected[typeURL] = nil
            state.awaitingAck = false
            types[typeURL] = state
            return [.unwatched(typeURL: typeURL)] + pushPending()
        }
        if !isInitial {
            guard nonce == state.lastNonce else { return [] }  // stale: a newer response is on its way
            state.awaitingAck = false
            if request.hasErrorDetail {
                state.rejectedContent = state.sentContent
                actions.append(.rejected(typeURL: typeURL, version: request.versionInfo, nonce: nonce, message: request.errorDetail.message))
            } else {
                state.rejectedContent = nil
                actions.append(.acknowledged(typeURL: typeURL, version: request.versionInfo, nonce: nonce))
            }
        }

        if request.resourceNames != state.requestedNames {
            let names = Set(request.resourceNames)
            if XDSTypeURL.wildcardTypes.contains(typeURL) {
                // Legacy wildcard: an empty list on a stream that never named anything; `*` is explicit.
                state.wildcard = names.contains("*") || (names.isEmpty && (state.wildcard || !state.requested))
            }
            if !names.subtracting(state.names).isEmpty { state.mustResend = true }
            state.names = names.subtracting(["*"])
            state.requestedNames = request.resourceNames
            selected[typeURL] = nil
        }
        if isInitial {
            let firstOnStream = !state.requested
            if !firstOnStream { state.mustResend = true }
            state.requested = true
            state.awaitingAck = false
            // A reconnecting proxy reports the version it already holds; if that is exactly what
            // would be sent, there is nothing to send.
            if firstOnStream, !request.versionInfo.isEmpty, resources != nil {
                let chosen = content(of: typeURL, state: state)
                if chosen.hash.description == request.versionInfo {
                    state.sentContent = chosen.hash
                    state.mustResend = false
                    // The proxy holds exactly this version: as good as an acknowledgement.
                    actions.append(.acknowledged(typeURL: typeURL, version: request.versionInfo, nonce: ""))
                }
            }
        }
        types[typeURL] = state
        actions += pushPending()
        return actions
    }

    /// Takes a new configuration for the proxy and sends what changed.
    public mutating func update(_ resources: XDSResourceSet) -> [Action] {
        self.resources = resources
        selected = [:]
        // What the proxy was expected to ask for may no longer be what it will get.
        awaitingSubscription = []
        return pushPending()
    }

    /// Whether every response sent has been answered (and so nothing is on its way).
    public var isSettled: Bool {
        awaitingSubscription.isEmpty && types.values.allSatisfy { !$0.awaitingAck }
    }

    /// Whether a response of `typeURL` has been sent and not yet acknowledged or rejected.
    public func isAwaitingAck(_ typeURL: String) -> Bool {
        types[typeURL]?.awaitingAck ?? false
    }

    public static func node(of request: Envoy_Service_Discovery_V3_DiscoveryRequest) -> Envoy_Config_Core_V3_Node? {
        request.hasNode ? request.node : nil
    }

    public static func summary(of response: Envoy_Service_Discovery_V3_DiscoveryResponse) -> ResponseSummary {
        ResponseSummary(typeURL: response.typeURL, version: response.versionInfo, nonce: response.nonce, resources: response.resources.count, removed: 0)
    }

    private mutating func pushPending() -> [Action] {
        guard resources != nil else { return [] }
        var actions: [Action] = []
        var gate = PushGate()
        for typeURL in XDSTypeURL.pushOrder {
            guard gate.allows(typeURL, clusterSideBusy: { clusterSideBusy() }) else { continue }
            if let response = responseIfDue(typeURL) { actions.append(.send(response)) }
        }
        return actions
    }

    /// Whether clusters or their endpoints are still on their way to the proxy.
    private mutating func clusterSideBusy() -> Bool {
        isBusy(XDSTypeURL.cluster) || isBusy(XDSTypeURL.endpoint)
    }

    /// Whether the proxy watches `typeURL` and something of it is on its way: a response not yet
    /// answered, one waiting for the new subscription, or one due.
    private mutating func isBusy(_ typeURL: String) -> Bool {
        guard let state = types[typeURL], state.requested else { return false }
        return state.awaitingAck || awaitingSubscription.contains(typeURL) || dueContent(typeURL, state: state) != nil
    }

    /// What a response of `typeURL` would carry now, when one is due.
    private mutating func dueContent(_ typeURL: String, state: TypeState) -> (items: [XDSResource], hash: ContentHash)? {
        guard state.requested, !state.awaitingAck, !awaitingSubscription.contains(typeURL), resources != nil else { return nil }
        // A named type with no names is no longer watched: Envoy would only log the response
        // as unwatched.
        if !state.wildcard && state.names.isEmpty { return nil }
        let chosen = content(of: typeURL, state: state, retained: retained(typeURL, state: state))
        return state.mustResend || (chosen.hash != state.sentContent && chosen.hash != state.rejectedContent) ? chosen : nil
    }

    /// Clusters (and their endpoints) the proxy was sent that the configuration dropped, kept
    /// while its listeners or routes are not yet acknowledged in their new form: a route may
    /// still name them (break after make, as for additions).
    private mutating func retained(_ typeURL: String, state: TypeState) -> [XDSResource] {
        guard typeURL == XDSTypeURL.cluster || typeURL == XDSTypeURL.endpoint, !state.sentItems.isEmpty else { return [] }
        // Both sorted by name: one walk finds what was sent and is no longer selected.
        let current = content(of: typeURL, state: state).items
        var dropped: [XDSResource] = []
        var index = 0
        for item in state.sentItems {
            while index < current.count, current[index].name < item.name { index += 1 }
            if index < current.count, current[index].name == item.name { continue }
            if state.wildcard || state.names.contains(item.name) { dropped.append(item) }
        }
        guard !dropped.isEmpty else { return [] }
        return isBusy(XDSTypeURL.listener) || isBusy(XDSTypeURL.route) ? dropped : []
    }

    private mutating func responseIfDue(_ typeURL: String) -> Envoy_Service_Discovery_V3_DiscoveryResponse? {
        guard var state = types[typeURL], let chosen = dueContent(typeURL, state: state) else { return nil }
        nonceCounter += 1
        var response = Envoy_Service_Discovery_V3_DiscoveryResponse()
        response.typeURL = typeURL
        response.versionInfo = chosen.hash.description
        response.nonce = String(nonceCounter)
        response.resources = chosen.items.map(\.body)
        state.lastNonce = response.nonce
        state.awaitingAck = true
        state.sentContent = chosen.hash
        state.mustResend = false
        if typeURL == XDSTypeURL.cluster || typeURL == XDSTypeURL.endpoint {
            state.sentItems = chosen.items
        }
        types[typeURL] = state
        if typeURL == XDSTypeURL.cluster, types[XDSTypeURL.endpoint]?.requested == true {
            // Envoy needs fresh endpoints after every cluster update, changed or not.
            types[XDSTypeURL.endpoint]!.mustResend = true
        }
        expectSubscriptionChange(after: typeURL, sent: chosen.items)
        return response
    }

    /// The type whose subscription follows from another's resources: EDS from CDS (a load
    /// assignment per EDS cluster), RDS from LDS (the route configurations listeners name).
    static let parentType = [XDSTypeURL.endpoint: XDSTypeURL.cluster, XDSTypeURL.route: XDSTypeURL.listener]

    /// After a CDS or LDS response carrying `items`: notes whether the proxy, once it applies
    /// them, will watch EDS or RDS names it does not watch yet. meshd makes a load assignment for
    /// every EDS cluster and a route configuration for every listener's RDS name, so those are the
    /// names it will watch (plus the load assignments of dropped clusters still carried). Only
    /// added names count: Envoy subscribes to them at once, while it may keep watching removed
    /// ones for a while (a draining listener keeps its routes).
    private mutating func expectSubscriptionChange(after typeURL: String, sent items: [XDSResource]) {
        guard let resources else { return }
        let child: String
        let implied: Set<String>
        switch typeURL {
        case XDSTypeURL.cluster:
            child = XDSTypeURL.endpoint
            guard let state = types[child], state.requested, !state.wildcard else { return }
            let assignments = resources.resources(ofType: child)
            let carried = Set(state.sentItems.map(\.name))
            implied = Set(items.lazy.map(\.name).filter { assignments[$0] != nil || carried.contains($0) })
        case XDSTypeURL.listener:
            child = XDSTypeURL.route
            guard types[typeURL]?.wildcard == true, let state = types[child], state.requested, !state.wildcard else { return }
            implied = Set(resources.resources(ofType: child).keys)
        default:
            return
        }
        if !implied.isSubset(of: types[child]!.names) { awaitingSubscription.insert(child) }
    }

    /// What the proxy subscribed to of `typeURL` in the configuration held (plus `retained`
    /// resources), sorted by name, and its content hash.
    private mutating func content(of typeURL: String, state: TypeState, retained: [XDSResource] = []) -> (items: [XDSResource], hash: ContentHash) {
        if retained.isEmpty, let known = selected[typeURL] {
            return (known.items, known.hash)
        }
        let all = resources?.resources(ofType: typeURL) ?? [:]
        var items = state.wildcard ? Array(all.values) : state.names.compactMap { all[$0] }
        items = (items + retained).sorted { $0.name < $1.name }
        let hash = Self.combinedHash(items)
        if retained.isEmpty {
            selected[typeURL] = Content(items: items, hash: hash)
        }
        return (items, hash)
    }

    /// The hash of `items` (sorted by name), whose description is the version a response
    /// carrying them has.
    static func combinedHash(_ items: [XDSResource]) -> ContentHash {
        var hash = ContentHash()
        for item in items { hash.combine(item.hash) }
        return hash
    }

    /// The `version_info` of a response carrying `items`: what the proxy reports when it
    /// acknowledges exactly these resources.
    public static func version(of items: [XDSResource]) -> String {
        combinedHash(items.sorted { $0.name < $1.name }).description
    }
}
