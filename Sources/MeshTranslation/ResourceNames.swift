/// Istio's names for the Envoy resources meshd builds; users and tools (dashboards, `istioctl`
/// habits, stats tag extraction) rely on them.
public enum ResourceNames {
    /// `outbound|<port>|<subset>|<host>`.
    public static func outboundCluster(port: UInt32, subset: String = "", host: String) -> String {
        "outbound|\(port)|\(subset)|\(host)"
    }

    /// `inbound|<port>||`.
    public static func inboundCluster(port: UInt32) -> String {
        "inbound|\(port)||"
    }

    /// The SNI of mTLS toward an outbound cluster: `outbound_.<port>_.<subset>_.<host>`.
    public static func outboundSNI(port: UInt32, subset: String = "", host: String) -> String {
        "outbound_.\(port)_.\(subset)_.\(host)"
    }

    /// A listener bound to `address:port` (`127.0.1.2_8080`).
    public static func listener(address: String, port: UInt32) -> String {
        "\(address)_\(port)"
    }

    /// Parses an outbound cluster name into its parts.
    public static func parseOutboundCluster(_ name: String) -> (port: UInt32, subset: String, host: String)? {
        let parts = name.split(separator: "|", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "outbound", let port = UInt32(parts[1]) else { return nil }
        return (port, String(parts[2]), String(parts[3]))
    }

    /// The cluster of requests for hosts no service matches: refused.
    public static let blackHoleCluster = "BlackHoleCluster"
}
