internal import Foundation
public import MeshModel
internal import NIOCore
internal import NIOHTTP1
internal import NIOPosix

/// One HTTP/1.1 connection kept open across requests — plaintext, or TLS with a client
/// certificate as a mesh peer — to see what happens to a connection opened before a
/// configuration change.
public final class KeepAliveConnection: Sendable {
    private let channel: any Channel
    private let collector: Collector

    /// Connects to `address`, over TLS when `tls` is given.
    public static func connect(_ address: HostPort, tls: HTTPProbe.TLS? = nil) async throws -> KeepAliveConnection {
        let collector = Collector()
        let channel = try await HTTPProbe.connect(address, on: MultiThreadedEventLoopGroup.singleton.next(), tls: try tls?.context(), handler: collector)
        return KeepAliveConnection(channel: channel, collector: collector)
    }

    private init(channel: any Channel, collector: Collector) {
        self.channel = channel
        self.collector = collector
    }

    /// Whether the peer closed it.
    public var isClosed: Bool { !channel.isActive }

    /// Sends a GET on this connection; `nil` if it was closed before a whole response came.
    public func get(_ path: String, authority: String, headers: [(String, String)] = [], timeout: Duration = .seconds(5)) async -> HTTPProbe.Response? {
        guard channel.isActive else { return nil }
        let promise = channel.eventLoop.makePromise(of: HTTPProbe.Response.self)
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path)
        head.headers.add(name: "host", value: authority)
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        let (channel, collector) = (self.channel, self.collector)
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

    /// Waits up to `timeout` for the peer to close it; `true` if it did.
    public func waitForClose(timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while channel.isActive && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        return !channel.isActive
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
                pending?.succeed(HTTPProbe.Response(status: Int(head.status.code), headers: HTTPProbe.headers(head), body: String(buffer: body)))
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
