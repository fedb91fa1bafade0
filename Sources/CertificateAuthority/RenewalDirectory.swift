public import Foundation
public import X509

/// The directory a renewal job (`meshctl cert renew`) keeps a workload's certificate in:
/// `key.pem` (0600), `cert-chain.pem` (leaf and intermediates) and `root-cert.pem` (trust bundle).
///
/// The three files change together or not at all, the way Kubernetes updates a secret volume:
/// each is a symbolic link into `..data/`, itself a link to a versioned directory
/// (`..2026-11-29T10.00.00Z-1a2b`). A renewal writes a new versioned directory, then renames a new
/// `..data` link over the old one — one atomic step, which is also what Envoy's `watched_directory`
/// sees. A renewal killed at any moment leaves the previous files intact.
public struct RenewalDirectory: Sendable {
    /// The directory.
    public let path: String

    /// The file names.
    public static let keyFile = "key.pem"
    public static let chainFile = "cert-chain.pem"
    public static let rootFile = "root-cert.pem"
    static let dataLink = "..data"
    static let files = [keyFile, chainFile, rootFile]

    /// The directory at `path`.
    public init(path: String) {
        self.path = path
    }

    /// What the directory holds now.
    public struct Contents: Sendable {
        /// The certificate chain, leaf first.
        public var chain: [Certificate]
        /// The private key, PEM.
        public var keyPEM: String
        /// The chain as PEM, as stored.
        public var chainPEM: String
        /// The trust bundle, PEM.
        public var rootPEM: String

        /// The leaf.
        public var leaf: Certificate { chain[0] }
    }

    /// The current files, or `nil` when there are none (or they cannot be read).
    public func contents() -> Contents? {
        guard let key = try? String(contentsOfFile: path + "/" + Self.keyFile, encoding: .utf8),
              let chainPEM = try? String(contentsOfFile: path + "/" + Self.chainFile, encoding: .utf8),
              let root = try? String(contentsOfFile: path + "/" + Self.rootFile, encoding: .utf8),
              let chain = try? CAStore.readCertificates(path + "/" + Self.chainFile), !chain.isEmpty
        else { return nil }
        return Contents(chain: chain, keyPEM: key, chainPEM: chainPEM, rootPEM: root)
    }

    /// Runs `body` holding an exclusive lock on the directory (`.lock`), so that two renewals
    /// started together (cron overlapping a slow run) never interleave.
    public func exclusively<T>(_ body: () async throws -> T) async throws -> T {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let fd = open(path + "/.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw CAError(.storage, "cannot open \(path)/.lock: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard flock(fd, LOCK_EX) == 0 else { throw CAError(.storage, "cannot lock \(path)/.lock: \(String(cString: strerror(errno)))") }
        defer { flock(fd, LOCK_UN) }
        return try await body()
    }

    /// When a certificate should be replaced: when `remaining` of its lifetime is left, counting
    /// from when it was issued (meshd backdates `notBefore` by ``SigningAuthority/backdating``).
    public static func renewalPoint(of leaf: Certificate, remaining: Double) -> Date {
        let issued = min(leaf.notValidBefore.addingTimeInterval(SigningAuthority.backdating), leaf.notValidAfter)
        return leaf.notValidAfter.addingTimeInterval(-leaf.notValidAfter.timeIntervalSince(issued) * remaining)
    }

    /// Writes new files in one atomic step. `beforeSwap` runs after the new version is on disk and
    /// before it becomes current.
    public func commit(keyPEM: String, chainPEM: String, rootPEM: String, now: Date, beforeSwap: () -> Void = {}) throws(CAError) {
        let manager = FileManager.default
        do {
            try manager.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw CAError(.storage, "cannot create \(path): \(error.localizedDescription)", cause: error)
        }
        removeLeftovers()
        try adoptPlainFiles(now: now)
        let version = try writeVersion([Self.keyFile: keyPEM, Self.chainFile: chainPEM, Self.rootFile: rootPEM], now: now)
        beforeSwap()
        try swap(to: version)
        try linkFiles()
        removeLeftovers()
    }

    /// Makes a versioned directory holding `files` (each fsynced), and returns its name.
    private func writeVersion(_ files: [String: String], now: Date) throws(CAError) -> String {
        let stamp = ISO8601DateFormatter().string(from: now).replacingOccurrences(of: ":", with: ".")
        let name = "..\(stamp)-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
        let directory = path + "/" + name
        guard mkdir(directory, 0o700) == 0 else { throw CAError(.storage, "cannot create \(directory): \(String(cString: strerror(errno)))") }
        for (file, text) in files.sorted(by: { $0.key < $1.key }) {
            do {
                try AtomicFile.write(text, to: directory + "/" + file, mode: file == Self.keyFile ? 0o600 : 0o644)
            } catch {
                throw CAError(.storage, error.description)
            }
        }
        return name
    }

    /// Points `..data` at `version` atomically.
    private func swap(to version: String) throws(CAError) {
        let temporary = path + "/..data_tmp"
        unlink(temporary)
        guard symlink(version, temporary) == 0 else { throw CAError(.storage, "cannot link \(temporary): \(String(cString: strerror(errno)))") }
        guard rename(temporary, path + "/" + Self.dataLink) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw CAError(.storage, "cannot replace \(path)/\(Self.dataLink): \(reason)")
        }
        syncDirectory()
    }

    /// Makes each file a link to `..data/<file>` (once; later renewals only move `..data`).
    private func linkFiles() throws(CAError) {
        for file in Self.files {
            let link = path + "/" + file
            let target = Self.dataLink + "/" + file
            if (try? FileManager.default.destinationOfSymbolicLink(atPath: link)) == target { continue }
            let temporary = link + ".link-tmp"
            unlink(temporary)
            guard symlink(target, temporary) == 0, rename(temporary, link) == 0 else {
                throw CAError(.storage, "cannot link \(link): \(String(cString: strerror(errno)))")
            }
        }
        syncDirectory()
    }

    /// Files written by hand (or by an older tool) become the first version, unchanged, before
    /// anything is replaced: every intermediate state then still holds a matching set.
    private func adoptPlainFiles(now: Date) throws(CAError) {
        let manager = FileManager.default
        guard (try? manager.destinationOfSymbolicLink(atPath: path + "/" + Self.dataLink)) == nil else { return }
        var existing: [String: String] = [:]
        for file in Self.files {
            if let text = try? String(contentsOfFile: path + "/" + file, encoding: .utf8) { existing[file] = text }
        }
        guard existing.count == Self.files.count else { return }
        let version = try writeVersion(existing, now: now)
        try swap(to: version)
        try linkFiles()
    }

    /// Removes versions no longer current and links a crashed renewal left.
    private func removeLeftovers() {
        let manager = FileManager.default
        let current = try? manager.destinationOfSymbolicLink(atPath: path + "/" + Self.dataLink)
        guard let names = try? manager.contentsOfDirectory(atPath: path) else { return }
        for name in names {
            if name == "..data_tmp" || name.hasSuffix(".link-tmp") {
                unlink(path + "/" + name)
            } else if name.hasPrefix("..") && name != Self.dataLink && name != current {
                try? manager.removeItem(atPath: path + "/" + name)
            }
        }
        AtomicFile.removeLeftovers(in: path)
    }

    private func syncDirectory() {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
    }
}
