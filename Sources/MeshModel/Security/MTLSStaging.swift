/// The mTLS mode a server sidecar enforces on a port, from PeerAuthentication as Istio resolves it.
public enum MTLSMode: String, Sendable, Hashable {
    /// Only mTLS.
    case strict = "STRICT"
    /// mTLS and plaintext.
    case permissive = "PERMISSIVE"
    /// Plaintext only.
    case disable = "DISABLE"

    /// Whether a sidecar in this mode takes mTLS (`tls`) or plaintext (`!tls`) connections.
    public func accepts(tls: Bool) -> Bool {
        tls ? self != .disable : self != .strict
    }

    /// The narrowest mode that takes everything either mode takes.
    public func union(_ other: MTLSMode) -> MTLSMode {
        self == other ? self : .permissive
    }
}

/// What meshd serves, per workload and port, while a change of mTLS mode is rolled out across
/// proxies in order: what the workload's sidecar accepts and whether clients send it mTLS. A port
/// that is not listed is served as configured.
public struct MTLSStaging: Hashable, Sendable {
    /// A workload's port (the port its sidecar accepts traffic on).
    public struct Key: Hashable, Sendable, Comparable, CustomStringConvertible {
        /// The workload.
        public var workload: ServiceRegistry.WorkloadID
        /// The port.
        public var port: UInt32

        /// A key.
        public init(workload: ServiceRegistry.WorkloadID, port: UInt32) {
            self.workload = workload
            self.port = port
        }

        public static func < (lhs: Key, rhs: Key) -> Bool {
            (lhs.workload.namespace, lhs.workload.name, lhs.port) < (rhs.workload.namespace, rhs.workload.name, rhs.port)
        }

        public var description: String { "\(workload):\(port)" }
    }

    /// What is served on one port.
    public struct Entry: Hashable, Sendable, CustomStringConvertible {
        /// What the workload's sidecar accepts.
        public var accept: MTLSMode
        /// Whether clients send mTLS.
        public var clientsUseTLS: Bool

        /// An entry.
        public init(accept: MTLSMode, clientsUseTLS: Bool) {
            self.accept = accept
            self.clientsUseTLS = clientsUseTLS
        }

        /// What a configured mode means with auto mTLS: clients send mTLS unless it is DISABLE.
        public init(configured mode: MTLSMode) {
            self.init(accept: mode, clientsUseTLS: mode != .disable)
        }

        public var description: String { "accepts \(accept.rawValue), clients send \(clientsUseTLS ? "mTLS" : "plaintext")" }
    }

    /// The ports served otherwise than configured.
    public var entries: [Key: Entry]

    /// Staging with `entries`.
    public init(_ entries: [Key: Entry] = [:]) {
        self.entries = entries
    }

    /// The entries of one workload, by port.
    public func entries(of workload: ServiceRegistry.WorkloadID) -> [UInt32: Entry] {
        var out: [UInt32: Entry] = [:]
        for (key, entry) in entries where key.workload == workload { out[key.port] = entry }
        return out
    }
}
