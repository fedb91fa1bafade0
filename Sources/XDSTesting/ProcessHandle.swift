public import Foundation

/// A child process the test started, stopped by its process id only.
public final class ProcessHandle: @unchecked Sendable {
    /// The process.
    public let process: Process
    /// Where its output goes.
    public let logPath: String

    /// Starts `executable` with `arguments`, output to `logPath`.
    public init(executable: String, arguments: [String], logPath: String, environment: [String: String]? = nil) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardOutput = log
        process.standardError = log
        self.logPath = logPath
        try process.run()
    }

    /// The process id.
    public var pid: Int32 { process.processIdentifier }

    /// Whether it still runs.
    public var isRunning: Bool { process.isRunning }

    /// Sends SIGTERM, waits up to `timeout`, then SIGKILL; returns the exit status.
    @discardableResult
    public func stop(timeout: Duration = .seconds(5)) async -> Int32 {
        guard process.isRunning else { return process.terminationStatus }
        kill(pid, SIGTERM)
        if await waitForExit(timeout: timeout) { return process.terminationStatus }
        kill(pid, SIGKILL)
        _ = await waitForExit(timeout: .seconds(5))
        return process.isRunning ? -1 : process.terminationStatus
    }

    /// Sends SIGKILL and waits for the exit.
    public func killNow() async {
        guard process.isRunning else { return }
        kill(pid, SIGKILL)
        _ = await waitForExit(timeout: .seconds(5))
    }

    /// Waits for the process to end; `false` if it still runs after `timeout`.
    public func waitForExit(timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        return !process.isRunning
    }

    /// The output so far.
    public var log: String {
        (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
    }
}
