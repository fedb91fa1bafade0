internal import EnvoyAPI
internal import MeshModel
internal import SwiftProtobuf

/// Applies a DestinationRule's traffic policy to a cluster, with Istio's defaults for what it
/// leaves unset (least request; circuit-breaker thresholds at 4294967295).
enum ClusterPolicies {
    static func apply(_ policy: EffectivePolicy, to cluster: inout Cluster, protocol serviceProtocol: ServiceProtocol) {
        applyLoadBalancer(policy.loadBalancer, to: &cluster)
        var protocolOptions = Envoy_Extensions_Upstreams_Http_V3_HttpProtocolOptions()
        var common = Envoy_Config_Core_V3_HttpProtocolOptions()
        var http2 = serviceProtocol.usesHTTP2
        // A detected port's connections are HTTP/1.1 or HTTP/2, as its clients spoke them.
        var useClientProtocol = serviceProtocol.isDetected
        var http2Options = Envoy_Config_Core_V3_Http2ProtocolOptions()

        if let pool = policy.connectionPool {
            var thresholds = Envoy.defaultCircuitBreakers.thresholds[0]
            if let tcp = pool.tcp {
                if let max = tcp.maxConnections, max > 0 { thresholds.maxConnections = Envoy.uint32(UInt32(max)) }
                if let timeout = tcp.connectTimeout { cluster.connectTimeout = Envoy.duration(milliseconds: timeout.nanoseconds / 1_000_000) }
                if let keepalive = tcp.tcpKeepalive {
                    var envoyKeepalive = Envoy_Config_Core_V3_TcpKeepalive()
                    if let probes = keepalive.probes { envoyKeepalive.keepaliveProbes = Envoy.uint32(probes) }
                    if let time = keepalive.time { envoyKeepalive.keepaliveTime = Envoy.uint32(UInt32(max(1, time.wholeSeconds))) }
                    if let interval = keepalive.interval { envoyKeepalive.keepaliveInterval = Envoy.uint32(UInt32(max(1, interval.wholeSeconds))) }
                    var options = Envoy_Config_Cluster_V3_UpstreamConnectionOptions()
                    options.tcpKeepalive = envoyKeepalive
                    cluster.upstreamConnectionOptions = options
                }
                if let duration = tcp.maxConnectionDuration { common.maxConnectionDuration = Envoy.duration(milliseconds: duration.nanoseconds / 1_000_000) }
                if let idle = tcp.idleTimeout { common.idleTimeout = Envoy.duration(milliseconds: idle.nanoseconds / 1_000_000) }
            }
            if let http = pool.http {
                if let pending = http.http1MaxPendingRequests, pending > 0 { thresholds.maxPendingRequests = Envoy.uint32(UInt32(pending)) }
                if let requests = http.http2MaxRequests, requests > 0 { thresholds.maxRequests = Envoy.uint32(UInt32(requests)) }
                if let retries = http.maxRetries, retries > 0 { thresholds.maxRetries = Envoy.uint32(UInt32(retries)) }
                if let perConnection = http.maxRequestsPerConnection, perConnection > 0 { common.maxRequestsPerConnection = Envoy.uint32(UInt32(perConnection)) }
                if let idle = http.idleTimeout { common.idleTimeout = Envoy.duration(milliseconds: idle.nanoseconds / 1_000_000) }
                if http.h2UpgradePolicy == .UPGRADE && serviceProtocol == .http { http2 = true }
                if http.h2UpgradePolicy == .DO_NOT_UPGRADE && serviceProtocol == .http { http2 = false }
                if http.useClientProtocol == true { useClientProtocol = true }
                if let streams = http.maxConcurrentStreams, streams > 0 { http2Options.maxConcurrentStreams = Envoy.uint32(UInt32(streams)) }
            }
            var breakers = Envoy_Config_Cluster_V3_CircuitBreakers()
            breakers.thresholds = [thresholds]
            cluster.circuitBreakers = breakers
        }

        let hasCommon = common != Envoy_Config_Core_V3_HttpProtocolOptions()
        if http2 || useClientProtocol || hasCommon {
            if hasCommon { protocolOptions.commonHTTPProtocolOptions = common }
            if useClientProtocol {
                var downstream = Envoy_Extensions_Upstreams_Http_V3_HttpProtocolOptions.UseDownstreamHttpConfig()
                downstream.http2ProtocolOptions = http2Options
                protocolOptions.useDownstreamProtocolConfig = downstream
            } else {
                var explicit = Envoy_Extensions_Upstreams_Http_V3_HttpProtocolOptions.ExplicitHttpConfig()
                if http2 {
                    explicit.http2ProtocolOptions = http2Options
                } else {
                    explicit.httpProtocolOptions = Envoy_Config_Core_V3_Http1ProtocolOptions()
                }
                protocolOptions.explicitHTTPConfig = explicit
            }
            cluster.typedExtensionProtocolOptions = ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions": Google_Protobuf_Any(deterministic: protocolOptions)]
        }

        if LocalityView.weighsLocalities(policy) {
            cluster.commonLbConfig.localityWeightedLbConfig = Envoy_Config_Cluster_V3_Cluster.CommonLbConfig.LocalityWeightedLbConfig()
        }
        if let detection = policy.outlierDetection {
            var outlier = Envoy_Config_Cluster_V3_OutlierDetection()
            if let errors = detection.consecutive5xxErrors {
                outlier.consecutive5Xx = Envoy.uint32(errors)
                outlier.enforcingConsecutive5Xx = Envoy.uint32(errors > 0 ? 100 : 0)
            } else if let legacy = detection.consecutiveErrors, legacy > 0 {
                outlier.consecutive5Xx = Envoy.uint32(UInt32(legacy))
            }
            if let gateway = detection.consecutiveGatewayErrors {
                outlier.consecutiveGatewayFailure = Envoy.uint32(gateway)
                outlier.enforcingConsecutiveGatewayFailure = Envoy.uint32(gateway > 0 ? 100 : 0)
            }
            if let interval = detection.interval { outlier.interval = Envoy.duration(milliseconds: interval.nanoseconds / 1_000_000) }
            if let ejection = detection.baseEjectionTime { outlier.baseEjectionTime = Envoy.duration(milliseconds: ejection.nanoseconds / 1_000_000) }
            if let percent = detection.maxEjectionPercent { outlier.maxEjectionPercent = Envoy.uint32(UInt32(max(0, min(100, percent)))) }
            if detection.splitExternalLocalOriginErrors == true {
                outlier.splitExternalLocalOriginErrors = true
                if let local = detection.consecutiveLocalOriginFailures { outlier.consecutiveLocalOriginFailure = Envoy.uint32(local) }
            }
            cluster.outlierDetection = outlier
            if let minHealth = detection.minHealthPercent, minHealth >= 0 {
                var common = cluster.commonLbConfig
                var threshold = Envoy_Type_V3_Percent()
                threshold.value = Double(minHealth)
                common.healthyPanicThreshold = threshold
                cluster.commonLbConfig = common
            }
        }
    }

