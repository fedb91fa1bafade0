public import GRPCCore
public import MeshModel
public import GRPCNIOTransportHTTP2
internal import GRPCNIOTransportCore

/// How a test client talks to meshd's xDS port.
public enum XDSClientSecurity: Sendable {
    /// No TLS (meshd with `--xds-plaintext`).
    case plaintext
    /// TLS verifying meshd's certificate (`meshd.istio-system.svc` in its SANs) against a trust bundle, optionally
    /// presenting a client certificate.
    case tls(trustBundlePEM: String, clientChainPEM: String? = nil, clientKeyPEM: String? = nil)

    /// Runs `body` with a gRPC client connected to `address`.
    public func withClient<Result: Sendable>(
        _ address: HostPort, _ body: @escaping @Sendable (GRPCClient<HTTP2ClientTransport.Posix>) async throws -> Result
    ) async throws -> Result {
        let target = ResolvableTargets.IPv4(addresses: [.init(host: address.host, port: Int(address.port))])
        switch self {
        case .plaintext:
            return try await withGRPCClient(transport: .http2NIOPosix(target: target, transportSecurity: .plaintext), handleClient: body)
        case .tls(let bundle, let chain, let key):
            let security = HTTP2ClientTransport.Posix.TransportSecurity.tls { config in
                config.trustRoots = .certificates([.bytes(Array(bundle.utf8), format: .pem)])
                config.serverCertificateVerification = .fullVerification
                if let chain, let key {
                    config.certificateChain = [.bytes(Array(chain.utf8), format: .pem)]
                    config.privateKey = .bytes(Array(key.utf8), format: .pem)
                }
            }
            let transport = try HTTP2ClientTransport.Posix(
                target: target, transportSecurity: security,
                config: .defaults { $0.http2.authority = "meshd.istio-system.svc" })
            return try await withGRPCClient(transport: transport, handleClient: body)
        }
    }
}
