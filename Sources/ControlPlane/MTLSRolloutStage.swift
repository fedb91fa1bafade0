internal import CoreMetrics
internal import Foundation
internal import Logging
internal import MeshConfig
internal import MeshModel
internal import MeshTranslation
internal import ServiceLifecycle
internal import Synchronization

/// Sits between the debounced configuration and the proxies: a configuration that changes a
/// workload's mTLS mode is served in the steps ``MTLSRollout`` decides, each step only once the
/// proxies it concerns acknowledged the one before (or `stepTimeout` passed: a proxy that never
/// answers does not hold the mesh back; that is logged and counted). A workload removed while
/// its proxy is connected is retired in two steps: every other proxy stops sending to it while
/// its own proxy keeps its listeners; once they acknowledged, its proxy loses them (so no
/// request reaches a listener that is draining). Other changes go out at once.
final class MTLSRolloutStage: Sendable {
    /// What proxies are served.
    let output: SnapshotPublisher
    private let provider: Mutex<MeshProxyProvider?> = Mutex(nil)
    private let state: Mutex<State>
    private let wake: AsyncStream<Void>
    private let wakeContinuation: AsyncStream<Void>.Continuation
    private let stepTimeout: Duration
    private let logger: Logger
    private let steps: Counter
    private let timeouts: Counter

    private struct State {
        var rollout = MTLSRollout()
        var latest: MeshSnapshot
        var inbox: MeshSnapshot?
        var step: UInt64 = 0
        var running = false
        /// The proxies the current step waits for (proxy-status).
        var pending: [String] = []
        var retirement = WorkloadRetirement()
    }

