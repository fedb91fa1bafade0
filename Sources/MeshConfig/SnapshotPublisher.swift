public import MeshModel
internal import Synchronization

/// Holds the mesh snapshot being served and tells subscribers when it changes.
///
/// Subscribers see the newest snapshot only (intermediate ones are skipped when they fall behind),
/// which merges bursts of changes for slow consumers.
public final class SnapshotPublisher: Sendable {
    private struct State {
        var snapshot: MeshSnapshot
        var subscribers: [UInt64: AsyncStream<MeshSnapshot>.Continuation] = [:]
        var handlers: [UInt64: @Sendable (MeshSnapshot) -> Void] = [:]
        var nextID: UInt64 = 0
    }

    private let state: Mutex<State>

    /// A publisher serving `initial`.
    public init(initial: MeshSnapshot = .empty) {
        state = Mutex(State(snapshot: initial))
    }

    /// The snapshot being served.
    public var current: MeshSnapshot {
        state.withLock { $0.snapshot }
    }

    /// Serves `snapshot` from now on and tells every subscriber.
    public func publish(_ snapshot: MeshSnapshot) {
        let (subscribers, handlers) = state.withLock { state -> ([AsyncStream<MeshSnapshot>.Continuation], [@Sendable (MeshSnapshot) -> Void]) in
            // Changes made concurrently may arrive out of order: never go back to an older one.
            guard snapshot.revision >= state.snapshot.revision else { return ([], []) }
            state.snapshot = snapshot
            return (Array(state.subscribers.values), state.handlers.sorted { $0.key < $1.key }.map(\.value))
        }
        for subscriber in subscribers { subscriber.yield(snapshot) }
        for handler in handlers { handler(snapshot) }
    }

    /// Calls `handler` with every newer snapshot (on the publisher's thread, handlers in the order
    /// they subscribed; keep it short).
    /// Returns an id for ``unsubscribe(_:)``.
    public func subscribe(_ handler: @escaping @Sendable (MeshSnapshot) -> Void) -> UInt64 {
        state.withLock { state in
            let id = state.nextID
            state.nextID += 1
            state.handlers[id] = handler
            return id
        }
    }

    /// Stops calling a handler.
    public func unsubscribe(_ id: UInt64) {
        _ = state.withLock { $0.handlers.removeValue(forKey: id) }
    }

    /// A stream that starts with the current snapshot and then yields each newer one.
    public func updates() -> AsyncStream<MeshSnapshot> {
        let (stream, continuation) = AsyncStream.makeStream(of: MeshSnapshot.self, bufferingPolicy: .bufferingNewest(1))
        let id = state.withLock { state in
            let id = state.nextID
            state.nextID += 1
            state.subscribers[id] = continuation
            continuation.yield(state.snapshot)
            return id
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.subscribers.removeValue(forKey: id) }
        }
        return stream
    }
}
