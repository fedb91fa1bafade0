internal import GRPCCore
internal import GRPCNIOTransportCore
internal import NIOCore
internal import NIOTLS
internal import NIOPosix
internal import NIOSSL
internal import X509
internal import SwiftASN1
internal import Synchronization
internal import MeshModel

/// The xDS port's listener: TLS with a certificate from meshd's CA (or plaintext when asked for),
/// asking for — but not requiring — a client certificate, so that proxies authenticate with a
/// token and renewal jobs may authenticate with the certificate they hold.
///
/// The TLS context is read per connection, so a new server certificate or trust bundle (CA
/// rotation) applies to new connections without a restart. Each connection's verified client
/// certificate is kept in ``PeerCertificates`` under the peer address gRPC reports.
struct XDSListenerFactory: HTTP2ServerTransport.ListenerFactory {
    let host: String
    let port: Int
    let tls: TLSContextHolder?
    let peers: PeerCertificates

    var eventLoopGroup: any EventLoopGroup { MultiThreadedEventLoopGroup.singleton }

    func makeListeningChannel(
        listenerConfigurator: HTTP2ServerTransport.ListenerConfigurator,
        connectionConfigurator: HTTP2ServerTransport.ConnectionConfigurator
    ) async throws -> NIOAsyncChannel<HTTP2ServerTransport.ConnectionConfigurator.ConnectionChannel, Never> {
        let tls = self.tls
        let peers = self.peers
        return try await ServerBootstrap(group: eventLoopGroup)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // A fleet reconnecting at once (meshd restarted) must not overflow the accept queue:
            // a dropped SYN costs the proxy a 1 s, then 3 s, … retransmission.
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelInitializer { channel in listenerConfigurator.configure(channel: channel) }
            // xDS connections are many and mostly idle: one receive buffer per read, starting
            // small, instead of NIO's defaults for bulk traffic.
            .childChannelOption(.maxMessagesPerRead, value: 1)
            .childChannelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 1024, maximum: 65536))
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let context = tls?.current {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
                        try channel.pipeline.syncOperations.addHandler(PeerCertificateRecorder(peers: peers))
                    }
                    try channel.pipeline.syncOperations.addHandler(RightSizedReads())
                }.flatMap {
                    connectionConfigurator.configure(channel: channel, tls: tls == nil ? .none : .configured(requireALPN: false))
                }
            }
    }
}

/// Copies each read into a buffer of its own size before HTTP/2 sees it: the HTTP/2 frame
/// decoder keeps the storage of the buffers it is given, which after TLS is NIOSSL's 32 KiB read
/// buffer, for as long as the connection lives.
final class RightSizedReads: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let read = unwrapInboundIn(data)
        context.fireChannelRead(wrapInboundOut(context.channel.allocator.buffer(buffer: read)))
    }
}

/// The server TLS context in use; replaced when meshd's serving certificate or the trust bundle
/// changes.
///
/// In FIPS mode (`fips`): TLS 1.2 only, with ``FIPSPolicy``'s cipher suites, curves P-256 and
/// P-384 and approved signature algorithms. swift-nio-ssl offers no way to choose TLS 1.3's
/// cipher suites (BoringSSL would accept ChaCha20-Poly1305), so meshd's own port stays on
/// TLS 1.2, as Istio's FIPS policy does (docs/FIPS.md).
final class TLSContextHolder: Sendable {
    private struct Inputs: Hashable {
        var chainPEM: String
        var keyPEM: String
        var trustBundlePEM: String
    }

    private let context: Mutex<(context: NIOSSLContext, inputs: Inputs)>
    private let fips: Bool

    init(chainPEM: String, keyPEM: String, trustBundlePEM: String, fips: Bool = false) throws {
        let inputs = Inputs(chainPEM: chainPEM, keyPEM: keyPEM, trustBundlePEM: trustBundlePEM)
        self.fips = fips
        context = Mutex((try Self.make(inputs, fips: fips), inputs))
    }

