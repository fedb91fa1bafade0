public import MeshModel
internal import Foundation

/// A real Envoy started by a test the way users start one, through the sidecar launcher
/// (`meshctl proxy run`, with its default drain settings), with its own bootstrap file, admin
/// address and log; stopped by the launcher's process id (SIGTERM: graceful drain, then Envoy stops).
public final class EnvoyProcess: Sendable {
    /// The name used for its files.
    public let name: String
    /// Its admin address.
    public let adminAddress: HostPort
    /// The launcher process (Envoy is its child; both write to its log).
    public let handle: ProcessHandle

    /// Writes `bootstrapJSON` into `directory` and starts Envoy on it through `meshctl proxy run`.
    /// Only what keeps tests small differs from the launcher's defaults: one worker thread and at
    /// most one second of graceful drain on shutdown.
    public static func start(name: String, bootstrapJSON: String, adminAddress: HostPort, directory: String, launcherArguments: [String] = []) throws -> EnvoyProcess {
        let configPath = "\(directory)/\(name)-bootstrap.json"
        try bootstrapJSON.write(toFile: configPath, atomically: true, encoding: .utf8)
        return try launch(name: name, source: ["--bootstrap", configPath] + launcherArguments, adminAddress: adminAddress, directory: directory)
    }

    /// Starts a workload's sidecar as its README shows: `meshctl proxy run --workload NS/NAME`
    /// fetches the bootstrap from meshd (`meshctlArguments` says where meshd is, with its token).
    public static func start(name: String, workload: String, adminAddress: HostPort, directory: String, meshctlArguments: [String]) throws -> EnvoyProcess {
        try launch(
            name: name, source: ["--workload", workload, "--bootstrap-out", "\(directory)/\(name)-bootstrap.json"] + meshctlArguments,
            adminAddress: adminAddress, directory: directory)
    }

    /// Starts a proxy that registers into a WorkloadGroup as the README shows: `meshctl proxy run
    /// --workload-group NS/NAME --address IP` fetches its bootstrap from meshd.
    public static func start(name: String, workloadGroup: String, address: String, adminAddress: HostPort, directory: String, meshctlArguments: [String]) throws -> EnvoyProcess {
        try launch(
            name: name,
            source: ["--workload-group", workloadGroup, "--address", address, "--bootstrap-out", "\(directory)/\(name)-bootstrap.json"] + meshctlArguments,
            adminAddress: adminAddress, directory: directory)
    }

    private static func launch(name: String, source: [String], adminAddress: HostPort, directory: String) throws -> EnvoyProcess {
        let handle = try ProcessHandle(
            executable: try TestTools.productBinary("meshctl"),
            arguments: [
                "proxy", "run", "--envoy", try TestTools.envoy(), "--concurrency", "1",
                "--log-level", ProcessInfo.processInfo.environment["MESHD_ENVOY_LOG"] ?? "warning", "--termination-drain", "1",
            ] + source,
            logPath: "\(directory)/\(name)-envoy.log")
        return EnvoyProcess(name: name, adminAddress: adminAddress, handle: handle)
    }

    /// The command line the launcher last started Envoy with (from its log).
    public var launchedCommandLine: String? {
        handle.log.split(separator: "\n").last { $0.contains("started Envoy (pid ") }.map(String.init)
    }

    /// The process ids of the Envoys the launcher started, oldest first (from its log).
    public var envoyPIDs: [Int32] {
        handle.log.split(separator: "\n").compactMap { line in
            guard let range = line.range(of: "started Envoy (pid ") else { return nil }
            return Int32(line[range.upperBound...].prefix { $0.isNumber })
        }
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
                throw HTTPProbe.Failure(description: "the launcher of Envoy \(name) exited: \(handle.log.suffix(2000))")
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

    /// The clusters Envoy took from xDS, each as its JSON text, by name.
    public func dynamicClusters() async throws -> [String: String] {
        let response = try await admin("/config_dump?resource=dynamic_active_clusters")
        let object = try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any]
        var out: [String: String] = [:]
        for entry in object?["configs"] as? [[String: Any]] ?? [] {
            guard let cluster = entry["cluster"] as? [String: Any], let name = cluster["name"] as? String else { continue }
            out[name] = String(decoding: try JSONSerialization.data(withJSONObject: cluster, options: [.sortedKeys]), as: UTF8.self)
        }
        return out
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

    /// Stops the launcher and with it Envoy (SIGTERM: at most 1 s of drain, then Envoy gets up
    /// to 5 s; SIGKILL to the launcher after 10 s).
    public func stop() async {
        await handle.stop(timeout: .seconds(10))
    }

    /// Waits until no filter chain or listener of this Envoy is draining: connections opened
    /// before a listener change are closed by then, so every request is decided by the new
    /// configuration.
    public func waitUntilDrained(timeout: Duration = .seconds(15)) async throws {
        try await Eventually.wait(timeout: timeout, what: "Envoy \(name) to finish draining old filter chains") {
            let stats = try await stats(filter: "listener_manager.total_(filter_chains|listeners)_draining")
            return !stats.isEmpty && stats.values.allSatisfy { $0 == 0 }
        }
    }
}
