public import Foundation

/// Writes files so that a crash at any moment leaves either the old content or the new one, never
/// a torn file: write a temporary file in the same directory, fsync it, rename it over the target,
/// fsync the directory. Files get `mode` from the start (keys: 0600).
///
/// A cache that can be rebuilt (`durable: false`) skips both fsyncs: a crash may then lose the
/// newest write or leave the file empty — never torn, never half old, half new — and its reader
/// must treat an unreadable file as absent.
public enum AtomicFile {
    /// Why a write failed.
    public struct WriteError: Error, CustomStringConvertible, Sendable {
        /// What failed.
        public var description: String
    }

    /// Atomically replaces `path` with `bytes`; durably unless `durable` is false.
    public static func write(_ bytes: [UInt8], to path: String, mode: mode_t = 0o600, durable: Bool = true) throws(WriteError) {
        let directory = (path as NSString).deletingLastPathComponent
        let temporary = (directory.isEmpty ? "." : directory) + "/.\((path as NSString).lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw WriteError(description: "cannot create \(temporary): \(String(cString: strerror(errno)))") }
        var written = 0
        while written < bytes.count {
            let result = bytes.withUnsafeBytes { buffer in
                Glibc.write(fd, buffer.baseAddress! + written, buffer.count - written)
            }
            if result < 0 {
                if errno == EINTR { continue }
                let reason = String(cString: strerror(errno))
                close(fd)
                unlink(temporary)
                throw WriteError(description: "cannot write \(temporary): \(reason)")
            }
            written += result
        }
        // The mode given to open() is masked by the umask; set it exactly.
        fchmod(fd, mode)
        guard !durable || fsync(fd) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            unlink(temporary)
            throw WriteError(description: "cannot fsync \(temporary): \(reason)")
        }
        close(fd)
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw WriteError(description: "cannot rename \(temporary) to \(path): \(reason)")
        }
        guard durable else { return }
        let directoryFD = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryFD >= 0 {
            fsync(directoryFD)
            close(directoryFD)
        }
    }

    /// Atomically replaces `path` with `text`.
    public static func write(_ text: String, to path: String, mode: mode_t = 0o600, durable: Bool = true) throws(WriteError) {
        try write(Array(text.utf8), to: path, mode: mode, durable: durable)
    }

    /// Removes temporary files a crashed writer left in `directory`.
    public static func removeLeftovers(in directory: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        for name in names where name.hasPrefix(".") && name.contains(".tmp-") {
            unlink(directory + "/" + name)
        }
    }
}
