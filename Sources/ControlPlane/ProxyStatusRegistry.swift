internal import XDSServer
internal import EnvoyAPI
internal import Synchronization

/// What meshd knows about each connected proxy: per type, what was sent and what the proxy said.
public final class ProxyStatusRegistry: Sendable {
    /// The status of one type on one proxy, as `istioctl proxy-status` shows it.
    public struct TypeStatus: Hashable, Sendable, Codable {
        /// Version of the newest response sent.
        public var sentVersion: String?
        /// Nonce of the newest response sent.
        public var sentNonce: String?
        /// Version the proxy last accepted.
        public var acceptedVersion: String?
        /// Nonce of the last response the proxy answered (ACK or NACK).
        public var answeredNonce: String?
        /// The proxy's message when it rejected the newest answered response.
        public var rejection: String?

        /// SYNCED (newest sent is accepted), NOT SENT, STALE (sent, not answered), ERROR (rejected).
        public var state: String {
            guard let sentNonce else { return "NOT SENT" }
            if answeredNonce != sentNonce { return "STALE" }
            return rejection == nil ? "SYNCED" : "ERROR"
        }
    }

    /// One connected proxy.
    public struct Proxy: Hashable, Sendable, Codable {
        /// The connection's id (unique for the process).
        public var connection: UInt64
        /// The node id.
        public var proxyID: String
        /// The workload (`namespace/name`).
        public var workload: String
        /// The peer address.
        public var peer: String
        /// Per type short name (`cds`, `lds`, ...).
        public var types: [String: TypeStatus]
    }

    private struct State {
        var proxies: [UInt64: Proxy] = [:]
        var next: UInt64 = 1
    }

    private let state = Mutex(State())

    /// An empty registry.
    public init() {}

    /// Registers a new connection and returns its id.
    func register(proxyID: String, workload: String, peer: String) -> UInt64 {
        state.withLock { state in
            let id = state.next
            state.next += 1
            state.proxies[id] = Proxy(connection: id, proxyID: proxyID, workload: workload, peer: peer, types: [:])
            return id
        }
    }

    /// Forgets a connection.
    func unregister(_ connection: UInt64) {
        _ = state.withLock { $0.proxies.removeValue(forKey: connection) }
    }

    /// Records an event of a connection.
    func record(_ event: ProxyStreamEvent, connection: UInt64) {
        state.withLock { state in
            guard var proxy = state.proxies[connection] else { return }
            switch event {
            case .sent(let typeURL, let version, let nonce, _):
                var status = proxy.types[XDSTypeURL.shortName(typeURL)] ?? TypeStatus()
                status.sentVersion = version
                status.sentNonce = nonce
                proxy.types[XDSTypeURL.shortName(typeURL)] = status
            case .acknowledged(let typeURL, let version, let nonce):
                var status = proxy.types[XDSTypeURL.shortName(typeURL)] ?? TypeStatus()
                if status.sentNonce == nil {
                    // A reconnecting proxy already held what meshd would send.
                    status.sentVersion = version
                    status.sentNonce = nonce
                }
                status.acceptedVersion = version
                status.answeredNonce = nonce
                status.rejection = nil
                proxy.types[XDSTypeURL.shortName(typeURL)] = status
            case .unwatched(let typeURL):
                proxy.types[XDSTypeURL.shortName(typeURL)] = nil
            case .health:
                return
            case .rejected(let typeURL, _, let nonce, let message):
                var status = proxy.types[XDSTypeURL.shortName(typeURL)] ?? TypeStatus()
                status.answeredNonce = nonce
                status.rejection = message
                proxy.types[XDSTypeURL.shortName(typeURL)] = status
            }
            state.proxies[connection] = proxy
        }
    }

    /// Every connected proxy, sorted by proxy id.
    public var proxies: [Proxy] {
        state.withLock { Array($0.proxies.values) }.sorted { ($0.proxyID, $0.connection) < ($1.proxyID, $1.connection) }
    }
}
