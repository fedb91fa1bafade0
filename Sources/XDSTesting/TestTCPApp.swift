internal import NIOCore
internal import NIOPosix
public import MeshModel
internal import Synchronization

/// A TCP app standing in for a workload: when a connection sends its first bytes, it answers with
/// its name and a newline and closes it, counting connections. (Client-first, so that a proxy in
/// between decides on the client's first bytes before the app says anything.)
public final class TestTCPApp: Sendable {
    /// The name it writes.
    public let name: String
    private let channel: any Channel
    private let count: Counter

    final class Counter: Sendable {
        let value = Atomic<Int>(0)
    }

    /// Starts an app on `host:port`.
    public static func start(name: String, host: String, port: Int) async throws -> TestTCPApp {
        let count = Counter()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Greeter(line: name + "\n", count: count))
                }
            }
            .bind(host: host, port: port).get()
        return TestTCPApp(name: name, channel: channel, count: count)
    }

    private init(name: String, channel: any Channel, count: Counter) {
        self.name = name
        self.channel = channel
        self.count = count
    }

    /// Connections accepted so far.
    public var connections: Int { count.value.load(ordering: .relaxed) }

    /// Stops listening.
    public func stop() async {
        try? await channel.close()
    }

    private final class Greeter: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let line: String
        let count: Counter

        init(line: String, count: Counter) {
            self.line = line
            self.count = count
        }

        var answered = false

        func channelActive(context: ChannelHandlerContext) {
            count.value.add(1, ordering: .relaxed)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard !answered else { return }
            answered = true
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: line))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        }
    }

    /// Connects to `address`, sends nothing, and returns how long until the other side closed
    /// the connection, or `nil` if it was still open after `limit`.
    public static func idleLifetime(_ address: HostPort, limit: Duration) async throws -> Duration? {
        let clock = ContinuousClock()
        let start = clock.now
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(2))
            .connect(host: address.host, port: Int(address.port)) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        let timer = Task {
            try await Task.sleep(for: limit)
            try? await channel.channel.close()
        }
        try? await channel.executeThenClose { inbound, _ in
            for try await _ in inbound {}
        }
        timer.cancel()
        let elapsed = clock.now - start
        return elapsed < limit ? elapsed : nil
    }

    /// Connects to `address`, says `greeting` (nothing when `nil`: for servers that speak first),
    /// and returns what the server writes before closing.
    public static func read(_ address: HostPort, timeout: Duration = .seconds(3), greeting: String? = "hello\n") async throws -> String {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(2))
            .connect(host: address.host, port: Int(address.port)) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return try await withThrowingTaskGroup(of: String.self) { group in
            group.addTask {
                var text = ""
                try await channel.executeThenClose { inbound, outbound in
                    if let greeting { try await outbound.write(ByteBuffer(string: greeting)) }
                    for try await var buffer in inbound { text += buffer.readString(length: buffer.readableBytes) ?? "" }
                }
                return text
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw HTTPProbe.Failure(description: "no answer from \(address) within \(timeout)")
            }
            let first = try await group.next()!
            group.cancelAll()
            return first
        }
    }
}
