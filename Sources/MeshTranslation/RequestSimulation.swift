public import MeshModel
internal import EnvoyAPI
internal import Foundation
internal import SwiftProtobuf

/// What happens to one request, walked through the Envoy configuration meshd generates, as Envoy
/// would process it (`meshctl simulate`, `POST /v1/simulate`): the caller's outbound listener,
/// virtual host and route, faults, the weighted choice of cluster, the cluster's endpoints and
/// TLS, then at each destination its inbound listener, the filter chain the caller's transport
/// selects, the authorization decision (the policy and rule that decided) and the app.
///
/// Not simulated: JWT validation (a request is judged as carrying no verified token), the answer
/// of a CUSTOM authorizer, outlier ejection and retries (a step names them), services outside the
/// mesh (their answer is unknown).
public struct RequestSimulation: Codable, Hashable, Sendable {
    /// The request: from a workload's app, to a URL (`http://host[:port]/path` or
    /// `tcp://host:port`), with a method and headers.
    public struct Request: Codable, Hashable, Sendable {
        /// `namespace/name` of the calling workload.
        public var from: String
        public var url: String
        public var method: String?
        /// Header names and values (names are lower-cased).
        public var headers: [String: String]?

        public init(from: String, url: String, method: String? = nil, headers: [String: String]? = nil) {
            self.from = from
            self.url = url
            self.method = method
            self.headers = headers
        }
    }

    /// One thing a proxy does with the request.
    public struct Step: Codable, Hashable, Sendable {
        /// `namespace/name` of the workload whose proxy takes the step.
        public var proxy: String
        /// `listener`, `route`, `fault`, `cluster`, `endpoint`, `inbound`, `authorization`, `app`.
        public var stage: String
        /// What the step reads and decides.
        public var detail: String
        /// Nesting: steps of one weighted branch or endpoint are one deeper than their parent.
        public var depth: Int
    }

    /// One way the request can end, with its probability.
    public struct Outcome: Codable, Hashable, Sendable {
        public var probability: Double
        /// The status the caller gets; `nil` when the app (or a server outside the mesh) answers.
        public var status: Int?
        /// `namespace/name` of the workload whose app gets the request.
        public var servedBy: String?
        /// Why it ends this way.
        public var reason: String
        /// The Envoy resource or policy rule that decided (`ns[..]-policy[..]-rule[..]`).
        public var decidedBy: String?
    }

