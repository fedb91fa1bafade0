internal import Foundation
internal import Crypto
public import MeshModel
public import CertificateAuthority

/// The key each workload's proxies present when they stream the entries of Istio's standard
/// metrics (``MetricsReporting``): HMAC-SHA256 of the workload's `namespace/name` under a secret
/// kept in `<data>/telemetry.key` (0600, written atomically). The same workload always gets the
/// same key, so listeners do not change across restarts, and a stream can report only as the
/// workload whose key it holds.
public struct MetricsReportKeys: Sendable {
    private let secret: SymmetricKey

    /// The keys of `dataDirectory`'s secret, made on first use from `random`.
    public init(dataDirectory: String, random: RandomSource = .system) throws {
        let path = dataDirectory + "/telemetry.key"
        if let existing = try? String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines),
           existing.count == 64, let bytes = Self.bytes(hex: existing) {
            secret = SymmetricKey(data: bytes)
            return
        }
        var generator = random
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        try AtomicFile.write(Self.hex(bytes) + "\n", to: path, mode: 0o600)
        secret = SymmetricKey(data: bytes)
    }

    /// Keys under an explicit secret (tests).
    init(secret: [UInt8]) {
        self.secret = SymmetricKey(data: secret)
    }

    /// The report key of `workload`'s proxies.
    public func key(for workload: ServiceRegistry.WorkloadID) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Data(workload.description.utf8), using: secret)
        return Self.hex(Array(mac).prefix(16))
    }

    /// Whether `presented` is `workload`'s key (compared in constant time).
    public func accepts(_ presented: String, for workload: ServiceRegistry.WorkloadID) -> Bool {
        let expected = Array(key(for: workload).utf8)
        let given = Array(presented.utf8)
        guard expected.count == given.count else { return false }
        return zip(expected, given).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }

    private static func hex(_ bytes: some Sequence<UInt8>) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }

    private static func bytes(hex: String) -> [UInt8]? {
        var out: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            guard let byte = UInt8(hex[index..<next], radix: 16) else { return nil }
            out.append(byte)
            index = next
        }
        return out
    }
}
