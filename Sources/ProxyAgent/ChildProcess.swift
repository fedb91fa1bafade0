internal import Foundation
internal import Synchronization

/// A child process started with `posix_spawn`, an empty signal mask and default signal
/// dispositions (a parent whose threads block signals, as Swift's test runner does, would
/// otherwise hand that mask to the child and make it ignore SIGTERM), stdin from /dev/null.
public final class ChildProcess: Sendable {
    /// The process id.
    public let pid: Int32
    private let exitStatus = Mutex<Int32?>(nil)

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34 and later), which Swift's Glibc
    /// module does not declare.
    private static let closeFrom: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32)? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self)
    }()

    /// Starts `executable`; its stdout and stderr go to `logPath` (truncated), or are inherited
    /// when `logPath` is `nil`. With `ownProcessGroup`, a signal to the parent's process group
    /// (Ctrl-C in a terminal, systemd stopping a unit) does not reach the child: the parent
    /// decides how it stops.
    public init(executable: String, arguments: [String], environment: [String: String]? = nil, logPath: String? = nil, ownProcessGroup: Bool = false) throws {
        var fileActions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fileActions)
        defer { posix_spawn_file_actions_destroy(&fileActions) }
        posix_spawn_file_actions_addopen(&fileActions, 0, "/dev/null", O_RDONLY, 0)
        if let logPath {
            posix_spawn_file_actions_addopen(&fileActions, 1, logPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            posix_spawn_file_actions_adddup2(&fileActions, 1, 2)
        }
        // Nothing else of the parent's: a listening socket or a connection inherited by the
        // child would outlive the parent's own use of it (a port that stays bound, a stream to
        // meshd that never closes).
        Self.closeFrom?(&fileActions, 3)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        var flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF
        if ownProcessGroup {
            posix_spawnattr_setpgroup(&attributes, 0)
            flags |= POSIX_SPAWN_SETPGROUP
        }
        posix_spawnattr_setflags(&attributes, Int16(flags))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let envp = (environment ?? ProcessInfo.processInfo.environment).map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { envp.forEach { free($0) } }
        var child: pid_t = 0
        let result = posix_spawn(&child, executable, &fileActions, &attributes, argv, envp)
        guard result == 0 else {
            throw LauncherError("cannot start \(executable): \(String(cString: strerror(result)))")
        }
        pid = child
    }

    /// The exit status (128 + signal number when killed by a signal) once it has exited, reaping
    /// it; `nil` while it runs.
    public var terminationStatus: Int32? {
        exitStatus.withLock { status in
            if let status { return status }
            var raw: Int32 = 0
            guard waitpid(pid, &raw, WNOHANG) == pid else { return nil }
            status = (raw & 0x7f) == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
            return status
        }
    }

    /// Whether it still runs.
    public var isRunning: Bool { terminationStatus == nil }

    /// Sends a signal if it still runs.
    public func signal(_ signal: Int32) {
        if isRunning { kill(pid, signal) }
    }

    /// Waits for the exit; `false` if it still runs after `timeout`.
    public func waitForExit(timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while isRunning && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        return !isRunning
    }

    /// SIGTERM, up to `grace` to exit, then SIGKILL; returns the exit status.
    @discardableResult
    public func stop(grace: Duration = .seconds(5)) async -> Int32? {
        signal(SIGTERM)
        if await waitForExit(timeout: grace) { return terminationStatus }
        signal(SIGKILL)
        _ = await waitForExit(timeout: .seconds(5))
        return terminationStatus
    }
}

/// A launcher failure, reported to the user as it is.
public struct LauncherError: Error, CustomStringConvertible, Sendable {
    /// What went wrong.
    public let description: String
    /// A failure with `description`.
    public init(_ description: String) { self.description = description }
}
