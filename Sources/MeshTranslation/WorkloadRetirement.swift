public import MeshModel

/// Retires workloads removed from the configuration while their proxies are connected, as a pure
/// state machine, so that no request reaches a listener that is draining:
/// 1. the configuration without them is served to every other proxy, while their own proxies
///    are still translated from their last WorkloadEntry (``retiring``) — wait for every other
///    proxy to acknowledge it (clients have dropped their endpoints);
/// 2. their proxies are served without them (they lose their listeners).
/// A workload that comes back before step 2 is no longer retiring.
public struct WorkloadRetirement: Sendable, Equatable {
    /// What to do next.
    public enum Step: Sendable, Equatable {
        /// Wait until every proxy not of these workloads acknowledged what is served.
        case waitForClients(of: Set<ServiceRegistry.WorkloadID>)
        /// Serve these workloads' proxies without them (``retiring`` is now empty).
        case retire(Set<ServiceRegistry.WorkloadID>)
    }

    /// The workloads being retired, with the instance their proxies are still translated from.
    public private(set) var retiring: [ServiceRegistry.WorkloadID: WorkloadInstance] = [:]
    /// Those of `retiring` whose clients have been waited for.
    private var awaited: Set<ServiceRegistry.WorkloadID> = []

    /// Nothing retiring.
    public init() {}

    /// Whether nothing is being retired.
    public var isSettled: Bool { retiring.isEmpty }

    /// Takes a new configuration: workloads of `previous` that `next` lacks and that have a proxy
    /// in `connected` start retiring; retiring workloads that `next` has again stop.
    public mutating func retarget(previous: ServiceRegistry, next: ServiceRegistry, connected: Set<ServiceRegistry.WorkloadID>) {
        for id in connected where next.workload(id) == nil {
            if let instance = previous.workload(id) { retiring[id] = instance }
        }
        retiring = retiring.filter { next.workload($0.key) == nil }
        awaited.formIntersection(retiring.keys)
    }

    /// The next step, `nil` when nothing is retiring: first the wait for clients (again if a
    /// workload started retiring since), then the retirement.
    public mutating func advance() -> Step? {
        guard !retiring.isEmpty else { return nil }
        let ids = Set(retiring.keys)
        if !ids.isSubset(of: awaited) {
            awaited = ids
            return .waitForClients(of: ids)
        }
        retiring = [:]
        awaited = []
        return .retire(ids)
    }
}
