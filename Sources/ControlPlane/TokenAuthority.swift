public import Foundation
internal import Crypto
public import CertificateAuthority
internal import Synchronization

/// Mints, checks and revokes bearer tokens: workload tokens (bound to one namespace and service
/// account; for proxies and renewal jobs), and reader and admin tokens for the admin API.
/// Only its SHA-256 is stored (in
/// `<data>/tokens.json`, 0600, written atomically), so the file does not reveal usable tokens.
public final class TokenAuthority: Sendable {
    /// A token's record.
    public struct Record: Codable, Hashable, Sendable {
        /// Short id (for listing and revoking).
        public var id: String
        /// SHA-256 of the token, hex.
        public var digest: String
        /// Namespace the token is for.
        public var namespace: String
        /// Service account the token is for.
        public var serviceAccount: String
        /// When it was minted.
        public var createdAt: Date
        /// When it stops working, if ever.
        public var expiresAt: Date?
        /// Whether it was revoked.
        public var revoked: Bool
        /// `workload` (absent in records written before roles existed), `reader` or `admin`.
        public var role: String?
        /// The WorkloadGroup (`namespace/name`) a workload token is limited to: it admits only
        /// proxies auto-registering into that group.
        public var workloadGroup: String?

        /// The token's role.
        public var effectiveRole: String { role ?? "workload" }
        /// Whether it is a workload token (the only kind proxies and CSRs accept).
        public var isWorkload: Bool { effectiveRole == "workload" }
    }

    /// Why a token was not accepted.
    public enum Rejection: Error, Equatable, Sendable {
        case unknown
        case revoked(id: String)
        case expired(id: String)
    }

    private let path: String
    private let records: Mutex<[String: Record]>
    private let clock: @Sendable () -> Date
    private let random: RandomSource
    private let revocations = Mutex<[UUID: @Sendable (String) -> Void]>([:])

    /// The token store at `<dataDirectory>/tokens.json`; tokens are drawn from `random`.
    public init(dataDirectory: String, clock: @escaping @Sendable () -> Date = Date.init, random: RandomSource = .system) throws {
        path = dataDirectory + "/tokens.json"
        self.clock = clock
        self.random = random
        var loaded: [String: Record] = [:]
        if let data = FileManager.default.contents(atPath: path) {
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            for record in try decoder.decode([Record].self, from: data) { loaded[record.digest] = record }
        }
        records = Mutex(loaded)
    }

    /// Mints a token for `namespace`/`serviceAccount`; returns its record and the token itself
    /// (shown once, never stored).
    public func mint(namespace: String, serviceAccount: String, ttl: TimeInterval?, role: String = "workload", workloadGroup: String? = nil) throws -> (record: Record, token: String) {
        var generator = random
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let token = "mdt_" + Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        let digest = Self.digest(token)
        let now = clock()
        let record = Record(
            id: String(digest.prefix(12)), digest: digest, namespace: namespace, serviceAccount: serviceAccount,
            createdAt: now, expiresAt: ttl.map { now.addingTimeInterval($0) }, revoked: false, role: role, workloadGroup: workloadGroup)
        try update { $0[digest] = record }
        return (record, token)
    }

    /// The record of a valid token.
    public func authenticate(_ token: String) -> Result<Record, Rejection> {
        guard let record = records.withLock({ $0[Self.digest(token)] }) else { return .failure(.unknown) }
        if record.revoked { return .failure(.revoked(id: record.id)) }
        if let expiry = record.expiresAt, expiry <= clock() { return .failure(.expired(id: record.id)) }
        return .success(record)
    }

    /// Revokes a token by id; returns whether one was found. Streams authenticated with it are
    /// told through ``onRevocation(_:)``.
    @discardableResult
    public func revoke(id: String) throws -> Bool {
        var found = false
        try update { records in
            for (digest, record) in records where record.id == id {
                records[digest]!.revoked = true
                found = true
            }
        }
        if found {
            for handler in revocations.withLock({ Array($0.values) }) { handler(id) }
        }
        return found
    }

    /// Every token record (never the tokens), newest first.
    public var all: [Record] {
        records.withLock { Array($0.values) }.sorted { $0.createdAt > $1.createdAt }
    }

    /// Registers `handler` to be called with the id of each revoked token; returns a handle to
    /// cancel the registration with ``cancelRevocationHandler(_:)``.
    public func onRevocation(_ handler: @escaping @Sendable (String) -> Void) -> UUID {
        let id = UUID()
        revocations.withLock { $0[id] = handler }
        return id
    }

    /// Stops calling a revocation handler.
    public func cancelRevocationHandler(_ id: UUID) {
        _ = revocations.withLock { $0.removeValue(forKey: id) }
    }

    private func update(_ change: (inout [String: Record]) -> Void) throws {
        try records.withLock { records in
            var next = records
            change(&next)
            let encoder = JSONEncoder()
            encoder.dateEncodingStrategy = .iso8601
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let data = try encoder.encode(next.values.sorted { $0.id < $1.id })
            try AtomicFile.write(Array(data), to: path, mode: 0o600)
            records = next
        }
    }

    static func digest(_ token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// The bearer token in an `authorization` header value (`Bearer <token>`), if any.
    public static func bearer(_ header: String?) -> String? {
        guard let header, header.lowercased().hasPrefix("bearer ") else { return nil }
        let token = header.dropFirst("bearer ".count).trimmingCharacters(in: .whitespaces)
        return token.isEmpty ? nil : token
    }
}

/// The administrator's token: made on first start at `<data>/admin-token` (0600).
public struct AdminCredential: Sendable {
    /// Where it is stored.
    public let path: String
    private let digest: String

    /// Loads the admin token, making one from `random` on first start; `created` says which.
    public static func loadOrCreate(dataDirectory: String, random: RandomSource = .system) throws -> (credential: AdminCredential, created: Bool) {
        let path = dataDirectory + "/admin-token"
        if let existing = try? String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines), !existing.isEmpty {
            return (AdminCredential(path: path, digest: TokenAuthority.digest(existing)), false)
        }
        var generator = random
        let token = "mda_" + (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
        try AtomicFile.write(token + "\n", to: path, mode: 0o600)
        return (AdminCredential(path: path, digest: TokenAuthority.digest(token)), true)
    }

    /// Whether `token` is the admin token.
    public func accepts(_ token: String?) -> Bool {
        guard let token else { return false }
        return TokenAuthority.digest(token) == digest
    }
}