    static func applyLoadBalancer(_ settings: LoadBalancerSettings?, to cluster: inout Cluster) {
        guard let settings else { return }
        if let hash = settings.consistentHash {
            if let maglev = hash.maglev {
                cluster.lbPolicy = .maglev
                if let size = maglev.tableSize, size > 0 {
                    var config = Envoy_Config_Cluster_V3_Cluster.MaglevLbConfig()
                    config.tableSize = Google_Protobuf_UInt64Value(size)
                    cluster.maglevLbConfig = config
                }
            } else {
                cluster.lbPolicy = .ringHash
                let size = hash.ringHash?.minimumRingSize ?? hash.minimumRingSize
                if let size, size > 0 {
                    var config = Envoy_Config_Cluster_V3_Cluster.RingHashLbConfig()
                    config.minimumRingSize = Google_Protobuf_UInt64Value(size)
                    cluster.ringHashLbConfig = config
                }
            }
            return
        }
        switch settings.simple {
        case .ROUND_ROBIN?: cluster.lbPolicy = .roundRobin
        case .RANDOM?: cluster.lbPolicy = .random
        case .LEAST_REQUEST?, .LEAST_CONN?: cluster.lbPolicy = .leastRequest
        case .PASSTHROUGH?, .UNSPECIFIED?, nil: break
        }
    }
}
