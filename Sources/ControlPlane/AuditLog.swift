public import Foundation
internal import Synchronization

/// The append-only record of administrative actions: who, what, when, result (JSON lines in
/// `<data>/audit.log`, 0600).
public final class AuditLog: Sendable {
    /// One action.
    public struct Entry: Codable, Hashable, Sendable {
        /// When.
        public var time: Date
        /// Who (`admin`, a token id, ...).
        public var who: String
        /// What (`token.create`, ...).
        public var action: String
        /// On what.
        public var target: String
        /// How it ended.
        public var result: String
    }

    /// The log file.
    public let path: String
    private let lock = Mutex(())
    private let clock: @Sendable () -> Date

    /// The audit log of a data directory; entries are stamped by `clock`.
    public init(dataDirectory: String, clock: @escaping @Sendable () -> Date = Date.init) {
        path = dataDirectory + "/audit.log"
        self.clock = clock
    }

    /// Appends an entry; failures to write are reported to the caller's logger by returning false.
    @discardableResult
    public func append(who: String, action: String, target: String, result: String, at time: Date? = nil) -> Bool {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard var line = try? encoder.encode(Entry(time: time ?? clock(), who: who, action: action, target: target, result: result)) else { return false }
        line.append(0x0a)
        return lock.withLock { _ in
            let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
            guard fd >= 0 else { return false }
            defer { close(fd) }
            return line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == line.count
        }
    }

    /// Why the log cannot be appended to (`path`: reason), or `nil` when it can.
    public func writeProblem() -> String? {
        lock.withLock { _ in
            let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
            guard fd >= 0 else { return "\(path): \(String(cString: strerror(errno)))" }
            close(fd)
            return nil
        }
    }

    /// Every entry, oldest first.
    public func entries() -> [Entry] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return data.split(separator: 0x0a).compactMap { try? decoder.decode(Entry.self, from: Data($0)) }
    }
}
