/// How meshd reads a Gateway server, the same way in validation and in translation.
extension Server {
    /// What servers sharing a port must agree on: plain HTTP, TCP, or TLS told apart by SNI
    /// (HTTPS and TLS servers).
    public enum PortKind: String, Sendable {
        case http = "HTTP"
        case tcp = "TCP"
        case tls = "TLS"
    }

    /// The kind of this server's port.
    public var portKind: PortKind {
        switch port.protocol.uppercased() {
        case "HTTPS", "TLS": .tls
        case "TCP": .tcp
        default: .http
        }
    }

    /// The server's hosts without their namespace part (`web/a.example.com` is `a.example.com`).
    public var hostNames: [String] {
        hosts.map { $0.split(separator: "/", maxSplits: 1).last.map(String.init)?.lowercased() ?? $0 }
    }
}

extension HostName {
    /// The `namespace/name` of a gateway that a VirtualService in `namespace` names: as written
    /// when it has a namespace, else in the VirtualService's (`mesh` is not a gateway resource).
    public static func gateway(_ name: String, in namespace: String) -> String {
        name.contains("/") ? name : "\(namespace)/\(name)"
    }
}
