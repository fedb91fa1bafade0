internal import GRPCCore
internal import GRPCNIOTransportHTTP2
internal import GRPCNIOTransportCore
public import MeshModel

/// Names both sides of a connection to meshd agree on.
public enum MeshEndpoints {
    /// The DNS name in meshd's xDS/CA serving certificate, which proxies and `meshctl cert
    /// renew` verify (Istio's istiod name).
    public static let xdsServerName = "meshd.istio-system.svc"

    /// A gRPC transport to meshd's xDS/CA port at `address`: TLS verifying meshd's certificate
    /// against `trustPEM` (presenting `client` when given), or plaintext without `trustPEM`.
    static func transport(to address: HostPort, trustPEM: String?, client: (chain: String, key: String)? = nil) throws -> HTTP2ClientTransport.Posix {
        let target: any ResolvableTarget
        switch IPAddress(address.host) {
        case .v4?: target = ResolvableTargets.IPv4(addresses: [.init(host: address.host, port: Int(address.port))])
        case .v6?: target = ResolvableTargets.IPv6(addresses: [.init(host: address.host, port: Int(address.port))])
        case nil: target = ResolvableTargets.DNS(host: address.host, port: Int(address.port))
        }
        guard let trustPEM else {
            return try HTTP2ClientTransport.Posix(target: target, transportSecurity: .plaintext)
        }
        let security = HTTP2ClientTransport.Posix.TransportSecurity.tls { config in
            config.trustRoots = .certificates([.bytes(Array(trustPEM.utf8), format: .pem)])
            config.serverCertificateVerification = .fullVerification
            if let client {
                config.certificateChain = [.bytes(Array(client.chain.utf8), format: .pem)]
                config.privateKey = .bytes(Array(client.key.utf8), format: .pem)
            }
        }
        return try HTTP2ClientTransport.Posix(
            target: target, transportSecurity: security,
            config: .defaults { $0.http2.authority = xdsServerName })
    }
}
