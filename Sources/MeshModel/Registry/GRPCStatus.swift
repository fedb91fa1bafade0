/// gRPC's status codes (grpc/doc/statuscodes.md), by the names Istio's `abort.grpcStatus` takes.
public enum GRPCStatus {
    /// The names, in code order (`OK` is 0, `UNAUTHENTICATED` 16).
    public static let names = [
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
        "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
        "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
    ]

    /// The code of a name (any case) or of a number 0–16; `nil` for anything else.
    public static func code(_ text: String) -> UInt32? {
        if let number = UInt32(text) { return number < names.count ? number : nil }
        return names.firstIndex(of: text.uppercased()).map(UInt32.init)
    }
}

/// What Istio's `retries.retryOn` takes besides HTTP status codes: Envoy's retry conditions for
/// HTTP and gRPC.
public enum RetryConditions {
    public static let supported: Set<String> = [
        "5xx", "gateway-error", "reset", "reset-before-request", "connect-failure", "retriable-4xx", "refused-stream",
        "retriable-status-codes", "retriable-headers", "envoy-ratelimited", "http3-post-connect-failure",
        "cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable",
    ]
}
