import ArgumentParser
import Foundation
import ProxyAgent

/// `meshctl proxy`: run a sidecar.
struct Proxy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a workload's sidecar Envoy.", subcommands: [ProxyRun.self])
}

/// `meshctl proxy run`: the sidecar launcher (Istio's pilot-agent, without the certificate part:
/// meshd serves certificates over SDS itself).
struct ProxyRun: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Start a workload's sidecar Envoy with meshd's bootstrap and drain settings, restart it if it dies, drain it on SIGTERM.",
        discussion: """
            Envoy runs with --drain-strategy immediate and a short --drain-time-s, so that a new \
            AuthorizationPolicy or PeerAuthentication reaches connections already open within a few \
            seconds (Envoy's defaults keep old filter chains serving them for up to 10 minutes). \
            On SIGTERM or SIGINT the inbound listeners are drained gracefully and Envoy stops once \
            its connections are closed or --termination-drain has passed. Arguments after `--` go \
            to Envoy as they are.
            Example: meshctl proxy run --workload tai-system/governor-v1
            """)

    @OptionGroup var server: ServerOptions

    @Option(name: .customLong("workload"), help: "The workload as namespace/name of its WorkloadEntry: its bootstrap is fetched from meshd.")
    var workload: String?

    @Option(name: .customLong("bootstrap"), help: "Use this bootstrap file instead of fetching one (--workload).")
    var bootstrapFile: String?

    @Option(name: .customLong("bootstrap-out"), help: "Where the fetched bootstrap is written, mode 0600 (default: a private temporary directory, removed on exit).")
    var bootstrapOut: String?

    @OptionGroup var bootstrap: BootstrapOptions

    @Option(name: .customLong("envoy"), help: "The Envoy binary (env MESHD_ENVOY; default: envoy on PATH).")
    var envoy: String?

    @Option(name: .customLong("drain-time"), help: "Seconds old filter chains drain after a change (Envoy's --drain-time-s).")
    var drainTime = EnvoyCommandLine.defaultDrainTimeSeconds

    @Option(name: .customLong("drain-strategy"), help: "immediate or gradual (Envoy's --drain-strategy).")
    var drainStrategy = EnvoyCommandLine.DrainStrategy.immediate.rawValue

    @Option(name: .customLong("termination-drain"), help: "At most this many seconds of graceful drain on SIGTERM before Envoy is stopped.")
    var terminationDrain = 5.0

    @Option(name: .customLong("concurrency"), help: "Envoy's worker threads.")
    var concurrency = 2

    @Option(name: .customLong("log-level"), help: "Envoy's log level.")
    var logLevel = "warning"

    @Option(name: .customLong("base-id"), help: "Envoy's --base-id (default: --disable-hot-restart).")
    var baseID: Int?

    @Argument(parsing: .postTerminator, help: "Further Envoy arguments, after --.")
    var envoyArguments: [String] = []

    func validate() throws {
        guard !bootstrap.proxyless else { throw ValidationError("--proxyless is for `meshctl bootstrap`: a proxyless gRPC application runs no Envoy") }
        let fetches = workload != nil || bootstrap.workloadGroup != nil
        guard fetches != (bootstrapFile != nil) else { throw ValidationError("give exactly one of --workload, --workload-group and --bootstrap") }
        if fetches { try bootstrap.check(workload: workload) }
        guard EnvoyCommandLine.DrainStrategy(rawValue: drainStrategy) != nil else { throw ValidationError("--drain-strategy must be immediate or gradual") }
        guard drainTime >= 0, terminationDrain >= 0, concurrency > 0 else { throw ValidationError("--drain-time, --termination-drain and --concurrency must not be negative") }
    }

    func run() async throws {
        let binary = try Self.findEnvoy(envoy)
        let path: String
        var privateDirectory: String?
        defer { if let privateDirectory { try? FileManager.default.removeItem(atPath: privateDirectory) } }
        if let bootstrapFile {
            path = bootstrapFile
        } else {
            let data = try await bootstrap.fetch(workload: workload, client: server.client)
            if let bootstrapOut {
                path = bootstrapOut
            } else {
                // A directory only this user can enter, removed when the launcher stops.
                var template = Array((NSTemporaryDirectory() + "meshd-proxy-XXXXXX").utf8CString)
                guard let made = mkdtemp(&template) else { throw CLIError("cannot make a private directory for the bootstrap: \(String(cString: strerror(errno)))") }
                privateDirectory = String(cString: made)
                path = privateDirectory! + "/bootstrap.json"
            }
            // The bootstrap carries the workload's token: readable by its owner only.
            let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o600)
            guard descriptor >= 0 else { throw CLIError("cannot write the bootstrap to \(path): \(String(cString: strerror(errno)))") }
            let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
            fchmod(descriptor, 0o600)
            try handle.write(contentsOf: data)
            try handle.close()
        }
        guard let bootstrapData = FileManager.default.contents(atPath: path) else { throw CLIError("cannot read the bootstrap \(path)") }
        var commandLine = EnvoyCommandLine(binary: binary, bootstrapPath: path)
        commandLine.drainTimeSeconds = drainTime
        commandLine.drainStrategy = EnvoyCommandLine.DrainStrategy(rawValue: drainStrategy) ?? .immediate
        commandLine.concurrency = concurrency
        commandLine.logLevel = logLevel
        commandLine.baseID = baseID
        commandLine.extraArguments = envoyArguments
        let admin = ProxyLauncher.adminAddress(bootstrapJSON: bootstrapData)
        if admin == nil { Self.say("no admin address in \(path): SIGTERM stops Envoy without a graceful drain") }
        let launcher = ProxyLauncher(
            commandLine: commandLine, admin: admin, terminationDrain: .milliseconds(Int(terminationDrain * 1000)), log: Self.say)
        // A WorkloadGroup's readiness probe: run here and reported to meshd, as Istio's agent does.
        let probing = try ProxyProbe.from(bootstrapJSON: bootstrapData).map { probe in
            Self.say("running the WorkloadGroup's readiness probe every \(probe.schedule.period)")
            return Task { await probe.run(log: Self.say) }
        }
        defer { probing?.cancel() }
        let status = try await launcher.run()
        if status != 0 { throw ExitCode(status) }
    }

    /// One line on stderr, prefixed so it stands out in Envoy's own output.
    @Sendable static func say(_ line: String) {
        FileHandle.standardError.write(Data("meshctl proxy: \(line)\n".utf8))
    }

    /// `--envoy`, else MESHD_ENVOY, else `envoy` on PATH.
    static func findEnvoy(_ given: String?) throws -> String {
        if let given = given ?? ProcessInfo.processInfo.environment["MESHD_ENVOY"] {
            guard FileManager.default.isExecutableFile(atPath: given) else { throw CLIError("Envoy not found at \(given)") }
            return given
        }
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let candidate = "\(directory)/envoy"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw CLIError("Envoy not found: give --envoy PATH or set MESHD_ENVOY (scripts/envoy-path.sh prints the test tools' Envoy 1.40)")
    }
}
