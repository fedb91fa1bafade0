internal import EnvoyAPI
internal import SwiftProtobuf

/// Retry policies Istio applies.
enum RetryPolicies {
    /// Istio's policy when a route sets none: 2 attempts on connection failures, refused streams,
    /// `unavailable`/`cancelled` gRPC statuses and 503, choosing another host each time.
    static var istioDefault: Envoy_Config_Route_V3_RetryPolicy {
        var policy = Envoy_Config_Route_V3_RetryPolicy()
        policy.retryOn = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
        policy.numRetries = Envoy.uint32(2)
        policy.retriableStatusCodes = [503]
        policy.hostSelectionRetryMaxAttempts = 5
        var predicate = Envoy_Config_Route_V3_RetryPolicy.RetryHostPredicate()
        predicate.name = "envoy.retry_host_predicates.previous_hosts"
        predicate.typedConfig = Google_Protobuf_Any(deterministic: Envoy_Extensions_Retry_Host_PreviousHosts_V3_PreviousHostsPredicate())
        policy.retryHostPredicate = [predicate]
        return policy
    }

    /// VirtualService `retries.retryRemoteLocalities`, as Istio translates it: Envoy's
    /// previous-priorities plugin, which takes the priorities already tried out of the load
    /// for the next attempt (updated every 2 attempts: the first try and its retry may share one).
    static var previousPriorities: Envoy_Config_Route_V3_RetryPolicy.RetryPriority {
        var priority = Envoy_Config_Route_V3_RetryPolicy.RetryPriority()
        priority.name = "envoy.retry_priorities.previous_priorities"
        var config = Envoy_Extensions_Retry_Priority_PreviousPriorities_V3_PreviousPrioritiesConfig()
        config.updateFrequency = 2
        priority.typedConfig = Google_Protobuf_Any(deterministic: config)
        return priority
    }
}
