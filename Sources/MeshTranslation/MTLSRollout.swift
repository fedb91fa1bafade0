public import MeshModel

/// Rolls a change of mTLS mode out across proxies in an order that never fails a request, as a
/// pure state machine: a server accepts what clients will send before they are told to send it,
/// and stops accepting what they sent only once they have moved.
///
/// Per workload port (the server side) it holds what is served: what the sidecar accepts and
/// whether clients send it mTLS. Each ``advance()`` moves every port one step towards what the
/// configuration says and names the proxies that must acknowledge the step before the next:
/// 1. the server widens to take both the old and the new client behaviour (PERMISSIVE) — wait
///    for the server's proxies;
/// 2. clients switch (DISABLE ↔ mTLS) — wait for every other proxy;
/// 3. the server narrows to the configured mode — nothing to wait for.
/// DISABLE → STRICT takes all three steps; PERMISSIVE → STRICT only the last; a port that
/// appears is served as configured at once. Ports are the endpoint ports of the services that
/// select a workload with a sidecar (ingress-only ports switch at once: no mesh client uses them).
public struct MTLSRollout: Sendable, Equatable {
    public typealias Key = MTLSStaging.Key
    public typealias Entry = MTLSStaging.Entry

    /// The proxies that must acknowledge a step before the next one.
    public struct Wait: Sendable, Equatable {
        /// Every proxy of these workloads (servers that widened).
        public var servers: Set<ServiceRegistry.WorkloadID> = []
        /// Every proxy not of these workloads (clients that switched).
        public var clientsOf: Set<ServiceRegistry.WorkloadID> = []
        /// Nothing to wait for.
        public var isEmpty: Bool { servers.isEmpty && clientsOf.isEmpty }

        /// A wait for the proxies of `servers` and for every proxy not of `clientsOf`.
        public init(servers: Set<ServiceRegistry.WorkloadID> = [], clientsOf: Set<ServiceRegistry.WorkloadID> = []) {
            self.servers = servers
            self.clientsOf = clientsOf
        }
    }

    /// What is served, per port.
    public private(set) var served: [Key: Entry] = [:]
    /// What the configuration says, per port.
    public private(set) var target: [Key: Entry] = [:]

    /// A rollout with nothing served yet.
    public init() {}

    /// The modes `snapshot` configures on every port a mesh client reaches a sidecar on.
    public static func configured(_ snapshot: MeshSnapshot) -> [Key: Entry] {
        var out: [Key: Entry] = [:]
        var policies: [ServiceRegistry.WorkloadID: PeerAuthenticationPolicy] = [:]
        for service in snapshot.registry.services {
            for instance in snapshot.registry.instances(of: service) where instance.hasSidecar {
                let id = ServiceRegistry.WorkloadID(namespace: instance.namespace, name: instance.name)
                guard snapshot.registry.workload(id) != nil else { continue }
                let policy = policies[id] ?? PeerAuthenticationPolicy(workload: instance, snapshot: snapshot)
                policies[id] = policy
                for port in service.ports {
                    let number = instance.endpointPort(for: port)
                    out[Key(workload: id, port: number)] = Entry(configured: policy.mode(port: number))
                }
            }
        }
        return out
    }

    /// Takes a new configuration: new ports are served as configured at once, ports that are
    /// gone are forgotten, changed ports keep what is served until ``advance()``.
    public mutating func retarget(_ configured: [Key: Entry]) {
        target = configured
        served = served.filter { configured[$0.key] != nil }
        for (key, entry) in configured where served[key] == nil { served[key] = entry }
    }

    /// Whether everything is served as configured.
    public var isSettled: Bool { served == target }

    /// What to serve now: the ports served otherwise than configured.
    public var staging: MTLSStaging {
        MTLSStaging(served.filter { target[$0.key] != $0.value })
    }

    /// Moves every port one step; returns whom to wait for before the next step.
    public mutating func advance() -> Wait {
        var wait = Wait()
        for key in served.keys.sorted() {
            guard let current = served[key], let goal = target[key], current != goal else { continue }
            var next = current
            if current.clientsUseTLS != goal.clientsUseTLS {
                if current.accept.accepts(tls: goal.clientsUseTLS) {
                    next.clientsUseTLS = goal.clientsUseTLS
                    wait.clientsOf.insert(key.workload)
                } else {
                    next.accept = current.accept.union(goal.accept)
                    wait.servers.insert(key.workload)
                }
            } else {
                next.accept = goal.accept
            }
            served[key] = next
        }
        return wait
    }
}
