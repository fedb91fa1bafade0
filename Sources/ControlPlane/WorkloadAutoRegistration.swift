internal import Foundation
internal import GRPCCore
internal import Logging
public import MeshConfig
public import MeshModel
internal import Synchronization
internal import CertificateAuthority
internal import ServiceLifecycle

extension AutoRegistration {
    /// The WorkloadEntry Istio makes for a proxy of `group`: the group's template with the
    /// proxy's address; labels from the template, then the group's metadata, then the proxy's
    /// own (`LABELS`; later wins); the proxy's locality when it has one; the group's metadata
    /// annotations plus the auto-registration ones.
    static func entry(for identity: NodeIdentity, group: Configured<WorkloadGroup>, now: Date, controller: String) -> MeshResource {
        var spec = group.spec.template
        spec.address = identity.address
        var labels = spec.labels ?? [:]
        labels.merge(group.spec.metadata?.labels ?? [:]) { $1 }
        labels.merge(identity.labels) { $1 }
        spec.labels = labels.isEmpty ? nil : labels
        if let locality = identity.locality { spec.locality = locality }
        var annotations = group.spec.metadata?.annotations ?? [:]
        annotations[groupAnnotation] = group.metadata.name
        annotations[controllerAnnotation] = controller
        annotations[connectedAtAnnotation] = timestamp(now)
        var metadata = ObjectMeta(name: identity.workload.name, namespace: identity.workload.namespace, labels: labels, annotations: annotations)
        metadata.passthrough["ownerReferences"] = .array([
            .object(ConfigObject([
                ("apiVersion", .string(ResourceKind.workloadGroup.preferredAPIVersion)), ("kind", .string(ResourceKind.workloadGroup.rawValue)),
                ("name", .string(group.metadata.name)), ("controller", .bool(true)),
            ])),
        ])
        return MeshResource(metadata: metadata, spec: .workloadEntry(spec))
    }

    /// RFC 3339 with fractional seconds, in UTC (Istio writes RFC 3339 with nanoseconds).
    static func timestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }

    /// Reads a timestamp written by ``timestamp(_:)`` or by Istio (fraction optional).
    static func parseTimestamp(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        if let date = formatter.date(from: text) { return date }
        // Nanoseconds: keep the first three digits of the fraction.
        guard let dot = text.firstIndex(of: "."), let zone = text[dot...].firstIndex(where: { $0 == "Z" || $0 == "+" || $0 == "-" }) else { return nil }
        let fraction = text[text.index(after: dot)..<zone].prefix(3)
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: String(text[..<dot]) + "." + fraction + text[zone...])
    }
}

/// Which auto-registered entries have proxies connected, and since when the others have none:
/// the decisions of auto-registration, without the store. Pure; time is passed in.
struct AutoRegistrationLedger: Sendable, Equatable {
    /// Open streams per entry.
    private(set) var connections: [ServiceRegistry.WorkloadID: Int] = [:]
    /// When the last stream of an entry closed (entries with none open).
    private(set) var disconnectedAt: [ServiceRegistry.WorkloadID: Date] = [:]

    /// A stream of `entry` opened.
    mutating func connected(_ entry: ServiceRegistry.WorkloadID) {
        connections[entry, default: 0] += 1
        disconnectedAt[entry] = nil
    }

    /// A stream of `entry` closed at `now`; returns whether it was the last one.
    mutating func disconnected(_ entry: ServiceRegistry.WorkloadID, at now: Date) -> Bool {
        guard let open = connections[entry] else { return false }
        if open > 1 {
            connections[entry] = open - 1
            return false
        }
        connections[entry] = nil
        disconnectedAt[entry] = now
        return true
    }

    /// An entry found in the store with no stream open to this meshd (at start, or one whose
    /// proxy connected to a meshd before it): it goes `grace` after `since`, unless a stream opens.
    mutating func unconnected(_ entry: ServiceRegistry.WorkloadID, since: Date) {
        guard connections[entry] == nil else { return }
        disconnectedAt[entry] = min(disconnectedAt[entry] ?? since, since)
    }

