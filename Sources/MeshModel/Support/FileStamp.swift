internal import Foundation

/// What says a file changed without reading it: inode, size, modification and change times (to
/// the nanosecond). Watchers of the config directory and of a plugged-in CA's files compare these.
public enum FileStamp {
    /// The stamp of `path`, or `nil` when it cannot be read (missing).
    public static func of(_ path: String) -> [Int64]? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return [
            Int64(info.st_ino), Int64(info.st_size),
            Int64(info.st_mtim.tv_sec), Int64(info.st_mtim.tv_nsec),
            Int64(info.st_ctim.tv_sec), Int64(info.st_ctim.tv_nsec),
        ]
    }
}
