public import EnvoyAPI
internal import Synchronization

/// Shares computed proxy configuration between proxies whose inputs are identical.
///
/// The key is everything translation reads for a proxy (for example: mesh revision + workload);
/// proxies with equal keys get the very same ``XDSResourceSet`` value, computed once. Entries of
/// older generations are dropped when a newer generation is first used, so the cache holds at most
/// the live generation plus the one being replaced.
public final class SharedResourceCache<Key: Hashable & Sendable>: Sendable {
    private struct State {
        var generation: UInt64 = 0
        var entries: [Key: Entry] = [:]
        var hits = 0
        var misses = 0
    }

    private struct Entry {
        var generation: UInt64
        var value: XDSResourceSet
    }

    private let state = Mutex(State())

    /// An empty cache.
    public init() {}

    /// The resources for `key`, computing them with `compute` when no proxy asked before.
    ///
    /// - Parameter generation: increases with the mesh revision; older entries are evicted.
    public func resources<E: Error>(for key: Key, generation: UInt64, compute: () throws(E) -> XDSResourceSet) throws(E) -> XDSResourceSet {
        if let hit = state.withLock({ state -> XDSResourceSet? in
            if generation > state.generation {
                state.generation = generation
                state.entries = state.entries.filter { $0.value.generation >= generation - 1 }
            }
            if let entry = state.entries[key] {
                state.hits += 1
                return entry.value
            }
            state.misses += 1
            return nil
        }) {
            return hit
        }
        let value = try compute()
        state.withLock { $0.entries[key] = Entry(generation: generation, value: value) }
        return value
    }

    /// How many lookups were answered from the cache and how many computed.
    public var statistics: (hits: Int, misses: Int, entries: Int) {
        state.withLock { ($0.hits, $0.misses, $0.entries.count) }
    }
}
