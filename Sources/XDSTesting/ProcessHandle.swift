internal import Foundation
internal import ProxyAgent
internal import Synchronization

/// A child process the test started, stopped by its process id only (spawned as `ChildProcess`
/// does: an empty signal mask and default dispositions, so SIGTERM reaches it).
public final class ProcessHandle: Sendable {
    /// The process id.
    public let pid: Int32
    /// Where its output goes.
    public let logPath: String
    private let child: ChildProcess

    /// Starts `executable` with `arguments`, stdout and stderr to `logPath`, stdin from /dev/null.
    public init(executable: String, arguments: [String], logPath: String, environment: [String: String]? = nil) throws {
        self.logPath = logPath
        ProcessHandle.reapOrphans()
        do {
            child = try ChildProcess(executable: executable, arguments: arguments, environment: environment, logPath: logPath)
        } catch {
            throw HTTPProbe.Failure(description: "\(error)")
        }
        pid = child.pid
        ProcessHandle.remember(pid: pid, commandLine: ([executable] + arguments).joined(separator: " "))
    }

    /// Whether it still runs (reaps it when it has exited).
    public var isRunning: Bool {
        guard child.isRunning else {
            ProcessHandle.forget(pid: pid)
            return false
        }
        return true
    }

    /// The exit status (128 + signal number when killed by a signal), once it has exited.
    public var terminationStatus: Int32? {
        child.terminationStatus
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
