public import MeshModel
public import Logging
public import Metrics
internal import Synchronization

/// Accepts configuration changes all-or-nothing and publishes the resulting snapshots.
///
/// A change that fails to load or validate is refused whole: the snapshot being served stays
/// exactly as it was, the reason is logged and counted (`meshd_config_rejected_total`) and kept as
/// ``lastRejection`` for status views.
public final class ConfigStore: Sendable {
    private struct State {
        var fileResources: [SourcedResource] = []
        var revision: UInt64 = 0
        var lastRejection: ConfigLoadError?
        var rejections: Int = 0
        var referenceWarnings: [ResourceKey: [SchemaError]] = [:]
    }

    /// Where snapshots go.
    public let publisher: SnapshotPublisher
    /// Mesh-wide settings every snapshot carries.
    public let settings: MeshSettings
    private let state = Mutex(State())
    private let logger: Logger
    private let rejected: Counter
    private let accepted: Counter
    private let unresolved: Gauge

    /// A store publishing to `publisher`.
    public init(settings: MeshSettings = MeshSettings(), publisher: SnapshotPublisher = SnapshotPublisher(), logger: Logger, metrics: any MetricsFactory) {
        self.settings = settings
        self.publisher = publisher
        self.logger = logger
        rejected = Counter(label: "meshd_config_rejected_total", dimensions: [], factory: metrics)
        accepted = Counter(label: "meshd_config_applied_total", dimensions: [], factory: metrics)
        unresolved = Gauge(label: "meshd_config_unresolved_references", dimensions: [], factory: metrics)
    }

    /// The most recent refused change, if any.
    public var lastRejection: ConfigLoadError? {
        state.withLock { $0.lastRejection }
    }

    /// References of the served configuration that resolve to nothing, by resource.
    public var referenceWarnings: [ResourceKey: [SchemaError]] {
        state.withLock { $0.referenceWarnings }
    }

    /// How many changes were refused since start.
    public var rejectionCount: Int {
        state.withLock { $0.rejections }
    }

    /// The revision being served.
    public var revision: UInt64 {
        state.withLock { $0.revision }
    }

    /// Replaces the file-based resources with the result of loading the config directory.
    ///
    /// - Returns: `true` if a new snapshot was published.
    @discardableResult
    public func applyFiles(_ result: Result<[SourcedResource], ConfigLoadError>) -> Bool {
        switch result {
        case .failure(let error):
            reject(error)
            return false
        case .success(let resources):
            let snapshot: MeshSnapshot? = state.withLock { state in
                let unchanged = state.fileResources.map(\.resource) == resources.map(\.resource)
                state.fileResources = resources
                state.lastRejection = nil
                if unchanged && state.revision > 0 { return nil }
                state.revision += 1
                return MeshSnapshot(revision: state.revision, settings: settings, resources: resources.map(\.resource))
            }
            guard let snapshot else { return false }
            accepted.increment()
            let warnings = ReferenceCheck.warnings(in: snapshot)
            state.withLock { $0.referenceWarnings = warnings }
            unresolved.record(warnings.values.reduce(0) { $0 + $1.count })
            for key in warnings.keys.sorted() {
                for problem in warnings[key]! {
                    logger.warning("unresolved reference (accepted, as Istio does; requests that use it fail)", metadata: [
                        "resource": "\(key)", "field": "\(problem.path)", "reason": "\(problem.reason)",
                    ])
                }
            }
            logger.info("configuration applied", metadata: [
                "revision": "\(snapshot.revision)", "resources": "\(snapshot.resources.count)",
            ])
            publisher.publish(snapshot)
            return true
        }
    }

    private func reject(_ error: ConfigLoadError) {
        state.withLock { state in
            state.lastRejection = error
            state.rejections += 1
        }
        rejected.increment()
        logger.error("configuration change rejected; still serving the previous configuration", metadata: [
            "error": "\(error)", "revision": "\(revision)",
        ])
    }
}
