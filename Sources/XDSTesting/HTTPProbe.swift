internal import NIOCore
internal import NIOPosix
internal import NIOHTTP1
internal import NIOSSL
public import MeshModel

/// A minimal HTTP/1.1 client for tests: one request per connection, any Host header, a deadline.
public enum HTTPProbe {
    /// A response.
    public struct Response: Sendable {
        /// Status code.
        public var status: Int
        /// Headers, lower-cased names (repeated headers joined by commas).
        public var headers: [String: String]
        /// Body as text.
        public var body: String
    }

    /// Why a request got no response.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        /// What happened.
        public var description: String

        /// A failure described by `description`.
        public init(description: String) {
            self.description = description
        }
    }

    /// TLS for a probe: the client certificate to present (PEMs) and the roots that verify the
    /// server (its SPIFFE URI is not checked, as a hostname would be).
    public struct TLS: Sendable {
        /// Client certificate chain, PEM, leaf first.
        public var chainPEM: String?
        /// Client key, PEM.
        public var keyPEM: String?
        /// Roots that verify the server, PEM; `nil` verifies nothing.
        public var trustPEM: String?
        /// ALPN protocols to offer.
        public var alpn: [String]

        /// TLS options.
        public init(chainPEM: String? = nil, keyPEM: String? = nil, trustPEM: String? = nil, alpn: [String] = ["http/1.1"]) {
            self.chainPEM = chainPEM
            self.keyPEM = keyPEM
            self.trustPEM = trustPEM
            self.alpn = alpn
        }

        func context() throws -> NIOSSLContext {
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.applicationProtocols = alpn
            if let chainPEM, let keyPEM {
                configuration.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(chainPEM.utf8)).map { .certificate($0) }
                configuration.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem))
            }
            if let trustPEM {
                configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(trustPEM.utf8)))
                configuration.certificateVerification = .noHostnameVerification
            } else {
                configuration.certificateVerification = .none
            }
            return try NIOSSLContext(configuration: configuration)
        }
    }

    /// Sends `method path` to `address` with `authority` as the Host header, over TLS when `tls`
    /// is given.
    public static func request(
        _ address: HostPort, authority: String, path: String = "/", method: String = "GET",
        headers: [(String, String)] = [], body: String? = nil, timeout: Duration = .seconds(5), tls: TLS? = nil
    ) async throws -> Response {
        let sslContext = try tls?.context()
        let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
        let promise = eventLoop.makePromise(of: Response.self)
        let channel: any Channel
        do {
            channel = try await connect(address, on: eventLoop, tls: sslContext, handler: ResponseCollector(promise: promise))
        } catch {
            let failure = Failure(description: "cannot connect to \(address): \(error)")
            promise.fail(failure)
            throw failure
        }
        let nanoseconds = timeout.components.seconds * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000
        let deadline = eventLoop.scheduleTask(in: .nanoseconds(nanoseconds)) {
            promise.fail(Failure(description: "no response from \(address) within \(timeout)"))
            channel.close(promise: nil)
        }
        var head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method), uri: path)
        head.headers.add(name: "host", value: authority)
        head.headers.add(name: "connection", value: "close")
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        if let body { head.headers.add(name: "content-length", value: String(body.utf8.count)) }
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if let body { channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(string: body))), promise: nil) }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        defer {
            deadline.cancel()
            channel.close(promise: nil)
        }
        return try await promise.futureResult.get()
    }

    /// An HTTP/1.1 client channel to `address` (over TLS with `tls`) ending in `handler`.
    static func connect(
        _ address: HostPort, on eventLoop: any EventLoop, tls: NIOSSLContext?, handler: some ChannelInboundHandler & Sendable
    ) async throws -> any Channel {
        try await ClientBootstrap(group: eventLoop)
            .connectTimeout(.seconds(2))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: nil))
                    }
                }.flatMap {
                    channel.pipeline.addHTTPClientHandlers()
                }.flatMap {
                    channel.pipeline.addHandler(handler)
                }
            }
            .connect(host: address.host, port: Int(address.port)).get()
    }

    /// Lower-cased header names; repeated headers joined by commas.
    static func headers(_ head: HTTPResponseHead) -> [String: String] {
        var headers: [String: String] = [:]
        for (name, value) in head.headers {
            let key = name.lowercased()
            headers[key] = headers[key].map { "\($0),\(value)" } ?? value
        }
        return headers
    }

    private final class ResponseCollector: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPClientResponsePart

        let promise: EventLoopPromise<Response>
        var head: HTTPResponseHead?
        var body = ByteBuffer()

        init(promise: EventLoopPromise<Response>) {
            self.promise = promise
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
            case .body(var buffer):
                body.writeBuffer(&buffer)
            case .end:
                guard let head else { return }
                promise.succeed(Response(status: Int(head.status.code), headers: HTTPProbe.headers(head), body: String(buffer: body)))
                context.close(promise: nil)
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            promise.fail(Failure(description: "connection closed before a complete response"))
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            promise.fail(Failure(description: "\(error)"))
            context.close(promise: nil)
        }
    }
}
