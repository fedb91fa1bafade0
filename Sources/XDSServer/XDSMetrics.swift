internal import EnvoyAPI
internal import Metrics

/// The xDS server's metrics, with Istio's names: `pilot_xds` (connected proxies),
/// `pilot_xds_pushes{type}`, `pilot_total_xds_rejects{type}`, plus refused streams.
struct XDSMetrics: Sendable {
    private let connectedProxies: Gauge
    private let pushes: [String: Counter]
    private let rejects: [String: Counter]
    private let refusedStreams: Counter
    private let connections = ConnectionCount()

    init(factory: any MetricsFactory) {
        connectedProxies = Gauge(label: "pilot_xds", dimensions: [], factory: factory)
        var pushes: [String: Counter] = [:]
        var rejects: [String: Counter] = [:]
        for typeURL in XDSTypeURL.pushOrder {
            let type = XDSTypeURL.shortName(typeURL)
            pushes[typeURL] = Counter(label: "pilot_xds_pushes", dimensions: [("type", type)], factory: factory)
            rejects[typeURL] = Counter(label: "pilot_total_xds_rejects", dimensions: [("type", type)], factory: factory)
        }
        self.pushes = pushes
        self.rejects = rejects
        refusedStreams = Counter(label: "meshd_xds_refused_streams_total", dimensions: [], factory: factory)
    }

    func connected() { connectedProxies.record(connections.add(1)) }
    func disconnected() { connectedProxies.record(connections.add(-1)) }
    func refused() { refusedStreams.increment() }
    func pushed(_ typeURL: String) { pushes[typeURL]?.increment() }
    func rejected(_ typeURL: String) { rejects[typeURL]?.increment() }
}
