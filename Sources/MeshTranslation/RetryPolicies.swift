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
}
