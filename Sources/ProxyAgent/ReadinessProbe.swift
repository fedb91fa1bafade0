public import Foundation

/// A WorkloadGroup's readiness probe as the proxy's agent runs it (Istio's agent, Kubernetes'
/// semantics): one check every period, after an initial delay, each bounded by a timeout; the
/// workload turns healthy after `successThreshold` passing checks in a row and unhealthy after
/// `failureThreshold` failing ones.
public struct ProbeSchedule: Sendable, Equatable {
    /// What one check does.
    public enum Check: Sendable, Equatable {
        /// An HTTP GET: healthy when the status is 200–399.
        case http(host: String, port: UInt16, path: String, headers: [String: String])
        /// A TCP connection that opens.
        case tcp(host: String, port: UInt16)
        /// A command that exits 0.
        case exec([String])
    }

    public var check: Check
    public var initialDelay: Duration
    public var timeout: Duration
    public var period: Duration
    public var successThreshold: Int
    public var failureThreshold: Int

    /// A schedule with Istio's defaults (no delay, timeout 1 s, period 10 s, thresholds 1) for
    /// what is not given (0 or nil means not given, as in proto3).
    public init(check: Check, initialDelaySeconds: Int? = nil, timeoutSeconds: Int? = nil, periodSeconds: Int? = nil, successThreshold: Int? = nil, failureThreshold: Int? = nil) {
        func given(_ value: Int?) -> Int? { value.flatMap { $0 > 0 ? $0 : nil } }
        self.check = check
        initialDelay = .seconds(given(initialDelaySeconds) ?? 0)
        timeout = .seconds(given(timeoutSeconds) ?? 1)
        period = .seconds(given(periodSeconds) ?? 10)
        self.successThreshold = given(successThreshold) ?? 1
        self.failureThreshold = given(failureThreshold) ?? 1
    }
}

/// The outcome of one check.
public enum ProbeResult: Sendable, Equatable {
    case success
    case failure(String)
}

/// Consecutive results turned into a verdict with the thresholds. Pure.
public struct ProbeVerdict: Sendable, Equatable {
    /// The current verdict: nil until a threshold is first reached.
    public private(set) var healthy: Bool?
    /// Why the last failing check failed.
    public private(set) var lastFailure: String?
    private var successes = 0
    private var failures = 0
    private let successThreshold: Int
    private let failureThreshold: Int

    public init(successThreshold: Int, failureThreshold: Int) {
        self.successThreshold = max(1, successThreshold)
        self.failureThreshold = max(1, failureThreshold)
    }

    /// Takes one result; returns true when the verdict changed (a report is due).
    public mutating func take(_ result: ProbeResult) -> Bool {
        let before = healthy
        switch result {
        case .success:
            successes += 1
            failures = 0
            if successes >= successThreshold { healthy = true }
        case .failure(let reason):
            failures += 1
            successes = 0
            lastFailure = reason
            if failures >= failureThreshold { healthy = false }
        }
        return healthy != before
    }
}

/// Runs the checks themselves.
public enum ProbeRunner {
    /// Runs `check` once within `timeout`.
    public static func run(_ check: ProbeSchedule.Check, timeout: Duration) async -> ProbeResult {
        let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
        switch check {
        case .tcp(let host, let port):
            return await Task.detached { connect(host: host, port: port, timeout: seconds).map { close($0); return .success } ?? .failure(lastError("tcp", host, port)) }.value
        case .http(let host, let port, let path, let headers):
            return await Task.detached { httpGet(host: host, port: port, path: path, headers: headers, timeout: seconds) }.value
        case .exec(let command):
            return await exec(command, timeout: seconds)
        }
    }

    private static func lastError(_ what: String, _ host: String, _ port: UInt16) -> String {
        "\(what) \(host):\(port): \(String(cString: strerror(errno)))"
    }

    /// A connected socket to `host:port` (an IP address), or nil (errno says why).
    static func connect(host: String, port: UInt16, timeout: Double) -> Int32? {
        var v4 = sockaddr_in()
        var v6 = sockaddr_in6()
        let family: Int32
        if inet_pton(AF_INET, host, &v4.sin_addr) == 1 {
            family = AF_INET
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = port.bigEndian
        } else if inet_pton(AF_INET6, host, &v6.sin6_addr) == 1 {
            family = AF_INET6
            v6.sin6_family = sa_family_t(AF_INET6)
            v6.sin6_port = port.bigEndian
        } else {
            errno = EINVAL
            return nil
        }
        #if os(Linux)
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        #else
        let fd = socket(family, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { return nil }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: .init((timeout - Double(Int(timeout))) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let result: Int32 = family == AF_INET
            ? withUnsafePointer(to: &v4) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Foundation.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            : withUnsafePointer(to: &v6) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Foundation.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        guard result == 0 else {
            let saved = errno
            close(fd)
            errno = saved
            return nil
        }
        return fd
    }

    /// `GET path` over HTTP/1.1; passes on a status of 200–399 (Kubernetes' rule).
    static func httpGet(host: String, port: UInt16, path: String, headers: [String: String], timeout: Double) -> ProbeResult {
        guard let fd = connect(host: host, port: port, timeout: timeout) else { return .failure(lastError("http", host, port)) }
        defer { close(fd) }
        let hostHeader = headers.first { $0.key.lowercased() == "host" }?.value ?? (host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)")
        var request = "GET \(path.isEmpty ? "/" : path) HTTP/1.1\r\nHost: \(hostHeader)\r\nUser-Agent: meshd-prober\r\nConnection: close\r\n"
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) where name.lowercased() != "host" { request += "\(name): \(value)\r\n" }
        request += "\r\n"
        let bytes = Array(request.utf8)
        guard bytes.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == bytes.count else {
            return .failure(lastError("http", host, port))
        }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1024)
        // The status line is all that is needed.
        while !received.contains(UInt8(ascii: "\n")) && received.count < 8192 {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count <= 0 {
                return .failure(count == 0 ? "http \(host):\(port)\(path): the connection closed before a response" : lastError("http", host, port))
            }
            received += buffer[0..<count]
        }
        let line = String(decoding: received.prefix { $0 != UInt8(ascii: "\r") && $0 != UInt8(ascii: "\n") }, as: UTF8.self)
        let parts = line.split(separator: " ")
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/"), let status = Int(parts[1]) else {
            return .failure("http \(host):\(port)\(path): not an HTTP response")
        }
        return (200..<400).contains(status) ? .success : .failure("HTTP probe failed with statuscode: \(status)")
    }

    /// Runs `command`; passes when it exits 0 within `timeout` (killed otherwise). A program
    /// without a `/` is looked up on PATH (through `/usr/bin/env`).
    static func exec(_ command: [String], timeout: Double) async -> ProbeResult {
        guard let program = command.first else { return .failure("exec: no command") }
        let child: ChildProcess
        do {
            child = program.contains("/")
                ? try ChildProcess(executable: program, arguments: Array(command.dropFirst()), logPath: "/dev/null")
                : try ChildProcess(executable: "/usr/bin/env", arguments: command, logPath: "/dev/null")
        } catch {
            return .failure("exec \(program): \(error)")
        }
        guard await child.waitForExit(timeout: .milliseconds(Int(timeout * 1000))) else {
            child.signal(SIGKILL)
            _ = await child.waitForExit(timeout: .seconds(5))
            return .failure("exec \(program): timed out after \(timeout)s")
        }
        let status = child.terminationStatus ?? -1
        return status == 0 ? .success : .failure("exec \(program): exit status \(status)")
    }
}
