public import XDSCache
public import EnvoyAPI

/// Translated resources kept across proxies and mesh revisions, each keyed by everything it is
/// built from: a resource is encoded once for every proxy whose inputs for it are equal, and
/// built again only when one of its inputs changed. Pass one memo to every translation
/// (``SidecarTranslator/translate(_:workload:memo:)``); it drops what the last two revisions did
/// not use.
public final class TranslationMemo: Sendable {
    let clusters = GenerationCache<ClusterInputs, XDSResource>()
    let loadAssignments = GenerationCache<LoadAssignmentInputs, XDSResource>()
    let routeConfigurations = GenerationCache<RouteInputs, XDSResource>()

    /// An empty memo.
    public init() {}

    /// Lookups answered from the memo, lookups that built a resource, and resources held.
    public var statistics: (hits: Int, misses: Int, entries: Int) {
        [clusters.statistics, loadAssignments.statistics, routeConfigurations.statistics].reduce((0, 0, 0)) { ($0.0 + $1.hits, $0.1 + $1.misses, $0.2 + $1.entries) }
    }
}

extension Optional where Wrapped == TranslationMemo {
    /// The resource for `inputs`: from the memo when there is one and it holds it, else built.
    func resource(_ inputs: ClusterInputs, generation: UInt64, build: () -> XDSResource) -> XDSResource {
        guard let memo = self else { return build() }
        return memo.clusters.value(for: inputs, generation: generation, compute: build)
    }

    /// The resource for `inputs`: from the memo when there is one and it holds it, else built.
    func resource(_ inputs: LoadAssignmentInputs, generation: UInt64, build: () -> XDSResource) -> XDSResource {
        guard let memo = self else { return build() }
        return memo.loadAssignments.value(for: inputs, generation: generation, compute: build)
    }

    /// The resource for `inputs`: from the memo when there is one and it holds it, else built.
    func resource(_ inputs: RouteInputs, generation: UInt64, build: () -> XDSResource) -> XDSResource {
        guard let memo = self else { return build() }
        return memo.routeConfigurations.value(for: inputs, generation: generation, compute: build)
    }
}
