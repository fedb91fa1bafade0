internal import EnvoyAPI
internal import Metrics

/// The xDS server's metrics, with Istio's names: `pilot_xds` (connected proxies),
/// `pilot_xds_pushes{type}`, `pilot_total_xds_rejects{type}`, `pilot_xds_push_time{type}` (from a
/// change reaching a stream to its response being written), `pilot_proxy_convergence_time` (from
/// a change reaching a stream to the proxy having acknowledged everything), plus admitted streams
/// by API (`meshd_xds_streams_total{api=sotw|delta}`) and refused streams.
struct XDSMetrics: Sendable {
    private let connectedProxies: Gauge
    private let pushes: [String: Counter]
    private let rejects: [String: Counter]
    private let refusedStreams: Counter
    private let pushTimes: [String: Metrics.Timer]
    private let convergence: Metrics.Timer
    private let connections = ConnectionCount()
    private let streams: [String: Counter]

    init(factory: any MetricsFactory) {
        connectedProxies = Gauge(label: "pilot_xds", dimensions: [], factory: factory)
        var pushes: [String: Counter] = [:]
        var rejects: [String: Counter] = [:]
        var pushTimes: [String: Metrics.Timer] = [:]
        for typeURL in XDSTypeURL.pushOrder {
            let type = XDSTypeURL.shortName(typeURL)
            pushes[typeURL] = Counter(label: "pilot_xds_pushes", dimensions: [("type", type)], factory: factory)
            rejects[typeURL] = Counter(label: "pilot_total_xds_rejects", dimensions: [("type", type)], factory: factory)
            pushTimes[typeURL] = Metrics.Timer(label: "pilot_xds_push_time", dimensions: [("type", type)], factory: factory)
        }
        self.pushes = pushes
        self.rejects = rejects
        self.pushTimes = pushTimes
        convergence = Metrics.Timer(label: "pilot_proxy_convergence_time", dimensions: [], factory: factory)
        refusedStreams = Counter(label: "meshd_xds_refused_streams_total", dimensions: [], factory: factory)
        streams = Dictionary(uniqueKeysWithValues: ["sotw", "delta"].map { ($0, Counter(label: "meshd_xds_streams_total", dimensions: [("api", $0)], factory: factory)) })
    }

    func connected(api: String) {
        streams[api]?.increment()
        connectedProxies.record(connections.add(1))
    }
    func disconnected() { connectedProxies.record(connections.add(-1)) }
    func refused() { refusedStreams.increment() }
    func pushed(_ typeURL: String, after duration: Duration) {
        pushes[typeURL]?.increment()
        pushTimes[typeURL]?.recordNanoseconds(duration.nanoseconds)
    }
    func converged(after duration: Duration) { convergence.recordNanoseconds(duration.nanoseconds) }
    func rejected(_ typeURL: String) { rejects[typeURL]?.increment() }
}

extension Duration {
    var nanoseconds: Int64 {
        components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000
    }
}
