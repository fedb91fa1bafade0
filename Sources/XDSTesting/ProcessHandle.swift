internal import Foundation
internal import Synchronization

/// A child process the test started, stopped by its process id only.
///
/// Started with `posix_spawn` and an empty signal mask with default dispositions: the test runner's
/// threads block most signals, and a child spawned through `Foundation.Process` inherits that mask
/// and would ignore SIGTERM.
public final class ProcessHandle: Sendable {
    /// The process id.
    public let pid: Int32
    /// Where its output goes.
    public let logPath: String
    private let exitStatus = Mutex<Int32?>(nil)

    /// Starts `executable` with `arguments`, stdout and stderr to `logPath`, stdin from /dev/null.
    public init(executable: String, arguments: [String], logPath: String, environment: [String: String]? = nil) throws {
        self.logPath = logPath
        ProcessHandle.reapOrphans()
        var fileActions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fileActions)
        defer { posix_spawn_file_actions_destroy(&fileActions) }
        posix_spawn_file_actions_addopen(&fileActions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&fileActions, 1, logPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&fileActions, 1, 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let environmentStrings = (environment ?? ProcessInfo.processInfo.environment).map { "\($0.key)=\($0.value)" }
        let envp = environmentStrings.map { strdup($0) } + [nil]
        defer { envp.forEach { free($0) } }
        var child: pid_t = 0
        let result = posix_spawn(&child, executable, &fileActions, &attributes, argv, envp)
        guard result == 0 else {
            throw HTTPProbe.Failure(description: "cannot start \(executable): \(String(cString: strerror(result)))")
        }
        pid = child
        ProcessHandle.remember(pid: child, commandLine: ([executable] + arguments).joined(separator: " "))
    }

    /// Whether it still runs (reaps it when it has exited).
    public var isRunning: Bool {
        exitStatus.withLock { status in
            if status != nil { return false }
            var raw: Int32 = 0
            let result = waitpid(pid, &raw, WNOHANG)
            if result == pid {
                status = (raw & 0x7f) == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
                ProcessHandle.forget(pid: pid)
                return false
            }
            return result == 0
        }
    }

    /// The exit status (128 + signal number when killed by a signal), once it has exited.
    public var terminationStatus: Int32? {
        _ = isRunning
        return exitStatus.withLock { $0 }
    }

    /// Sends a signal.
    public func signal(_ signal: Int32) {
        if isRunning { kill(pid, signal) }
    }

    /// Sends SIGTERM, waits up to `timeout`, then SIGKILL; returns the exit status.
    @discardableResult
    public func stop(timeout: Duration = .seconds(5)) async -> Int32? {
        guard isRunning else { return terminationStatus }
        kill(pid, SIGTERM)
        if await waitForExit(timeout: timeout) { return terminationStatus }
        kill(pid, SIGKILL)
        _ = await waitForExit(timeout: .seconds(5))
        return terminationStatus
    }

    /// Sends SIGKILL and waits for the exit.
    public func killNow() async {
        guard isRunning else { return }
        kill(pid, SIGKILL)
        _ = await waitForExit(timeout: .seconds(5))
    }

    /// Waits for the process to end; `false` if it still runs after `timeout`.
    public func waitForExit(timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while isRunning && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        return !isRunning
    }

    /// The output so far.
    public var log: String {
        (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
    }

    /// Where the ids of running test processes are written, so that a later run can stop the
    /// ones a crashed test run left behind (matched by pid and command line, never by name).
    static let registry = NSTemporaryDirectory() + "meshd-test-processes"
    private static let reaped = Mutex(false)

    private static func remember(pid: Int32, commandLine: String) {
        try? FileManager.default.createDirectory(atPath: registry, withIntermediateDirectories: true)
        try? commandLine.write(toFile: "\(registry)/\(pid)", atomically: true, encoding: .utf8)
    }

    private static func forget(pid: Int32) {
        try? FileManager.default.removeItem(atPath: "\(registry)/\(pid)")
    }

    /// Once per test process: stops processes recorded by an earlier run that still run the same
    /// command line.
    static func reapOrphans() {
        let first = reaped.withLock { done -> Bool in
            defer { done = true }
            return !done
        }
        guard first, let entries = try? FileManager.default.contentsOfDirectory(atPath: registry) else { return }
        for entry in entries {
            guard let pid = Int32(entry) else { continue }
            let recorded = (try? String(contentsOfFile: "\(registry)/\(entry)", encoding: .utf8)) ?? ""
            let running = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8))?
                .replacingOccurrences(of: "\0", with: " ").trimmingCharacters(in: .whitespaces) ?? ""
            if !recorded.isEmpty && running == recorded { kill(pid, SIGKILL) }
            forget(pid: pid)
        }
    }
}
