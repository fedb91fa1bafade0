/// A CA failure: a typed code (counter labels, the gRPC/HTTP status at the edge), a message for
/// the log, and the error that caused it, if any (grpc-swift-2's `RPCError` and
/// swift-certificates' `CertificateError` pattern).
public struct CAError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A stable code; its `rawValue` (`ttl_too_long`, ...) is what counters and logs show.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The code as counters and logs show it.
        public let rawValue: String
        private init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        // Storage and state.
        /// A file or directory of the CA could not be read or written.
        public static let storage = Code("storage")
        /// The issuance ledger could not be written.
        public static let ledger = Code("ledger")
        /// A root rotation is already running.
        public static let inProgress = Code("in_progress")
        /// The operation needs a self-signed CA; this one is plugged in.
        public static let pluggedIn = Code("plugged_in")
        /// A root could not be renewed.
        public static let renewFailed = Code("renew_failed")
        /// A key could not be made.
        public static let keyFailed = Code("key_failed")
        /// A CA could not be created.
        public static let createFailed = Code("create_failed")
        /// A key does not match its certificate.
        public static let keyMismatch = Code("key_mismatch")
        /// A certificate chain does not chain.
        public static let chain = Code("chain")
        /// The signing certificate has expired.
        public static let issuerExpired = Code("issuer_expired")
        /// Signing failed.
        public static let signFailed = Code("sign_failed")
        /// A certificate could not be encoded.
        public static let encode = Code("encode")

        // Certificate requests (counted by reason).
        /// The caller is not who it says, or said nothing.
        public static let unauthenticated = Code("unauthenticated")
        /// Not a PEM CSR.
        public static let badPEM = Code("bad_pem")
        /// The CSR's signature does not verify.
        public static let badSignature = Code("bad_signature")
        /// The CSR asks for a CA certificate.
        public static let caRequested = Code("ca_requested")
        /// The CSR names a SAN other than the caller's SPIFFE ID.
        public static let forbiddenSAN = Code("forbidden_san")
        /// The CSR's SPIFFE ID is not the caller's.
        public static let identityMismatch = Code("identity_mismatch")
        /// The CSR names several URI SANs.
        public static let multipleURISANs = Code("multiple_uri_sans")
        /// The CSR is larger than meshd reads.
        public static let tooLarge = Code("too_large")
        /// The requested lifetime is above the maximum.
        public static let ttlTooLong = Code("ttl_too_long")
        /// The CSR's key type is not supported.
        public static let unsupportedKey = Code("unsupported_key")
        /// The CSR's key is too weak.
        public static let weakKey = Code("weak_key")
        /// An algorithm that FIPS mode does not allow (a CSR's signature, a plugged-in CA).
        public static let notApproved = Code("not_approved")
    }

    /// The code.
    public var code: Code
    /// What happened, for the log (never sent to an unauthenticated caller).
    public var message: String
    /// The error underneath, if any.
    public var cause: (any Error)?

    /// An error.
    public init(_ code: Code, _ message: String, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String { "\(code): \(message)" }

    /// Equal codes and messages (the cause is context, not identity).
    public static func == (lhs: CAError, rhs: CAError) -> Bool {
        lhs.code == rhs.code && lhs.message == rhs.message
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(code)
        hasher.combine(message)
    }
}
