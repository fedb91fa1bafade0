internal import NIOCore
internal import NIOPosix
internal import NIOHTTP1
internal import Synchronization

/// A small HTTP/1.1 app standing in for a workload: it answers with its own name by default, and
/// records every request it sees (path, headers) so tests can assert what reached it.
public final class TestHTTPApp: Sendable {
    /// One request the app received.
    public struct Request: Sendable, Hashable {
        /// Method.
        public var method: String
        /// Path with query.
        public var path: String
        /// Headers, lower-cased names.
        public var headers: [String: String]
        /// The body, as text.
        public var body: String = ""
    }

    /// How the app answers a request.
    public struct Reply: Sendable {
        /// Status code.
        public var status: Int
        /// Body.
        public var body: String
        /// Extra headers.
        public var headers: [(String, String)]
        /// Delay before answering.
        public var delay: Duration

        /// A reply.
        public init(status: Int = 200, body: String, headers: [(String, String)] = [], delay: Duration = .zero) {
            self.status = status
            self.body = body
            self.headers = headers
            self.delay = delay
        }
    }

    /// The app's name (its default body, plus a newline).
    public let name: String
    /// Where it listens.
    public let host: String
    /// Its port.
    public let port: Int
    private let channel: any Channel
    private let state: Shared

    final class Shared: Sendable {
        let requests = Mutex<[Request]>([])
        /// Accepted connections, closed by ``TestHTTPApp/stop()``.
        let connections = Mutex<[ObjectIdentifier: any Channel]>([:])
        let behaviour: Mutex<@Sendable (Request, Int) -> Reply>

        init(behaviour: @escaping @Sendable (Request, Int) -> Reply) {
            self.behaviour = Mutex(behaviour)
        }
    }

    /// Starts an app named `name` on `host:port` (port 0 picks one).
    public static func start(name: String, host: String, port: Int) async throws -> TestHTTPApp {
        let shared = Shared(behaviour: { _, _ in Reply(body: name + "\n") })
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                let id = ObjectIdentifier(channel)
                shared.connections.withLock { $0[id] = channel }
                channel.closeFuture.whenComplete { _ in shared.connections.withLock { $0[id] = nil } }
                return channel.pipeline.configureHTTPServerPipeline(withErrorHandling: true).flatMap {
                    channel.pipeline.addHandler(AppHandler(shared: shared))
                }
            }
            .bind(host: host, port: port).get()
        return TestHTTPApp(name: name, host: host, port: channel.localAddress?.port ?? port, channel: channel, state: shared)
    }

    private init(name: String, host: String, port: Int, channel: any Channel, state: Shared) {
        self.name = name
        self.host = host
        self.port = port
        self.channel = channel
        self.state = state
    }

    /// Replaces how the app answers; the closure gets the request and its 1-based sequence number.
    public func setBehaviour(_ behaviour: @escaping @Sendable (Request, Int) -> Reply) {
        state.behaviour.withLock { $0 = behaviour }
    }

    /// Every request received so far.
    public var requests: [Request] {
        state.requests.withLock { $0 }
    }

    /// Forgets the requests received so far.
    public func resetRequests() {
        state.requests.withLock { $0.removeAll() }
    }

    /// Stops as a killed process would: stops listening and closes every open connection.
    public func stop() async {
        try? await channel.close()
        for connection in state.connections.withLock({ Array($0.values) }) { try? await connection.close() }
    }

    private final class AppHandler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let shared: Shared
        var head: HTTPRequestHead?
        var body = ByteBuffer()

        init(shared: Shared) {
            self.shared = shared
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
                body.clear()
            case .body(var chunk):
                body.writeBuffer(&chunk)
            case .end:
                guard let head else { return }
                var headers: [String: String] = [:]
                for (name, value) in head.headers {
                    let key = name.lowercased()
                    headers[key] = headers[key].map { "\($0),\(value)" } ?? value
                }
                let request = Request(method: head.method.rawValue, path: head.uri, headers: headers, body: String(buffer: body))
                let sequence = shared.requests.withLock { requests -> Int in
                    requests.append(request)
                    return requests.count
                }
                let reply = shared.behaviour.withLock { $0 }(request, sequence)
                let keepAlive = head.isKeepAlive
                let respond = { [self] in
                    var responseHeaders = HTTPHeaders()
                    responseHeaders.add(name: "content-type", value: "text/plain")
                    responseHeaders.add(name: "content-length", value: String(reply.body.utf8.count))
                    for (name, value) in reply.headers { responseHeaders.add(name: name, value: value) }
                    if !keepAlive { responseHeaders.add(name: "connection", value: "close") }
                    let responseHead = HTTPResponseHead(version: head.version, status: HTTPResponseStatus(statusCode: reply.status), headers: responseHeaders)
                    context.write(wrapOutboundOut(.head(responseHead)), promise: nil)
                    context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: reply.body)))), promise: nil)
                    context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
                        if !keepAlive { context.close(promise: nil) }
                    }
                }
                if reply.delay > .zero {
                    let nanoseconds = reply.delay.components.seconds * 1_000_000_000 + reply.delay.components.attoseconds / 1_000_000_000
                    context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(nanoseconds)) { respond() }
                } else {
                    respond()
                }
                self.head = nil
            }
        }
    }
}
