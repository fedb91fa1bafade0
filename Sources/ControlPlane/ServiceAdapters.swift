internal import GRPCCore
internal import GRPCNIOTransportCore
internal import ServiceLifecycle
internal import MeshConfig

/// Runs the gRPC server as a lifecycle service.
struct GRPCServerService: Service {
    let server: GRPCServer<HTTP2ServerTransport.Custom<XDSListenerFactory>>

    func run() async throws {
        try await withGracefulShutdownHandler {
            try await server.serve()
        } onGracefulShutdown: {
            server.beginGracefulShutdown()
        }
    }
}

/// Runs the config directory watcher as a lifecycle service.
struct ConfigWatcherService: Service {
    let watcher: ConfigDirectoryWatcher

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await watcher.run()
        }
    }
}

struct DebounceService: Service {
    let pushes: DebouncedPublisher

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await pushes.run()
        }
    }
}