    /// The entries whose grace period is over at `now`, sorted.
    func due(at now: Date, grace: TimeInterval) -> [ServiceRegistry.WorkloadID] {
        disconnectedAt.filter { now.timeIntervalSince($0.value) >= grace }.map(\.key).sorted()
    }

    /// The entry is gone from the store.
    mutating func removed(_ entry: ServiceRegistry.WorkloadID) {
        disconnectedAt[entry] = nil
    }
}

/// Istio's WorkloadGroup auto-registration: makes the WorkloadEntry of a proxy that registers into
/// a group, keeps it while the proxy is connected, marks it disconnected when the proxy's last
/// stream closes and removes it after the grace period (Istio's PILOT_WORKLOAD_ENTRY_GRACE_PERIOD,
/// 10 s by default). Entries are written through the store (SQLite), so they survive a restart;
/// at start every stored one counts as disconnected then, so the proxies that come back keep
/// theirs and the others go.
public final class WorkloadAutoRegistrar: Sendable {
    private let store: ConfigStore
    private let grace: TimeInterval
    private let clock: @Sendable () -> Date
    private let logger: Logger
    private let ledger = Mutex(AutoRegistrationLedger())
    /// Where the probe reports are kept (0600), so that a restarted meshd serves what the agents
    /// last reported until they report again (nil: not kept).
    private let healthPath: String?

    init(store: ConfigStore, grace: TimeInterval, healthPath: String? = nil, clock: @escaping @Sendable () -> Date, logger: Logger) {
        self.store = store
        self.grace = grace
        self.healthPath = healthPath
        self.clock = clock
        self.logger = logger
        if let healthPath, let data = FileManager.default.contents(atPath: healthPath) {
            do {
                let kept = try JSONDecoder().decode([String: WorkloadHealth].self, from: data)
                store.restoreHealth(Dictionary(uniqueKeysWithValues: kept.compactMap { key, report in
                    let parts = key.split(separator: "/")
                    return parts.count == 2 ? (ServiceRegistry.WorkloadID(namespace: String(parts[0]), name: String(parts[1])), report) : nil
                }))
            } catch {
                logger.warning("the kept probe reports cannot be read; workloads with probes wait for their next report", metadata: ["file": "\(healthPath)", "error": "\(error)"])
            }
        }
        let now = clock()
        ledger.withLock { ledger in
            for resource in store.storedResources where resource.autoRegistrationGroup != nil {
                let id = ServiceRegistry.WorkloadID(namespace: resource.metadata.namespace, name: resource.metadata.name)
                let since = resource.metadata.annotations[AutoRegistration.disconnectedAtAnnotation].flatMap(AutoRegistration.parseTimestamp) ?? now
                ledger.unconnected(id, since: since)
            }
        }
    }

    /// Records a probe report of an auto-registered workload; false (ignored) for any other.
    func report(_ workload: ServiceRegistry.WorkloadID, _ health: WorkloadHealth) -> Bool {
        let key = ResourceKey(kind: .workloadEntry, namespace: workload.namespace, name: workload.name)
        guard store.storedResource(key)?.autoRegistrationGroup != nil else { return false }
        if store.reportHealth(workload, health) { keepHealth() }
        return true
    }

    /// Writes every probe report to ``healthPath``.
    private func keepHealth() {
        guard let healthPath else { return }
        let reports = Dictionary(uniqueKeysWithValues: store.health.map { ($0.key.description, $0.value) })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        do {
            try AtomicFile.write(Array(try encoder.encode(reports)), to: healthPath, mode: 0o600)
        } catch {
            logger.warning("cannot keep the probe reports", metadata: ["file": "\(healthPath)", "error": "\(error)"])
        }
    }