    init(source: SnapshotPublisher, stepTimeout: Duration, logger: Logger, metrics: any MetricsFactory) {
        var initial = State(latest: source.current)
        initial.rollout.retarget(MTLSRollout.configured(source.current))
        state = Mutex(initial)
        output = SnapshotPublisher(initial: source.current)
        (wake, wakeContinuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        self.stepTimeout = stepTimeout
        self.logger = logger
        steps = Counter(label: "meshd_mtls_rollout_steps_total", dimensions: [], factory: metrics)
        timeouts = Counter(label: "meshd_mtls_rollout_timeouts_total", dimensions: [], factory: metrics)
        _ = source.subscribe { [weak self] snapshot in self?.received(snapshot) }
    }

    /// The proxies whose acknowledgements steps wait for.
    func attach(_ provider: MeshProxyProvider) {
        self.provider.withLock { $0 = provider }
    }

    /// Whether nothing waits: no configuration unpublished, no port served otherwise than
    /// configured, no workload being retired.
    var isIdle: Bool {
        state.withLock { $0.inbox == nil && $0.rollout.isSettled && $0.retirement.isSettled }
    }

    /// What a held workload's proxies wait for (`nil`: nothing held).
    func note(for workload: ServiceRegistry.WorkloadID) -> String? {
        state.withLock { state in
            var held = state.rollout.staging.entries(of: workload).sorted { $0.key < $1.key }.map { "mTLS on port \($0.key) held (\($0.value))" }
            if state.retirement.retiring[workload] != nil {
                held.append("removed from the configuration: keeps its listeners until the other proxies stopped sending to it")
            }
            guard !held.isEmpty else { return nil }
            let waiting = state.pending.isEmpty
                ? ""
                : "; waiting for \(state.pending.prefix(5).joined(separator: ", "))\(state.pending.count > 5 ? " and \(state.pending.count - 5) more" : "")"
            return "\(held.joined(separator: "; ")) at step \(state.step)\(waiting)"
        }
    }

    private func received(_ snapshot: MeshSnapshot) {
        let immediate = state.withLock { state -> MeshSnapshot? in
            guard state.running else {
                // Before the stage runs (the initial load), configurations pass straight through.
                state.latest = snapshot
                state.rollout = MTLSRollout()
                state.rollout.retarget(MTLSRollout.configured(snapshot))
                return snapshot
            }
            state.inbox = snapshot
            return nil
        }
        if let immediate { output.publish(immediate) } else { wakeContinuation.yield() }
    }

    /// Serves configurations as they come, in steps where mTLS modes change, until cancelled.
    func run() async {
        state.withLock { $0.running = true }
        var wakes = wake.makeAsyncIterator()
        while !Task.isCancelled {
            if !takeInbox() {
                guard await wakes.next() != nil else { return }
                continue
            }
            while !Task.isCancelled, let wait = advance() {
                if wait.isEmpty { continue }
                await waitForAcknowledgements(wait)
            }
        }
    }

    /// Takes a new configuration if one came: retargets and publishes it with what is served now
    /// (workloads it removes that have a proxy connected are retired in steps).
    private func takeInbox() -> Bool {
        let connected = provider.withLock { $0 }?.sessions.connectedWorkloads ?? []
        let snapshot = state.withLock { state -> MeshSnapshot? in
            guard let next = state.inbox else { return nil }
            state.inbox = nil
            state.retirement.retarget(previous: state.latest.registry, next: next.registry, connected: connected)
            state.latest = next
            state.rollout.retarget(MTLSRollout.configured(next))
            state.step += 1
            return next.staged(state.rollout.staging, retiring: state.retirement.retiring, step: state.step)
        }
        guard let snapshot else { return false }
        output.publish(snapshot)
        return true
    }

    /// One step of the rollout, published; `nil` when everything is served as configured.
    /// Retiring workloads go first: their clients are awaited on the step already published,
    /// then their proxies are served without them.
    private func advance() -> MTLSRollout.Wait? {
        let (snapshot, wait, retired) = state.withLock { state -> (MeshSnapshot?, MTLSRollout.Wait?, [String]) in
            state.pending = []
            switch state.retirement.advance() {
            case .waitForClients(let ids):
                return (nil, MTLSRollout.Wait(clientsOf: ids), [])
            case .retire(let ids):
                state.step += 1
                return (state.latest.staged(state.rollout.staging, step: state.step), MTLSRollout.Wait(), ids.map(\.description).sorted())
            case nil:
                break
            }
            guard !state.rollout.isSettled else { return (nil, nil, []) }
            let wait = state.rollout.advance()
            state.step += 1
            return (state.latest.staged(state.rollout.staging, step: state.step), wait, [])
        }
        guard let wait else { return nil }
        guard let snapshot else { return wait }
        if retired.isEmpty {
            steps.increment()
            logger.info("mTLS rollout step", metadata: [
                "step": "\(snapshot.rolloutStep)", "staged": "\(snapshot.mtlsStaging.entries.count)",
                "wait_servers": "\(wait.servers.map(\.description).sorted())", "wait_clients_of": "\(wait.clientsOf.map(\.description).sorted())",
            ])
        } else {
            logger.info("removed workloads retired: their proxies lose their listeners", metadata: ["step": "\(snapshot.rolloutStep)", "workloads": "\(retired)"])
        }
        output.publish(snapshot)
        return wait
    }

    /// Waits until every proxy `wait` names holds the newest step, acknowledged, or `stepTimeout`
    /// passed; configurations that come meanwhile are published at once.
    private func waitForAcknowledgements(_ wait: MTLSRollout.Wait) async {
        let deadline = ContinuousClock.now + stepTimeout
        while !Task.isCancelled {
            _ = takeInbox()
            let step = state.withLock { $0.step }
            let pending = provider.withLock { $0 }?.sessions.unsettledProxies(step: step, wait: wait) ?? []
            state.withLock { $0.pending = pending }
            if pending.isEmpty { return }
            if ContinuousClock.now >= deadline {
                timeouts.increment()
                logger.warning("rollout step not acknowledged in time; going on", metadata: [
                    "step": "\(step)", "timeout": "\(stepTimeout)", "proxies": "\(pending.prefix(10).joined(separator: ", "))", "count": "\(pending.count)",
                ])
                return
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }
}

/// Runs the rollout stage as a service.
struct MTLSRolloutService: Service {
    let stage: MTLSRolloutStage

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await stage.run()
        }
    }
}