    var current: NIOSSLContext { context.withLock { $0.context } }

    /// Builds a new context when any input differs from the one in use.
    func replaceIfChanged(chainPEM: String, keyPEM: String, trustBundlePEM: String) throws {
        let inputs = Inputs(chainPEM: chainPEM, keyPEM: keyPEM, trustBundlePEM: trustBundlePEM)
        guard context.withLock({ $0.inputs }) != inputs else { return }
        let next = try Self.make(inputs, fips: fips)
        context.withLock { $0 = (next, inputs) }
    }

    private static func make(_ inputs: Inputs, fips: Bool) throws -> NIOSSLContext {
        let chain = try NIOSSLCertificate.fromPEMBytes(Array(inputs.chainPEM.utf8)).map { NIOSSLCertificateSource.certificate($0) }
        let key = try NIOSSLPrivateKey(bytes: Array(inputs.keyPEM.utf8), format: .pem)
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
        configuration.certificateVerification = .optionalVerification
        configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(inputs.trustBundlePEM.utf8)))
        configuration.applicationProtocols = ["h2", "grpc-exp"]
        configuration.minimumTLSVersion = .tlsv12
        if fips { restrictToFIPS(&configuration) }
        return try NIOSSLContext(configuration: configuration)
    }

    /// TLS 1.2 with ``FIPSPolicy``'s suites, curves and approved signature algorithms (meshd's
    /// own TLS: the xDS port, and fetching key sets).
    static func restrictToFIPS(_ configuration: inout TLSConfiguration) {
        configuration.minimumTLSVersion = .tlsv12
        configuration.maximumTLSVersion = .tlsv12
        configuration.cipherSuites = FIPSPolicy.tls12CipherSuites.joined(separator: ":")
        configuration.curves = [.secp256r1, .secp384r1]
        let approved: [SignatureAlgorithm] = [
            .ecdsaSecp256R1Sha256, .ecdsaSecp384R1Sha384, .rsaPkcs1Sha256, .rsaPkcs1Sha384, .rsaPkcs1Sha512,
            .rsaPssRsaeSha256, .rsaPssRsaeSha384, .rsaPssRsaeSha512,
        ]
        configuration.verifySignatureAlgorithms = approved
        configuration.signingSignatureAlgorithms = approved
    }
}

/// The client certificates of open connections, by the peer string gRPC puts in `ServerContext.remotePeer`.
public final class PeerCertificates: Sendable {
    private let certificates = Mutex<[String: Certificate]>([:])

    public init() {}

    func set(_ certificate: Certificate?, peer: String) {
        certificates.withLock { $0[peer] = certificate }
    }

    func certificate(peer: String) -> Certificate? {
        certificates.withLock { $0[peer] }
    }

    /// The peer string gRPC uses for an address (`ipv4:127.0.0.1:5000`, `ipv6:[::1]:5000`).
    static func peerString(_ address: NIOCore.SocketAddress?) -> String? {
        switch address {
        case .v4(let v4)?: "ipv4:\(v4.host):\(address!.port!)"
        case .v6(let v6)?: "ipv6:[\(v6.host)]:\(address!.port!)"
        default: nil
        }
    }
}

/// Records a connection's verified client certificate once the handshake completes.
private final class PeerCertificateRecorder: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = Any

    let peers: PeerCertificates
    var peer: String?

    init(peers: PeerCertificates) {
        self.peers = peers
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event, let peer = PeerCertificates.peerString(context.channel.remoteAddress) {
            self.peer = peer
            let channel = context.channel
            channel.nioSSL_peerCertificate().assumeIsolated().whenSuccess { [peers] certificate in
                guard let certificate, let der = try? certificate.toDERBytes(), let parsed = try? Certificate(derEncoded: der) else { return }
                peers.set(parsed, peer: peer)
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let peer { peers.set(nil, peer: peer) }
        context.fireChannelInactive()
    }
}
