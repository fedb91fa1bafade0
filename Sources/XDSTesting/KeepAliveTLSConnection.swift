internal import Foundation
public import MeshModel
internal import NIOCore
internal import NIOHTTP1
internal import NIOPosix
internal import NIOSSL

/// One HTTP/1.1 connection over TLS (a client certificate, as a mesh peer) kept open across
/// requests, to see what happens to a connection opened before a configuration change.
public final class KeepAliveTLSConnection: Sendable {
    private let channel: any Channel
    private let collector: Collector

    /// Connects to `address` with `tls`.
    public static func connect(_ address: HostPort, tls: HTTPProbe.TLS) async throws -> KeepAliveTLSConnection {
        let context = try tls.context()
        let collector = Collector()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(2))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: context, serverHostname: nil))
                }.flatMap {
                    channel.pipeline.addHTTPClientHandlers()
                }.flatMap {
                    channel.pipeline.addHandler(collector)
                }
            }
            .connect(host: address.host, port: Int(address.port)).get()
        return KeepAliveTLSConnection(channel: channel, collector: collector)
    }

    private init(channel: any Channel, collector: Collector) {
        self.channel = channel
        self.collector = collector
    }

    /// Whether the peer closed it.
    public var isClosed: Bool { !channel.isActive }

    /// Sends a GET on this connection; `nil` if it was closed before a whole response came.
    public func get(_ path: String, authority: String, timeout: Duration = .seconds(5)) async -> HTTPProbe.Response? {
        guard channel.isActive else { return nil }
        let promise = channel.eventLoop.makePromise(of: HTTPProbe.Response.self)
        let collector = self.collector
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path)
        head.headers.add(name: "host", value: authority)
        let channel = self.channel
        channel.eventLoop.execute {
            collector.pending = promise
            channel.write(HTTPClientRequestPart.head(head), promise: nil)
            channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        }
        let deadline = channel.eventLoop.scheduleTask(in: .milliseconds(Int64(timeout.components.seconds * 1000))) {
            promise.fail(HTTPProbe.Failure(description: "no response within \(timeout)"))
        }
        defer { deadline.cancel() }
        return try? await promise.futureResult.get()
    }

    /// Closes it.
    public func close() {
        channel.close(promise: nil)
    }

    /// Hands each response to the request waiting for it; runs on the channel's event loop.
    private final class Collector: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPClientResponsePart
        var pending: EventLoopPromise<HTTPProbe.Response>?
        var head: HTTPResponseHead?
        var body = ByteBuffer()

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
                body.clear()
            case .body(var buffer):
                body.writeBuffer(&buffer)
            case .end:
                guard let head else { return }
                var headers: [String: String] = [:]
                for (name, value) in head.headers { headers[name.lowercased()] = value }
                pending?.succeed(HTTPProbe.Response(status: Int(head.status.code), headers: headers, body: String(buffer: body)))
                pending = nil
                self.head = nil
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            pending?.fail(HTTPProbe.Failure(description: "connection closed"))
            pending = nil
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            pending?.fail(HTTPProbe.Failure(description: "\(error)"))
            pending = nil
            context.close(promise: nil)
        }
    }
}
