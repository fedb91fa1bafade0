public import Foundation
internal import MeshModel
internal import Synchronization

/// The append-only record of every certificate the CA issued: one JSON object per line.
public final class IssuanceLedger: Sendable {
    /// One issuance.
    public struct Entry: Codable, Hashable, Sendable {
        /// Serial number (hex).
        public var serial: String
        /// SPIFFE identity in the certificate.
        public var identity: String
        /// Validity start (RFC 3339).
        public var notBefore: Date
        /// Validity end (RFC 3339).
        public var notAfter: Date
        /// Who asked: `token:<id>`, `certificate:<spiffe>`, `proxy:<node id>`, `meshd`.
        public var caller: String
        /// How: `sds`, `grpc-csr`, `rest-csr`, `server`.
        public var path: String
        /// The signing key's id (``SigningAuthority/keyID``); absent in entries written before it was recorded.
        public var issuerKey: String?

        /// An entry.
        public init(serial: String, identity: String, notBefore: Date, notAfter: Date, caller: String, path: String, issuerKey: String? = nil) {
            self.serial = serial
            self.identity = identity
            self.notBefore = notBefore
            self.notAfter = notAfter
            self.caller = caller
            self.path = path
            self.issuerKey = issuerKey
        }
    }

    /// The ledger file.
    public let path: String
    private let lock = Mutex(())

    /// A ledger at `path` (created on first append, mode 0600).
    public init(path: String) {
        self.path = path
    }

    /// Appends an entry.
    public func append(_ entry: Entry) throws {
        let line = Array(entry.jsonLine.utf8)
        // Opened for each entry, so that a moved or replaced ledger file is noticed at once.
        try lock.withLock { _ in
            let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw CAError(.ledger, "cannot open \(path): \(String(cString: strerror(errno)))") }
            defer { close(fd) }
            let written = line.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            guard written == line.count else { throw CAError(.ledger, "short write to \(path)") }
        }
    }

    /// Every entry, oldest first (lines that do not parse are skipped).
    public func entries() -> [Entry] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return data.split(separator: 0x0a).compactMap { try? decoder.decode(Entry.self, from: Data($0)) }
    }
}

extension IssuanceLedger.Entry {
    /// The entry as one JSON line (sorted keys, RFC 3339 UTC times), written by hand: issuance
    /// is on the hot path and Foundation's encoder would cost more than the signature.
    var jsonLine: String {
        var fields = [
            ("caller", JSONString.quote(caller)), ("identity", JSONString.quote(identity)),
        ]
        if let issuerKey { fields.append(("issuerKey", JSONString.quote(issuerKey))) }
        fields += [
            ("notAfter", JSONString.quote(Self.rfc3339(notAfter))), ("notBefore", JSONString.quote(Self.rfc3339(notBefore))),
            ("path", JSONString.quote(path)), ("serial", JSONString.quote(serial)),
        ]
        return "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}\n"
    }

    static func rfc3339(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
    }
}
