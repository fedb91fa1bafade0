public import Foundation
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
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var line = try encoder.encode(entry)
        line.append(0x0a)
        try lock.withLock { _ in
            let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw CAError("ledger", "cannot open \(path): \(String(cString: strerror(errno)))") }
            defer { close(fd) }
            let written = line.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            guard written == line.count else { throw CAError("ledger", "short write to \(path)") }
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
