internal import Dispatch
public import Foundation
#if canImport(FoundationNetworking)
internal import FoundationNetworking
#endif
internal import Synchronization

/// Runs one sidecar Envoy the way Istio's agent does: starts it with `EnvoyCommandLine`'s flags,
/// restarts it with back-off when it dies, and on SIGTERM or SIGINT drains its inbound listeners
/// gracefully, waits for open connections to finish (at most `terminationDrain`), then stops it.
public final class ProxyLauncher: Sendable {
    /// Where Envoy's admin interface listens (from the bootstrap), used to drain on shutdown.
    public struct AdminAddress: Sendable, Equatable, CustomStringConvertible {
        /// Host or address.
        public var host: String
        /// Port.
        public var port: Int
        /// An address.
        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
        /// `host:port`, with brackets around IPv6 addresses.
        public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    private let commandLine: EnvoyCommandLine
    private let admin: AdminAddress?
    private let terminationDrain: Duration
    private let log: @Sendable (String) -> Void
    private let backoff: Mutex<RestartBackoff>
    private let stopSignal = Mutex<Int32?>(nil)

    /// A launcher for `commandLine`; `log` receives one line per event (start, exit, restart, drain).
    public init(
        commandLine: EnvoyCommandLine, admin: AdminAddress?, terminationDrain: Duration = .seconds(5),
        backoff: RestartBackoff = RestartBackoff(), log: @escaping @Sendable (String) -> Void
    ) {
        self.commandLine = commandLine
        self.admin = admin
        self.terminationDrain = terminationDrain
        self.backoff = Mutex(backoff)
        self.log = log
    }

    /// Envoy's admin address as a bootstrap (JSON) declares it.
    public static func adminAddress(bootstrapJSON: Data) -> AdminAddress? {
        guard let root = try? JSONSerialization.jsonObject(with: bootstrapJSON) as? [String: Any],
              let admin = root["admin"] as? [String: Any], let address = admin["address"] as? [String: Any],
              let socket = address["socket_address"] as? [String: Any], let host = socket["address"] as? String
        else { return nil }
        let port = (socket["port_value"] as? Int) ?? Int(socket["port_value"] as? String ?? "")
        return port.map { AdminAddress(host: host, port: $0) }
    }

    /// Runs until SIGTERM or SIGINT (exit status 0 once Envoy is stopped), or until Envoy exits
    /// with status 0 by itself (through its admin `/quitquitquit`). Throws if Envoy cannot be started.
    public func run() async throws -> Int32 {
        let sources = installSignalHandlers()
        defer { sources.forEach { $0.cancel() } }
        while true {
            let started = ContinuousClock.now
            let envoy = try ChildProcess(executable: commandLine.binary, arguments: commandLine.arguments, logPath: nil, ownProcessGroup: true)
            log("started Envoy (pid \(envoy.pid)): \(commandLine.binary) \(commandLine.arguments.joined(separator: " "))")
            var status: Int32?
            while status == nil {
                if let signal = stopSignal.withLock({ $0 }) {
                    await shutdown(envoy, signal: signal)
                    return 0
                }
                try? await Task.sleep(for: .milliseconds(50))
                status = envoy.terminationStatus
            }
            let uptime = ContinuousClock.now - started
            if status == 0 {
                log("Envoy (pid \(envoy.pid)) exited with status 0 after \(uptime.seconds) s; stopping")
                return 0
            }
            let delay = backoff.withLock { $0.exited(after: uptime) }
            log("Envoy (pid \(envoy.pid)) exited with status \(status ?? -1) after \(uptime.seconds) s; restarting in \(delay.seconds) s")
            let deadline = ContinuousClock.now + delay
            while ContinuousClock.now < deadline {
                if stopSignal.withLock({ $0 }) != nil { return 0 }
                try? await Task.sleep(for: .milliseconds(50))
            }
        }
    }

    private func installSignalHandlers() -> [any DispatchSourceSignal] {
        [SIGTERM, SIGINT].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [weak self] in self?.stopSignal.withLock { if $0 == nil { $0 = number } } }
            source.resume()
            return source
        }
    }

    /// Drains the inbound listeners, waits for connections to end (bounded), then stops Envoy.
    private func shutdown(_ envoy: ChildProcess, signal: Int32) async {
        let name = signal == SIGINT ? "SIGINT" : "SIGTERM"
        if let admin, terminationDrain > .zero {
            log("\(name): draining Envoy's inbound listeners (up to \(terminationDrain.seconds) s)")
            _ = await Self.adminRequest(admin, method: "POST", path: "/drain_listeners?inboundonly&graceful")
            let deadline = ContinuousClock.now + terminationDrain
            while ContinuousClock.now < deadline && envoy.isRunning {
                if let open = await Self.openConnections(admin), open == 0 { break }
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
        let status = await envoy.stop()
        log("\(name): Envoy (pid \(envoy.pid)) stopped with status \(status.map(String.init) ?? "unknown")")
    }

    /// Downstream connections Envoy holds (`server.total_connections`), or `nil` if it does not answer.
    static func openConnections(_ admin: AdminAddress) async -> Int? {
        guard let body = await adminRequest(admin, method: "GET", path: "/stats?filter=%5Eserver%5C.total_connections%24") else { return nil }
        for line in body.split(separator: "\n") where line.hasPrefix("server.total_connections:") {
            return Int(line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces))
        }
        return nil
    }

    /// One request to Envoy's admin interface with a short timeout; the body, or `nil` on failure.
    static func adminRequest(_ admin: AdminAddress, method: String, path: String) async -> String? {
        guard let url = URL(string: "http://\(admin)\(path)") else { return nil }
        var request = URLRequest(url: url, timeoutInterval: 1)
        request.httpMethod = method
        guard let (data, response) = try? await URLSession.shared.data(for: request),
              (response as? HTTPURLResponse)?.statusCode == 200 else { return nil }
        return String(decoding: data, as: UTF8.self)
    }
}

extension Duration {
    /// Seconds, with one decimal.
    var seconds: String {
        let (whole, fraction) = components
        return String(format: "%.1f", Double(whole) + Double(fraction) / 1e18)
    }
}
