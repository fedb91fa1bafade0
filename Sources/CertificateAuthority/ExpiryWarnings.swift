public import Foundation
public import X509

/// Which CA certificates to warn about as their end nears: each once per threshold (30, 7 and 1
/// days left). Pure: the caller logs what ``due(for:now:)`` returns.
public struct ExpiryWarnings: Sendable {
    /// The thresholds at which coming expiry is logged.
    public static let days = [30, 7, 1]

    /// A warning to give.
    public struct Warning: Sendable {
        /// `signing certificate`, `CA certificate` or `root`.
        public var role: String
        /// The certificate.
        public var certificate: Certificate
        /// The threshold it is within, in days.
        public var days: Int
    }

    /// The smallest threshold each certificate (by fingerprint) was last warned at.
    private var warned: [String: Int] = [:]

    /// No warnings given yet.
    public init() {}

    /// The smallest threshold (in days) that `notAfter` is within, if any.
    public static func threshold(notAfter: Date, now: Date) -> Int? {
        let left = notAfter.timeIntervalSince(now) / 86400
        return days.filter { left <= Double($0) }.min()
    }

    /// The warnings due now for the authority's certificates, each remembered so that it is given once.
    public mutating func due(for authority: SigningAuthority, now: Date) -> [Warning] {
        let certificates = [("signing certificate", authority.certificate)] + authority.chain.map { ("CA certificate", $0) } + authority.roots.map { ("root", $0) }
        var due: [Warning] = []
        for (role, certificate) in certificates {
            guard let threshold = Self.threshold(notAfter: certificate.notValidAfter, now: now) else { continue }
            let key = CALifecycle.fingerprint(certificate)
            if let previous = warned[key], previous <= threshold { continue }
            warned[key] = threshold
            due.append(Warning(role: role, certificate: certificate, days: threshold))
        }
        return due
    }
}
