/// How the launcher starts Envoy: the flags that decide how fast a configuration change reaches
/// connections that are already open, and how Envoy shuts down.
///
/// Envoy's own defaults (a 600 s gradual drain) keep old filter chains, and with them old
/// authorization and mTLS settings, serving open keep-alive connections for minutes. With the
/// `immediate` strategy, every connection on a replaced filter chain is asked to close at its next
/// response (HTTP/1.1 `Connection: close`, HTTP/2 GOAWAY) and the rest are closed when the drain
/// time ends, so a new policy reaches open connections within `drainTime` of being pushed.
public struct EnvoyCommandLine: Sendable, Equatable {
    /// Envoy's drain strategies.
    public enum DrainStrategy: String, Sendable, CaseIterable {
        /// Every draining connection is told to close at once.
        case immediate
        /// Connections are told to close with a probability growing over the drain time.
        case gradual
    }

    /// The Envoy binary.
    public var binary: String
    /// The bootstrap file.
    public var bootstrapPath: String
    /// How long old filter chains (and, on shutdown, listeners) drain, in seconds.
    public var drainTimeSeconds: Int = EnvoyCommandLine.defaultDrainTimeSeconds
    /// How draining connections are told to close.
    public var drainStrategy: DrainStrategy = .immediate
    /// Worker threads (`--concurrency`).
    public var concurrency: Int = 2
    /// Envoy's log level.
    public var logLevel: String = "warning"
    /// A base id for Envoy's shared memory; `nil` runs Envoy with `--disable-hot-restart` (the
    /// launcher restarts Envoy whole, so hot restart is never needed).
    public var baseID: Int?
    /// Further arguments passed as they are.
    public var extraArguments: [String] = []

    /// The launcher's default drain time: short enough that a new policy reaches idle keep-alive
    /// connections within a few seconds, long enough for a request in flight to finish.
    public static let defaultDrainTimeSeconds = 3

    /// Creates a command line with the launcher's defaults.
    public init(binary: String, bootstrapPath: String) {
        self.binary = binary
        self.bootstrapPath = bootstrapPath
    }

    /// Envoy's arguments (without the binary).
    public var arguments: [String] {
        var out = ["-c", bootstrapPath]
        if let baseID {
            out += ["--base-id", String(baseID)]
        } else {
            out.append("--disable-hot-restart")
        }
        out += [
            "--concurrency", String(concurrency),
            "--log-level", logLevel,
            "--drain-time-s", String(drainTimeSeconds),
            "--drain-strategy", drainStrategy.rawValue,
            // Unused without hot restart, but Envoy insists it exceed the drain time.
            "--parent-shutdown-time-s", String(drainTimeSeconds + 1),
        ]
        return out + extraArguments
    }
}