    /// Input the simulation cannot use.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var description: String
        /// The request field at fault.
        public var field: String
    }

    public var request: Request
    public var steps: [Step]
    public var outcomes: [Outcome]

    /// A simulation from its parts.
    public init(request: Request, steps: [Step], outcomes: [Outcome]) {
        self.request = request
        self.steps = steps
        self.outcomes = outcomes
    }

    /// Simulates `request` over `snapshot`.
    public static func run(_ snapshot: MeshSnapshot, request: Request) throws(Failure) -> RequestSimulation {
        let parts = request.from.split(separator: "/", maxSplits: 1).map(String.init)
        guard parts.count == 2, let source = snapshot.registry.workload(.init(namespace: parts[0], name: parts[1])) else {
            throw Failure(description: "no workload \(request.from) (namespace/name)", field: "from")
        }
        let target = try Target(url: request.url)
        var walk = Walk(snapshot: snapshot)
        walk.outbound(from: source, target: target, method: (request.method ?? "GET").uppercased(), headers: request.headers ?? [:])
        // Equal ends (several endpoints of one workload) are merged.
        var merged: [Outcome] = []
        for outcome in walk.outcomes where outcome.probability > 0 {
            if let index = merged.firstIndex(where: { $0.status == outcome.status && $0.servedBy == outcome.servedBy && $0.reason == outcome.reason && $0.decidedBy == outcome.decidedBy }) {
                merged[index].probability += outcome.probability
            } else {
                merged.append(outcome)
            }
        }
        return RequestSimulation(request: request, steps: walk.steps, outcomes: merged)
    }

    /// The steps and outcomes as text, for a terminal.
    public var text: String {
        var lines = ["\(request.method?.uppercased() ?? "GET") \(request.url) from \(request.from)"]
        let width = steps.map(\.proxy.count).max() ?? 0
        for step in steps {
            let indent = String(repeating: "  ", count: step.depth)
            lines.append("  \(step.proxy.padding(toLength: width, withPad: " ", startingAt: 0))  \(indent)\(step.stage): \(step.detail)")
        }
        lines.append("outcomes:")
        for outcome in outcomes {
            let percent = String(format: "%6.2f%%", outcome.probability * 100)
            let what = outcome.status.map { "status \($0)" } ?? (outcome.servedBy.map { "served by \($0)" } ?? "answered outside the mesh")
            lines.append("  \(percent)  \(what): \(outcome.reason)" + (outcome.decidedBy.map { " [\($0)]" } ?? ""))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Where the app sends the request.
    struct Target {
        var http: Bool
        var host: String
        var port: UInt32
        /// Path with query.
        var path: String

        init(url: String) throws(Failure) {
            guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
                  let host = components.host, !host.isEmpty
            else {
                throw Failure(description: "\(url) is not a URL such as http://reviews.default:9080/path or tcp://db.default:5432", field: "url")
            }
            switch scheme {
            case "http": http = true
            case "tcp": http = false
            default: throw Failure(description: "scheme \(scheme) is not simulated: use http (plaintext from the app) or tcp", field: "url")
            }
            guard let port = components.port ?? (http ? 80 : nil), (1...65535).contains(port) else {
                throw Failure(description: "\(url) names no port", field: "url")
            }
            self.host = host.lowercased()
            self.port = UInt32(port)
            let rawPath = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
            path = rawPath + (components.percentEncodedQuery.map { "?" + $0 } ?? "")
        }

        /// The Host header an HTTP client sends: the host, with the port unless it is 80.
        var authority: String { port == 80 ? host : "\(host):\(port)" }
    }

    /// How a cluster connects to one endpoint.
    struct Transport {
        /// TLS at all.
        var tls: Bool
        /// Istio mTLS with the workload certificate (SDS), rather than TLS from files.
        var mesh: Bool
        var sni: String?
        /// The SPIFFE IDs the caller accepts from the server (empty: any).
        var expectedIdentities: [String]
        var name: String { tls ? (mesh ? "mTLS" : "TLS") : "plaintext" }
    }

    /// The walk: the steps taken and the ends reached, with the proxies' configurations
    /// translated once each.
    struct Walk {
        let snapshot: MeshSnapshot
        let memo = TranslationMemo()
        var simulators: [ServiceRegistry.WorkloadID: TrafficSimulator] = [:]
        var steps: [Step] = []
        var outcomes: [Outcome] = []

        init(snapshot: MeshSnapshot) {
            self.snapshot = snapshot
        }

        mutating func simulator(_ workload: WorkloadInstance) -> TrafficSimulator {
            let id = ServiceRegistry.WorkloadID(namespace: workload.namespace, name: workload.name)
            if let known = simulators[id] { return known }
            let made = TrafficSimulator(ConfigurationDiff.configuration(of: id, in: snapshot, memo: memo))
            simulators[id] = made
            return made
        }

        mutating func step(_ workload: WorkloadInstance, _ stage: String, _ detail: String, depth: Int) {
            steps.append(Step(proxy: "\(workload.namespace)/\(workload.name)", stage: stage, detail: detail, depth: depth))
        }

        mutating func end(_ probability: Double, status: Int?, servedBy: String? = nil, _ reason: String, decidedBy: String? = nil) {
            outcomes.append(Outcome(probability: probability, status: status, servedBy: servedBy, reason: reason, decidedBy: decidedBy))
        }

        // MARK: The caller's proxy

        mutating func outbound(from source: WorkloadInstance, target: Target, method: String, headers requestHeaders: [String: String]) {
            let proxy = simulator(source)
            let candidates = proxy.listeners.filter { $0.address.socketAddress.portValue == target.port && $0.trafficDirection != .inbound }
            guard let listener = candidates.first(where: { $0.trafficDirection == .outbound }) ?? candidates.first else {
                step(source, "listener", "no listener on port \(target.port): the app's connection is refused", depth: 0)
                return end(1, status: nil, "connection refused: \(source.name)'s proxy has no listener on port \(target.port)")
            }
            // A detected port has an HTTP and a TCP chain: the one the request's kind takes.
            let chain = listener.filterChains.first { Self.carries($0, http: target.http) && $0.filterChainMatch.transportProtocol != "tls" } ?? listener.filterChains.first
            if let filter = chain?.filters.first(where: { $0.name == "envoy.filters.network.http_connection_manager" }),
               let hcm = try? Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager(unpackingAny: filter.typedConfig) {
                guard target.http else {
                    step(source, "listener", "\(listener.name) speaks HTTP; a tcp:// request is simulated as HTTP only with http://", depth: 0)
                    return end(1, status: nil, "a raw TCP stream to an HTTP listener is not simulated")
                }
                var headers = Dictionary(requestHeaders.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { $1 })
                headers[":method"] = method
                headers[":authority"] = target.authority
                headers[":path"] = target.path
                httpOutbound(source, listener: listener, hcm: hcm, headers: headers)
            } else if let filter = chain?.filters.first(where: { $0.name == "envoy.filters.network.tcp_proxy" }),
                      let tcp = try? Envoy_Extensions_Filters_Network_TcpProxy_V3_TcpProxy(unpackingAny: filter.typedConfig) {
                step(source, "listener", "\(listener.name): TCP proxy (stat prefix \(tcp.statPrefix))", depth: 0)
                var weighted: [(String, UInt32)] = []
                switch tcp.clusterSpecifier {
                case .cluster(let name): weighted = [(name, 1)]
                case .weightedClusters(let set): weighted = set.clusters.map { ($0.name, $0.weight) }
                default: break
                }
                clusters(source, weighted, probability: 1, request: nil, depth: 1, decidedBy: listener.name)
            } else {
                step(source, "listener", "\(listener.name) has no HTTP or TCP proxy filter", depth: 0)
                end(1, status: nil, "the connection is closed by \(source.name)'s proxy")
            }
        }

        mutating func httpOutbound(_ source: WorkloadInstance, listener: Envoy_Config_Listener_V3_Listener, hcm: Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager, headers: [String: String]) {
            let proxy = simulator(source)
            let config: Envoy_Config_Route_V3_RouteConfiguration
            switch hcm.routeSpecifier {
            case .rds(let rds):
                guard let found = proxy.routes[rds.routeConfigName] else {
                    step(source, "listener", "\(listener.name): HTTP, route configuration \(rds.routeConfigName) was not generated", depth: 0)
                    return end(1, status: 404, "no route configuration", decidedBy: listener.name)
                }
                config = found
            case .routeConfig(let inline): config = inline
            default: return end(1, status: 404, "listener \(listener.name) has no routes", decidedBy: listener.name)
            }
            step(source, "listener", "\(listener.name): HTTP, route configuration \(config.name)", depth: 0)
            let authority = headers[":authority"] ?? ""
            guard let host = TrafficSimulator.virtualHost(for: authority, in: config) else {
                step(source, "route", "no virtual host of \(config.name) matches \(authority)", depth: 0)
                return end(1, status: 404, "no virtual host matches \(authority) (Envoy answers 404 NR)", decidedBy: config.name)
            }
            let request = TrafficSimulator.HTTPRequest(
                address: "", port: 0, authority: authority, path: headers[":path"] ?? "/", method: headers[":method"] ?? "GET",
                headers: headers.filter { !$0.key.hasPrefix(":") })
            guard let route = host.routes.first(where: { TrafficSimulator.matches($0.match, request) }) else {
                step(source, "route", "virtual host \(host.name): no route matches \(request.method) \(request.path)", depth: 0)
                return end(1, status: 404, "no route of \(host.name) matches (Envoy answers 404 NR)", decidedBy: host.name)
            }
            let routeName = route.name.isEmpty ? "(unnamed)" : route.name
            step(source, "route", "virtual host \(host.name), route \(routeName) (\(Self.describe(route.match)))", depth: 0)
            var probability = 1.0
            if let any = route.typedPerFilterConfig["envoy.filters.http.fault"],
               let fault = try? Envoy_Extensions_Filters_Http_Fault_V3_HTTPFault(unpackingAny: any) {
                if fault.hasDelay {
                    let share = Self.fraction(fault.delay.percentage, present: fault.delay.hasPercentage)
                    step(source, "fault", "delay \(fault.delay.fixedDelay.seconds).\(String(format: "%03d", fault.delay.fixedDelay.nanos / 1_000_000))s for \(Self.percent(share)) of requests", depth: 0)
                }
                if fault.hasAbort {
                    let share = Self.fraction(fault.abort.percentage, present: fault.abort.hasPercentage)
                    switch fault.abort.errorType {
                    case .httpStatus(let status):
                        step(source, "fault", "abort with \(status) for \(Self.percent(share)) of requests", depth: 0)
                        end(share, status: Int(status), "fault injected by the route", decidedBy: routeName)
                    case .grpcStatus(let status):
                        step(source, "fault", "abort with gRPC status \(status) for \(Self.percent(share)) of requests", depth: 0)
                        end(share, status: 200, "fault injected by the route (grpc-status \(status))", decidedBy: routeName)
                    default: break
                    }
                    probability = 1 - share
                    if probability <= 0 { return }
                }
            }
            var downstream = headers
            for option in host.requestHeadersToAdd + route.requestHeadersToAdd {
                downstream[option.header.key.lowercased()] = option.header.value
            }
            for name in host.requestHeadersToRemove + route.requestHeadersToRemove { downstream[name.lowercased()] = nil }
            switch route.action {
            case .directResponse(let direct):
                step(source, "route", "answers itself with \(direct.status)", depth: 0)
                end(probability, status: Int(direct.status), "direct response of the route", decidedBy: routeName)
            case .redirect(let redirect):
                let codes: [Envoy_Config_Route_V3_RedirectAction.RedirectResponseCode: Int] = [.movedPermanently: 301, .found: 302, .seeOther: 303, .temporaryRedirect: 307, .permanentRedirect: 308]
                let status = codes[redirect.responseCode] ?? 301
                step(source, "route", "redirects with \(status)", depth: 0)
                end(probability, status: status, "redirect of the route", decidedBy: routeName)
            case .route(let action):
                if !action.prefixRewrite.isEmpty, case .prefix(let prefix) = route.match.pathSpecifier, let path = downstream[":path"] {
                    downstream[":path"] = action.prefixRewrite + path.dropFirst(prefix.count)
                }
                if case .hostRewriteLiteral(let authority)? = action.hostRewriteSpecifier { downstream[":authority"] = authority }
                if action.hasTimeout { step(source, "route", "timeout \(action.timeout.seconds)s\(action.timeout.seconds == 0 ? " (none)" : "")", depth: 0) }
                if action.hasRetryPolicy {
                    step(source, "route", "retries: \(action.retryPolicy.numRetries.value) on \(action.retryPolicy.retryOn) (not simulated)", depth: 0)
                }
                for mirror in action.requestMirrorPolicies { step(source, "route", "mirrors to \(mirror.cluster) (its answer is ignored)", depth: 0) }
                var weighted: [(String, UInt32)] = []
                switch action.clusterSpecifier {
                case .cluster(let name): weighted = [(name, 1)]
                case .weightedClusters(let set):
                    weighted = set.clusters.map { ($0.name, $0.weight.value) }
                default:
                    return end(probability, status: 503, "route \(routeName) names no cluster", decidedBy: routeName)
                }
                clusters(source, weighted, probability: probability, request: downstream, depth: 1, decidedBy: routeName)
            default:
                end(probability, status: 404, "route \(routeName) has no action", decidedBy: routeName)
            }
        }

        /// Follows the clusters of a route or TCP proxy with their weights.
        mutating func clusters(_ source: WorkloadInstance, _ weighted: [(String, UInt32)], probability: Double, request: [String: String]?, depth: Int, decidedBy: String) {
            let total = Double(weighted.reduce(0) { $0 + $1.1 })
            for (name, weight) in weighted where weight > 0 {
                let share = total > 0 ? Double(weight) / total : 0
                step(source, "cluster", "\(name)" + (weighted.count > 1 ? " (weight \(weight), \(Self.percent(share)))" : ""), depth: depth)
                cluster(source, name, probability: probability * share, request: request, depth: depth + 1)
            }
        }

        mutating func cluster(_ source: WorkloadInstance, _ name: String, probability: Double, request: [String: String]?, depth: Int) {
            let proxy = simulator(source)
            guard let cluster = proxy.clusters[name] else {
                step(source, "cluster", "\(name) was not generated", depth: depth)
                return end(probability, status: 503, "cluster \(name) not found (Envoy answers 503 NC)", decidedBy: name)
            }
            if cluster.type == .originalDst || name == "PassthroughCluster" {
                step(source, "cluster", "passes through to the address the app asked for", depth: depth)
                return end(probability, status: nil, "leaves the mesh to the original destination", decidedBy: name)
            }
            if case .clusterType? = cluster.clusterDiscoveryType {
                step(source, "cluster", "dynamic forward proxy: the host is resolved when the request comes", depth: depth)
                return end(probability, status: nil, "leaves the mesh to \(request?[":authority"] ?? "the host")", decidedBy: name)
            }
            let endpoints = proxy.lbShares(of: cluster)
            guard !endpoints.isEmpty else {
                step(source, "endpoint", "\(name) has no endpoints", depth: depth)
                return end(probability, status: 503, "no healthy upstream (Envoy answers 503 UH)", decidedBy: name)
            }
            for (endpoint, fraction) in endpoints {
                let share = probability * fraction
                let transport = Self.transport(of: cluster, endpoint: endpoint)
                let socket = endpoint.endpoint.address.socketAddress
                let address = socket.address, port = socket.portValue
                var detail = "\(address):\(port) over \(transport.name)"
                if let sni = transport.sni { detail += ", SNI \(sni)" }
                if endpoints.count > 1 { detail += " (\(Self.percent(fraction)) of the cluster's requests)" }
                step(source, "endpoint", detail, depth: depth)
                guard cluster.type == .eds || cluster.type == .static, !address.isEmpty, RBACEvaluation.ipBytes(address) != nil else {
                    end(share, status: nil, "leaves the mesh to \(address):\(port)", decidedBy: name)
                    continue
                }
                inbound(source: source, address: address, port: port, transport: transport, request: request, probability: share, depth: depth + 1)
            }
        }

        // MARK: The destination's proxy

        /// Whether `chain` handles HTTP (`http`) or TCP connections.
        static func carries(_ chain: Envoy_Config_Listener_V3_FilterChain, http: Bool) -> Bool {
            chain.filters.contains { $0.name == (http ? "envoy.filters.network.http_connection_manager" : "envoy.filters.network.tcp_proxy") }
        }

        mutating func inbound(source: WorkloadInstance, address: String, port: UInt32, transport: Transport, request: [String: String]?, probability: Double, depth: Int) {
            let candidates = snapshot.registry.workloads.values.filter { $0.address == address }.sorted { ($0.namespace, $0.name) < ($1.namespace, $1.name) }
            guard !candidates.isEmpty else {
                return end(probability, status: nil, "leaves the mesh to \(address):\(port) (no workload has that address)")
            }
            var found: (WorkloadInstance, Envoy_Config_Listener_V3_Listener)?
            for workload in candidates {
                if let listener = simulator(workload).listeners.first(where: {
                    $0.trafficDirection == .inbound && $0.address.socketAddress.address == address && $0.address.socketAddress.portValue == port
                }) {
                    found = (workload, listener)
                    break
                }
            }
            guard let (destination, listener) = found else {
                let workload = candidates[0]
                step(workload, "inbound", "no inbound listener on \(address):\(port)", depth: depth)
                return end(probability, status: 503, "\(workload.namespace)/\(workload.name) does not listen on \(address):\(port) (connection refused; Envoy answers 503 UF)")
            }
            let destinationName = "\(destination.namespace)/\(destination.name)"
            let identity = "spiffe://\(snapshot.settings.trustDomain)/ns/\(destination.namespace)/sa/\(destination.serviceAccount)"
            let wanted = transport.tls ? "tls" : "raw_buffer"
            let sameTransport = listener.filterChains.filter { $0.filterChainMatch.transportProtocol == wanted }
            let chain = sameTransport.first { Self.carries($0, http: request != nil) } ?? sameTransport.first
                ?? listener.filterChains.first { $0.filterChainMatch.transportProtocol.isEmpty }
            guard let chain else {
                let accepted = listener.filterChains.map { $0.filterChainMatch.transportProtocol == "tls" ? "mTLS" : "plaintext" }.joined(separator: ", ")
                step(destination, "inbound", "\(listener.name) accepts \(accepted) only; the caller sends \(transport.name)", depth: depth)
                return end(probability, status: 503, "\(destinationName) resets the \(transport.name) connection: its port accepts \(accepted) only (Envoy answers 503 UF/URX)", decidedBy: listener.name)
            }
            let chainTLS = chain.hasTransportSocket && chain.transportSocket.name == "envoy.transport_sockets.tls"
            if transport.tls != chainTLS {
                step(destination, "inbound", "filter chain \(chain.name) expects \(chainTLS ? "mTLS" : "plaintext"); the caller sends \(transport.name)", depth: depth)
                return end(probability, status: 503, "\(destinationName) cannot read the \(transport.name) connection (Envoy answers 503)", decidedBy: chain.name)
            }
            if transport.tls, !transport.expectedIdentities.isEmpty, !transport.expectedIdentities.contains(identity) {
                step(destination, "inbound", "presents \(identity); the caller accepts only \(transport.expectedIdentities.joined(separator: ", "))", depth: depth)
                return end(probability, status: 503, "the caller rejects \(destinationName)'s certificate (Envoy answers 503 UF)", decidedBy: chain.name)
            }
            step(destination, "inbound", "\(listener.name), filter chain \(chain.name) (\(transport.name))", depth: depth)
            let sourceIdentity = transport.tls && transport.mesh
                ? "spiffe://\(snapshot.settings.trustDomain)/ns/\(source.namespace)/sa/\(source.serviceAccount)" : nil
            var attributes = RBACEvaluation.Attributes(
                headers: request ?? [:], principal: sourceIdentity, sourceIP: source.address, destinationIP: address, destinationPort: port,
                serverName: transport.tls ? transport.sni : nil)
            if let filter = chain.filters.first(where: { $0.name == "envoy.filters.network.http_connection_manager" }),
               let hcm = try? Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager(unpackingAny: filter.typedConfig) {
                guard request != nil else {
                    return end(probability, status: nil, "a raw TCP stream to an HTTP port is not simulated", decidedBy: chain.name)
                }
                for httpFilter in hcm.httpFilters {
                    switch httpFilter.name {
                    case "envoy.filters.http.rbac":
                        guard let rbac = try? Envoy_Extensions_Filters_Http_Rbac_V3_RBAC(unpackingAny: httpFilter.typedConfig) else { continue }
                        if authorize(destination, rules: rbac.hasRules ? rbac.rules : nil, shadow: rbac.hasShadowRules ? rbac.shadowRules : nil, shadowPrefix: rbac.shadowRulesStatPrefix, attributes: attributes, probability: probability, depth: depth) { return }
                    case "envoy.filters.http.jwt_authn":
                        let token = attributes.headers["authorization"] != nil ? " (the request's Authorization header is not verified)" : ""
                        step(destination, "authorization", "JWT check: judged as a request without a valid token\(token)", depth: depth)
                    default: continue
                    }
                }
                let routes: Envoy_Config_Route_V3_RouteConfiguration
                switch hcm.routeSpecifier {
                case .routeConfig(let inline): routes = inline
                case .rds(let rds): routes = simulator(destination).routes[rds.routeConfigName] ?? .init()
                default: routes = .init()
                }
                let inboundRequest = TrafficSimulator.HTTPRequest(
                    address: address, port: port, authority: attributes.headers[":authority"] ?? "", path: attributes.headers[":path"] ?? "/",
                    method: attributes.headers[":method"] ?? "GET", headers: attributes.headers.filter { !$0.key.hasPrefix(":") })
                guard let host = TrafficSimulator.virtualHost(for: inboundRequest.authority, in: routes),
                      let route = host.routes.first(where: { TrafficSimulator.matches($0.match, inboundRequest) }),
                      case .route(let action)? = route.action, case .cluster(let cluster)? = action.clusterSpecifier
                else {
                    return end(probability, status: 404, "no inbound route of \(destinationName) matches", decidedBy: routes.name)
                }
                app(destination, cluster: cluster, probability: probability, depth: depth)
            } else if let filter = chain.filters.first(where: { $0.name == "envoy.filters.network.tcp_proxy" }),
                      let tcp = try? Envoy_Extensions_Filters_Network_TcpProxy_V3_TcpProxy(unpackingAny: filter.typedConfig) {
                for networkFilter in chain.filters where networkFilter.name == "envoy.filters.network.rbac" {
                    guard let rbac = try? Envoy_Extensions_Filters_Network_Rbac_V3_RBAC(unpackingAny: networkFilter.typedConfig) else { continue }
                    attributes.headers = [:]
                    if authorize(destination, rules: rbac.hasRules ? rbac.rules : nil, shadow: rbac.hasShadowRules ? rbac.shadowRules : nil, shadowPrefix: rbac.shadowRulesStatPrefix, attributes: attributes, probability: probability, depth: depth, tcp: true) { return }
                }
                guard case .cluster(let cluster)? = tcp.clusterSpecifier else {
                    return end(probability, status: nil, "the inbound TCP proxy of \(destinationName) names no cluster", decidedBy: chain.name)
                }
                app(destination, cluster: cluster, probability: probability, depth: depth)
            } else {
                end(probability, status: 503, "the inbound filter chain of \(destinationName) has no proxy filter", decidedBy: chain.name)
            }
        }

        /// One RBAC filter (enforced rules and dry-run or CUSTOM shadow rules); `true` when it ends
        /// the request.
        mutating func authorize(_ destination: WorkloadInstance, rules: Envoy_Config_Rbac_V3_RBAC?, shadow: Envoy_Config_Rbac_V3_RBAC?, shadowPrefix: String, attributes: RBACEvaluation.Attributes, probability: Double, depth: Int, tcp: Bool = false) -> Bool {
            let evaluation = RBACEvaluation(attributes: attributes)
            let denied = tcp ? "the connection is closed" : "status 403 (RBAC: access denied)"
            if let shadow {
                let matched = evaluation.matchingPolicies(shadow)
                switch shadowPrefix {
                case AuthorizationBuilder.customStatPrefix:
                    if let first = matched.first {
                        step(destination, "authorization", "CUSTOM policy \(first) sends the request to its external authorizer", depth: depth)
                        end(probability, status: nil, "decided by the CUSTOM policy's external authorizer (not simulated)", decidedBy: first)
                        return true
                    }
                case AuthorizationBuilder.dryRunDenyPrefix, AuthorizationBuilder.dryRunAllowPrefix:
                    let allow = shadowPrefix == AuthorizationBuilder.dryRunAllowPrefix
                    let verdict = allow ? (matched.isEmpty ? "would deny (no dry-run ALLOW rule matches)" : "would allow (\(matched[0]))") : (matched.isEmpty ? "would not deny" : "would deny (\(matched[0]))")
                    step(destination, "authorization", "dry run: \(verdict); not enforced", depth: depth)
                default: break
                }
            }
            guard let rules else { return false }
            let matched = evaluation.matchingPolicies(rules)
            switch rules.action {
            case .allow:
                if let first = matched.first {
                    step(destination, "authorization", "ALLOW: \(first) matches", depth: depth)
                    return false
                }
                step(destination, "authorization", "ALLOW policies apply and no rule matches: \(denied)", depth: depth)
                end(probability, status: tcp ? 503 : 403, "denied: no ALLOW rule matches", decidedBy: nil)
                return true
            case .deny:
                if let first = matched.first {
                    step(destination, "authorization", "DENY: \(first) matches: \(denied)", depth: depth)
                    end(probability, status: tcp ? 503 : 403, "denied by a DENY rule", decidedBy: first)
                    return true
                }
                step(destination, "authorization", "DENY: no rule matches", depth: depth)
                return false
            case .log:
                step(destination, "authorization", matched.isEmpty ? "AUDIT: no rule matches" : "AUDIT: \(matched[0]) matches (logged)", depth: depth)
                return false
            default:
                return false
            }
        }

        mutating func app(_ destination: WorkloadInstance, cluster name: String, probability: Double, depth: Int) {
            let proxy = simulator(destination)
            let endpoints = proxy.clusters[name].map { proxy.lbEndpoints(of: $0) } ?? []
            let targets = endpoints.map { "\($0.endpoint.address.socketAddress.address):\($0.endpoint.address.socketAddress.portValue)" }
            step(destination, "app", "\(name) → \(targets.isEmpty ? "no endpoint" : targets.joined(separator: ", "))", depth: depth)
            end(probability, status: nil, servedBy: "\(destination.namespace)/\(destination.name)", "the app of \(destination.namespace)/\(destination.name) answers", decidedBy: name)
        }

        // MARK: Helpers

        /// The transport a cluster uses toward one endpoint: its transport socket matches (auto
        /// mTLS reads the endpoint's `tlsMode`), else its transport socket.
        static func transport(of cluster: Envoy_Config_Cluster_V3_Cluster, endpoint: Envoy_Config_Endpoint_V3_LbEndpoint) -> Transport {
            var socket: Envoy_Config_Core_V3_TransportSocket? = cluster.hasTransportSocket ? cluster.transportSocket : nil
            if !cluster.transportSocketMatches.isEmpty {
                let fields = endpoint.metadata.filterMetadata["envoy.transport_socket_match"]?.fields ?? [:]
                socket = cluster.transportSocketMatches.first { match in
                    match.match.fields.allSatisfy { fields[$0.key] == $0.value }
                }?.transportSocket
            }
            guard let socket, socket.name == "envoy.transport_sockets.tls",
                  let context = try? Envoy_Extensions_TransportSockets_Tls_V3_UpstreamTlsContext(unpackingAny: socket.typedConfig)
            else {
                return Transport(tls: false, mesh: false, sni: nil, expectedIdentities: [])
            }
            let common = context.commonTlsContext
            var sans: [Envoy_Extensions_TransportSockets_Tls_V3_SubjectAltNameMatcher] = []
            switch common.validationContextType {
            case .combinedValidationContext(let combined): sans = combined.defaultValidationContext.matchTypedSubjectAltNames
            case .validationContext(let validation): sans = validation.matchTypedSubjectAltNames
            default: break
            }
            let identities = sans.compactMap { matcher -> String? in
                guard matcher.sanType == .uri, case .exact(let exact)? = matcher.matcher.matchPattern else { return nil }
                return exact
            }
            return Transport(
                tls: true, mesh: !common.tlsCertificateSdsSecretConfigs.isEmpty, sni: context.sni.isEmpty ? nil : context.sni,
                expectedIdentities: identities.count == sans.count ? identities : [])
        }

        static func fraction(_ percent: Envoy_Type_V3_FractionalPercent, present: Bool) -> Double {
            guard present else { return 1 }
            let denominator: Double
            switch percent.denominator {
            case .tenThousand: denominator = 10_000
            case .million: denominator = 1_000_000
            default: denominator = 100
            }
            return min(1, Double(percent.numerator) / denominator)
        }

        static func percent(_ share: Double) -> String {
            let value = share * 100
            return value == value.rounded() ? "\(Int(value))%" : String(format: "%.2f%%", value)
        }

        static func describe(_ match: Envoy_Config_Route_V3_RouteMatch) -> String {
            var parts: [String] = []
            switch match.pathSpecifier {
            case .prefix(let prefix): parts.append("prefix \(prefix)")
            case .path(let path): parts.append("path \(path)")
            case .safeRegex(let regex): parts.append("regex \(regex.regex)")
            case .pathSeparatedPrefix(let prefix): parts.append("path prefix \(prefix)")
            default: break
            }
            for header in match.headers { parts.append("header \(header.name)") }
            for parameter in match.queryParameters { parts.append("query \(parameter.name)") }
            return parts.joined(separator: ", ")
        }
    }
}
