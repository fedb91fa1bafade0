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
        var apiResources: [ResourceKey: MeshResource] = [:]
        var mesh = MeshTelemetry.default
        var revision: UInt64 = 0
        var lastRejection: ConfigLoadError?
        var rejections: Int = 0
        var referenceWarnings: [ResourceKey: [SchemaError]] = [:]
        var jwks: [String: String] = [:]
        var health: [ServiceRegistry.WorkloadID: WorkloadHealth] = [:]
    }

    /// Where snapshots go.
    public let publisher: SnapshotPublisher
    /// Mesh-wide settings every snapshot carries.
    public let settings: MeshSettings
    private let state = Mutex(State())
    /// Where resources applied through the API are kept (`nil`: the API cannot change the mesh).
    public let resourceStore: (any ResourceStore)?
    private let logger: Logger
    private let rejected: Counter
    private let accepted: Counter
    private let unresolved: Gauge
    private let apiRejected: [String: Counter]
    private let credentialCheck: CredentialCheck?

    /// Checks a Secret's material with cryptography (the PEM blocks parse, the key matches the
    /// certificate), returning its problems by field path. Injected: this module parses no
    /// certificates.
    public typealias CredentialCheck = @Sendable (CredentialSecret) -> [SchemaError]

    /// A store publishing to `publisher`.
    public init(
        settings: MeshSettings = MeshSettings(), publisher: SnapshotPublisher = SnapshotPublisher(), resourceStore: (any ResourceStore)? = nil,
        credentialCheck: CredentialCheck? = nil, logger: Logger, metrics: any MetricsFactory
    ) {
        self.credentialCheck = credentialCheck
        self.settings = settings
        self.resourceStore = resourceStore
        self.publisher = publisher
        self.logger = logger
        rejected = Counter(label: "meshd_config_rejected_total", dimensions: [], factory: metrics)
        accepted = Counter(label: "meshd_config_applied_total", dimensions: [], factory: metrics)
        unresolved = Gauge(label: "meshd_config_unresolved_references", dimensions: [], factory: metrics)
        apiRejected = Dictionary(uniqueKeysWithValues: Self.apiRejectionReasons.map {
            ($0, Counter(label: "meshd_config_api_rejected_total", dimensions: [("reason", $0)], factory: metrics))
        })
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

    /// Where a served resource comes from.
    public enum Source: Hashable, Sendable, CustomStringConvertible {
        /// A file of the config directory (read-only through the API).
        case file(String)
        /// The admin API (kept in the resource store).
        case api

        public var description: String {
            switch self {
            case .file(let origin): "file \(origin)"
            case .api: "api"
            }
        }
    }

    /// The resources applied through the API (kept in the resource store), sorted by key.
    public var storedResources: [MeshResource] {
        state.withLock { state in state.apiResources.keys.sorted().map { state.apiResources[$0]! } }
    }

    /// The resource `key` as applied through the API, if it was.
    public func storedResource(_ key: ResourceKey) -> MeshResource? {
        state.withLock { $0.apiResources[key] }
    }

    /// Where the served resource `key` comes from, if it is served.
    public func source(of key: ResourceKey) -> Source? {
        state.withLock { state in
            if let file = state.fileResources.first(where: { $0.resource.key == key }) { return .file(file.origin) }
            return state.apiResources[key] == nil ? nil : .api
        }
    }

    /// Loads the resources the API applied before (at start, before the first file load). They
    /// pass the same checks as a new change: in FIPS mode, a Secret or Gateway stored before
    /// `--fips` was turned on with something not approved stops the start, naming it.
    public func loadStoredResources() throws(ResourceChangeError) {
        guard let resourceStore else { return }
        let stored = try resourceStore.load()
        for resource in stored {
            guard let problem = materialProblems(resource).first else { continue }
            let fix = settings.fips ? "; start meshd without --fips and replace or delete it (meshctl apply, meshctl delete)" : ""
            throw .invalid("\(resource.key), stored through the API: \(problem)\(fix)", field: problem.path.description)
        }
        state.withLock { state in
            state.apiResources = Dictionary(uniqueKeysWithValues: stored.map { ($0.key, $0) })
        }
    }

    /// Applies a change made through the API: checked against the config directory's resources
    /// (read-only here), written to the resource store, then served. With `dryRun` nothing is
    /// written or served; the result is what would be stored.
    @discardableResult
    public func applyAPI(_ change: ResourceChange, dryRun: Bool = false) throws(ResourceChangeError) -> MeshResource? {
        guard let resourceStore else { throw .storage("this meshd has no resource store") }
        if case .file(let origin)? = source(of: change.key) {
            throw .conflict("\(change.key) comes from the config directory (\(origin)) and is read-only through the API; edit the file instead")
        }
        if case .create(let resource) = change { try checkMaterial(resource) }
        if case .replace(let resource, _) = change { try checkMaterial(resource) }
        if dryRun {
            let current = try state.withLock { state throws(ResourceChangeError) -> MeshResource? in
                try Self.checkCredentials(change, in: state)
                return state.apiResources[change.key]
            }
            return try change.checked(against: current, version: Int64(current?.metadata.resourceVersion ?? "0").map { $0 + 1 } ?? 1)
        }
        let (next, stored) = try state.withLock { state throws(ResourceChangeError) -> (MeshSnapshot, MeshResource?) in
            try Self.checkCredentials(change, in: state)
            let stored = try resourceStore.apply(change)
            state.apiResources[change.key] = stored
            state.revision += 1
            return (self.snapshot(of: state), stored)
        }
        logger.info("configuration changed through the API", metadata: ["resource": "\(change.key)", "revision": "\(next.revision)"])
        publish(next)
        return stored
    }

    /// What one resource may not hold beyond its own validation: a Secret whose material is
    /// wrong (checked with cryptography), and in FIPS mode TLS parameters that are not approved.
    private func materialProblems(_ resource: MeshResource) -> [SchemaError] {
        switch resource.spec {
        case .secret(let secret): credentialCheck?(secret) ?? []
        case .gateway(let gateway) where settings.fips: FIPSPolicy.problems(of: gateway, at: FieldPath().appending("spec"))
        case .requestAuthentication(let policy): settings.problems(of: policy, at: FieldPath().appending("spec"))
        default: []
        }
    }

    private func checkMaterial(_ resource: MeshResource) throws(ResourceChangeError) {
        guard let problem = materialProblems(resource).first else { return }
        throw .invalid("\(resource.key): \(problem)", field: problem.path.description)
    }

    /// Refuses an API change that leaves a Gateway naming a credential no Secret holds: the
    /// Gateway itself (invalid), or a Secret it needs, or a gateway workload in a namespace
    /// without the Secret (conflict).
    private static func checkCredentials(_ change: ResourceChange, in state: State) throws(ResourceChangeError) {
        guard [.gateway, .secret, .workloadEntry].contains(change.key.kind) else { return }
        var resources = served(state)
        let before = GatewayCredentials.problems(in: resources)
        switch change {
        case .create(let resource), .replace(let resource, _): resources[resource.key] = resource
        case .delete(let key, _): resources[key] = nil
        }
        guard let (key, problem) = newProblem(GatewayCredentials.problems(in: resources), since: before) else { return }
        if key == change.key { throw .invalid("\(key): \(problem)", field: problem.path.description) }
        throw .conflict("\(change.key): this change would leave \(key) without its credential: \(problem)")
    }

    /// The first problem in `after` that `before` did not have.
    private static func newProblem(_ after: [ResourceKey: [SchemaError]], since before: [ResourceKey: [SchemaError]]) -> (ResourceKey, SchemaError)? {
        for key in after.keys.sorted() {
            if let problem = after[key]!.first(where: { !(before[key] ?? []).contains($0) }) { return (key, problem) }
        }
        return nil
    }

    private static func served(_ state: State, files: [SourcedResource]? = nil) -> [ResourceKey: MeshResource] {
        var resources = state.apiResources
        for file in files ?? state.fileResources { resources[file.resource.key] = file.resource }
        return resources
    }

    /// Why `files` cannot be served: a Secret whose material is wrong, or a Gateway left naming
    /// a credential no Secret holds.
    private func credentialProblem(files: [SourcedResource], state: State) -> ConfigLoadError? {
        for file in files {
            guard let problem = materialProblems(file.resource).first else { continue }
            return ConfigLoadError(source: file.source, document: file.document, item: file.item, resource: file.resource.key.description, path: problem.path.description, reason: problem.reason)
        }
        let before = GatewayCredentials.problems(in: Self.served(state))
        guard let (key, problem) = Self.newProblem(GatewayCredentials.problems(in: Self.served(state, files: files)), since: before) else { return nil }
        if let file = files.first(where: { $0.resource.key == key }) {
            return ConfigLoadError(source: file.source, document: file.document, item: file.item, resource: key.description, path: problem.path.description, reason: problem.reason)
        }
        return ConfigLoadError(source: "config directory", resource: key.description, path: problem.path.description, reason: "\(problem.reason) (this Gateway was applied through the API; the files no longer hold the Secret it needs)")
    }

    /// Replaces the file-based resources with the result of loading the config directory.
    ///
    /// - Returns: `true` if a new snapshot was published.
    @discardableResult
    public func applyFiles(_ result: Result<[SourcedResource], ConfigLoadError>, mesh: MeshTelemetry = .default) -> Bool {
        switch result {
        case .failure(let error):
            reject(error)
            return false
        case .success(let resources):
            let outcome: Result<MeshSnapshot?, ConfigLoadError> = state.withLock { state in
                if let clash = resources.first(where: { state.apiResources[$0.resource.key] != nil }) {
                    return .failure(ConfigLoadError(
                        source: clash.source, document: clash.document, item: clash.item, resource: clash.resource.key.description,
                        reason: "also applied through the API; delete it there (meshctl delete) before defining it in a file"))
                }
                if let problem = self.credentialProblem(files: resources, state: state) { return .failure(problem) }
                let unchanged = state.fileResources.map(\.resource) == resources.map(\.resource) && state.mesh == mesh
                state.fileResources = resources
                state.mesh = mesh
                state.lastRejection = nil
                if unchanged && state.revision > 0 { return .success(nil) }
                state.revision += 1
                return .success(self.snapshot(of: state))
            }
            switch outcome {
            case .failure(let error):
                reject(error)
                return false
            case .success(nil):
                return false
            case .success(let snapshot?):
                publish(snapshot)
                return true
            }
        }
    }

    /// The files' resources in their order, then the API's by key.
    private func snapshot(of state: State) -> MeshSnapshot {
        MeshSnapshot(
            revision: state.revision, settings: settings, mesh: state.mesh,
            resources: state.fileResources.map(\.resource) + state.apiResources.keys.sorted().map { state.apiResources[$0]! }, jwks: state.jwks,
            health: state.health)
    }

    /// Records what the proxy of `workload` reports of its probe (`nil`: forget the report, when
    /// the workload is gone); a new revision is published when its readiness changed.
    ///
    /// - Returns: `true` if a new snapshot was published.
    @discardableResult
    public func reportHealth(_ workload: ServiceRegistry.WorkloadID, _ report: WorkloadHealth?) -> Bool {
        let snapshot: MeshSnapshot? = state.withLock { state in
            guard state.health[workload] != report else { return nil }
            state.health[workload] = report
            state.revision += 1
            return self.snapshot(of: state)
        }
        guard let snapshot else { return false }
        logger.info("workload health changed", metadata: [
            "workload": "\(workload)", "healthy": "\(report.map { "\($0.healthy)" } ?? "forgotten")", "reason": "\(report?.message ?? "")",
        ])
        publish(snapshot)
        return true
    }

    /// Starts from probe reports kept from an earlier run, before the first snapshot is published
    /// (nothing is published now).
    public func restoreHealth(_ reports: [ServiceRegistry.WorkloadID: WorkloadHealth]) {
        state.withLock { $0.health = reports }
    }

    /// The probe report of every workload that sent one.
    public var health: [ServiceRegistry.WorkloadID: WorkloadHealth] {
        state.withLock { $0.health }
    }

    /// Starts from key sets kept from an earlier run, before the first snapshot is published
    /// (nothing is published now).
    public func restoreJWKS(_ keys: [String: String]) {
        state.withLock { $0.jwks = keys }
    }

    /// Serves `keys` as the key sets of RequestAuthentications' `jwksUri`s (by URI) from now on;
    /// a new revision is published when they changed.
    ///
    /// - Returns: `true` if a new snapshot was published.
    @discardableResult
    public func updateJWKS(_ keys: [String: String]) -> Bool {
        let snapshot: MeshSnapshot? = state.withLock { state in
            guard state.jwks != keys else { return nil }
            state.jwks = keys
            state.revision += 1
            return self.snapshot(of: state)
        }
        guard let snapshot else { return false }
        logger.info("JSON Web Key Sets changed", metadata: ["uris": "\(keys.keys.sorted().joined(separator: ","))"])
        publish(snapshot)
        return true
    }

    private func publish(_ snapshot: MeshSnapshot) {
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
    }

    /// The reasons `meshd_config_api_rejected_total` counts.
    public static let apiRejectionReasons = ["invalid", "conflict", "not_found", "storage"]

    /// Records a change through the API that was refused (counted by reason and logged; nothing
    /// changed). Dry runs are not recorded.
    public func recordAPIRejection(of resource: String, reason: String, message: String) {
        apiRejected[reason]?.increment()
        logger.warning("change through the API refused; nothing changed", metadata: ["resource": "\(resource)", "reason": "\(reason)", "error": "\(message)"])
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
