internal import CertificateAuthority
internal import Foundation
internal import Logging
internal import Metrics
internal import MeshModel

/// A connected proxy's meshd-made certificate and the back-off of its failed renewals. Pure:
/// the time comes in.
struct CertificateHolding: Sendable {
    /// The certificate the proxy was last given.
    var certificate: ProxyCertificates.Entry?
    /// Renewals failed in a row.
    var failures = 0
    /// No renewal is tried before this.
    var retryAt = Date.distantPast

    /// The longest wait between failed renewals, in seconds.
    static let maximumBackoff: TimeInterval = 300

    /// Whether a renewal is due at `now`: the certificate reached its rotation point or is not
    /// from the signer in use, and no back-off is running.
    func isDue(_ certificates: ProxyCertificates, now: Date, signerKey: String) -> Bool {
        guard let certificate, now >= retryAt else { return false }
        return certificates.isDue(certificate, now: now, signerKey: signerKey)
    }

    /// A renewal gave `entry`; returns whether it is a new certificate.
    mutating func renewed(_ entry: ProxyCertificates.Entry) -> Bool {
        let rotated = entry.serial != certificate?.serial
        certificate = entry
        failures = 0
        retryAt = .distantPast
        return rotated
    }

    /// A renewal failed at `now`: the proxy keeps its certificate, and the next try waits
    /// 1, 2, 4 … seconds, at most ``maximumBackoff``. Returns the wait.
    mutating func failed(now: Date) -> TimeInterval {
        failures += 1
        let delay = RetryBackoff.delay(afterFailures: failures, maximum: Self.maximumBackoff)
        retryAt = now.addingTimeInterval(delay)
        return delay
    }
}

/// Renews connected proxies' certificates, counting and logging each rotation and failure.
struct CertificateRotator: Sendable {
    let certificates: ProxyCertificates
    let clock: @Sendable () -> Date
    let logger: Logger
    let rotations: Counter
    let failures: Counter

    init(certificates: ProxyCertificates, clock: @escaping @Sendable () -> Date, logger: Logger, metrics: any MetricsFactory) {
        self.certificates = certificates
        self.clock = clock
        self.logger = logger
        rotations = Counter(label: "meshd_workload_cert_rotations_total", dimensions: [], factory: metrics)
        failures = Counter(label: "meshd_workload_cert_rotation_failures_total", dimensions: [], factory: metrics)
    }

    /// Renews the certificate `holding` has for the proxy `proxyID` of `workload`.
    func renew(_ holding: inout CertificateHolding, workload: String, identity: SpiffeID, proxyID: String) {
        let previous = holding.certificate
        do {
            let entry = try certificates.certificate(workload: workload, identity: identity)
            guard holding.renewed(entry) else { return }
            rotations.increment()
            logger.info("rotated the proxy's certificate", metadata: [
                "node": "\(proxyID)", "serial": "\(entry.serial)", "previous_serial": "\(previous?.serial ?? "-")",
                "not_after": "\(ISO8601DateFormatter().string(from: entry.notAfter))",
            ])
        } catch {
            let delay = holding.failed(now: clock())
            failures.increment()
            logger.error("certificate rotation failed; the proxy keeps its current certificate", metadata: [
                "node": "\(proxyID)", "error": "\(error)", "attempt": "\(holding.failures)", "retry_in_seconds": "\(Int(delay))",
                "current_not_after": "\(previous.map { ISO8601DateFormatter().string(from: $0.notAfter) } ?? "-")",
            ])
        }
    }
}