    /// Writes the entry of a newly registering proxy (or brings back one removed meanwhile).
    /// Returns the store's revision that serves it.
    func register(_ entry: MeshResource) throws(RPCError) -> UInt64 {
        let id = ServiceRegistry.WorkloadID(namespace: entry.metadata.namespace, name: entry.metadata.name)
        do throws(ResourceChangeError) {
            try store.applyAPI(.create(entry))
            logger.info("workload registered", metadata: ["entry": "\(id)", "group": "\(entry.autoRegistrationGroup ?? "")"])
        } catch .conflict {
            // Another stream of the same proxy made it first.
        } catch {
            logger.error("cannot register the workload", metadata: ["entry": "\(id)", "error": "\(error)"])
            throw RPCError(code: .unavailable, message: "meshd cannot write the WorkloadEntry of this proxy right now (\(error)); retry")
        }
        return store.revision
    }

    /// A stream of the auto-registered entry `entry` opened. When the stored entry says it was
    /// disconnected, it is written again as connected.
    func connected(_ entry: ServiceRegistry.WorkloadID) {
        let key = ResourceKey(kind: .workloadEntry, namespace: entry.namespace, name: entry.name)
        ledger.withLock { $0.connected(entry) }
        guard var stored = store.storedResource(key), stored.metadata.annotations[AutoRegistration.disconnectedAtAnnotation] != nil else { return }
        stored.metadata.annotations[AutoRegistration.disconnectedAtAnnotation] = nil
        stored.metadata.annotations[AutoRegistration.connectedAtAnnotation] = AutoRegistration.timestamp(clock())
        write(.replace(stored, expectedVersion: stored.metadata.resourceVersion), entry: entry, action: "reconnected")
    }

    /// A stream of `entry` closed; after its last one the stored entry is marked disconnected.
    func disconnected(_ entry: ServiceRegistry.WorkloadID) {
        let now = clock()
        guard ledger.withLock({ $0.disconnected(entry, at: now) }) else { return }
        let key = ResourceKey(kind: .workloadEntry, namespace: entry.namespace, name: entry.name)
        guard var stored = store.storedResource(key) else { return }
        stored.metadata.annotations[AutoRegistration.disconnectedAtAnnotation] = AutoRegistration.timestamp(now)
        write(.replace(stored, expectedVersion: stored.metadata.resourceVersion), entry: entry, action: "disconnected")
    }

    /// Removes the entries whose proxies stayed away for the grace period; returns them.
    @discardableResult
    func sweep() -> [ServiceRegistry.WorkloadID] {
        let now = clock()
        // Decided and removed under the ledger's lock, so that a proxy connecting meanwhile
        // either keeps its entry or finds it gone (and registers again).
        return ledger.withLock { ledger in
            let due = ledger.due(at: now, grace: grace)
            for entry in due {
                let key = ResourceKey(kind: .workloadEntry, namespace: entry.namespace, name: entry.name)
                if store.storedResource(key) != nil {
                    do throws(ResourceChangeError) {
                        try store.applyAPI(.delete(key, expectedVersion: nil))
                    } catch .notFound {
                    } catch {
                        logger.error("cannot remove the WorkloadEntry of a proxy gone for the grace period; retrying", metadata: ["entry": "\(entry)", "error": "\(error)"])
                        continue
                    }
                    logger.info("workload unregistered after its grace period", metadata: ["entry": "\(entry)", "grace": "\(grace)s"])
                }
                if store.reportHealth(entry, nil) { keepHealth() }
                ledger.removed(entry)
            }
            return due
        }
    }

    private func write(_ change: ResourceChange, entry: ServiceRegistry.WorkloadID, action: String) {
        do throws(ResourceChangeError) {
            try store.applyAPI(change)
            logger.info("workload \(action)", metadata: ["entry": "\(entry)"])
        } catch {
            // The ledger decides removal; the annotation only tells users (and a restart) when.
            logger.warning("cannot record that a workload \(action)", metadata: ["entry": "\(entry)", "error": "\(error)"])
        }
    }
}

/// Removes the entries of auto-registered proxies gone for the grace period, every second.
struct AutoRegistrationSweep: Service {
    let registrar: WorkloadAutoRegistrar

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                if Task.isCancelled { break }
                registrar.sweep()
            }
        }
    }
}
