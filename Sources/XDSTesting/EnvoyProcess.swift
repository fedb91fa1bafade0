public import MeshModel
internal import Foundation

/// A real Envoy started by a test, with its own bootstrap file, admin address and log, stopped by
/// its process id.
public final class EnvoyProcess: Sendable {
    /// The name used for its files.
    public let name: String
    /// Its admin address.
    public let adminAddress: HostPort
    /// The process.
    public let handle: ProcessHandle

    /// Writes `bootstrapJSON` into `directory` and starts Envoy on it.
    public static func start(name: String, bootstrapJSON: String, adminAddress: HostPort, directory: String) throws -> EnvoyProcess {
        let binary = try TestTools.envoy()
        let configPath = "\(directory)/\(name)-bootstrap.json"
        try bootstrapJSON.write(toFile: configPath, atomically: true, encoding: .utf8)
        let handle = try ProcessHandle(
            executable: binary,
            arguments: [
                "-c", configPath, "--disable-hot-restart", "--concurrency", "1",
                "--log-level", ProcessInfo.processInfo.environment["MESHD_ENVOY_LOG"] ?? "warning",
                "--drain-time-s", "1", "--parent-shutdown-time-s", "2",
            ],
            logPath: "\(directory)/\(name)-envoy.log")
        return EnvoyProcess(name: name, adminAddress: adminAddress, handle: handle)
    }

    private init(name: String, adminAddress: HostPort, handle: ProcessHandle) {
        self.name = name
        self.adminAddress = adminAddress
        self.handle = handle
    }

    /// Waits until Envoy's `/ready` says LIVE (its initial xDS fetch is done).
    public func waitUntilReady(timeout: Duration = .seconds(15)) async throws {
        try await Eventually.wait(timeout: timeout, what: "Envoy \(name) to become ready (log: \(handle.logPath))") {
            guard handle.isRunning else {
                throw HTTPProbe.Failure(description: "Envoy \(name) exited: \(handle.log.suffix(2000))")
            }
            let response = try? await admin("/ready")
            return response?.status == 200 && response?.body.contains("LIVE") == true
        }
    }

    /// GETs an admin path.
    public func admin(_ path: String) async throws -> HTTPProbe.Response {
        try await HTTPProbe.request(adminAddress, authority: "\(adminAddress)", path: path)
    }

    /// `/config_dump` parsed as JSON.
    public func configDump() async throws -> [String: Any] {
        let response = try await admin("/config_dump?include_eds")
        guard let object = try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any] else {
            throw HTTPProbe.Failure(description: "config_dump is not a JSON object")
        }
        return object
    }

    /// Counters and gauges from `/stats`, by name.
    public func stats(filter: String? = nil) async throws -> [String: Int] {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        let path = filter.map { "/stats?filter=" + ($0.addingPercentEncoding(withAllowedCharacters: allowed) ?? $0) } ?? "/stats"
        let body = try await admin(path).body
        var out: [String: Int] = [:]
        for line in body.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, let value = Int(parts[1].trimmingCharacters(in: .whitespaces)) else { continue }
            out[String(parts[0])] = value
        }
        return out
    }

    /// Problems `/config_dump` shows: resources still warming, resources in `error_state`.
    public func configProblems() async throws -> [String] {
        let dump = try await configDump()
        var problems: [String] = []
        func walk(_ value: Any, path: String) {
            if let object = value as? [String: Any] {
                for (key, member) in object {
                    if key.hasPrefix("dynamic_warming"), let list = member as? [Any], !list.isEmpty {
                        problems.append("\(path)/\(key): \(list.count) warming")
                    }
                    if key == "error_state" { problems.append("\(path)/error_state: \(member)") }
                    walk(member, path: "\(path)/\(key)")
                }
            } else if let list = value as? [Any] {
                for (index, member) in list.enumerated() { walk(member, path: "\(path)[\(index)]") }
            }
        }
        walk(dump, path: "")
        return problems
    }

    /// Stops Envoy (SIGTERM, then SIGKILL).
    public func stop() async {
        await handle.stop()
    }
}
