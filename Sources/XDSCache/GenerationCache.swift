public import EnvoyAPI
internal import Synchronization

/// Shares computed values between callers whose inputs are identical, across mesh revisions.
///
/// The key is everything the computation reads (for a proxy's whole configuration: mesh
/// revision + workload; for one resource: the values that resource is built from); callers with
/// equal keys get the very same value, computed once. The generation increases with the mesh
/// revision: when a newer one is first used, entries not used in it or the one before are
/// dropped, so the cache holds what the live configurations use.
public final class GenerationCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private struct State {
        var generation: UInt64 = 0
        var entries: [Key: Entry] = [:]
        var hits = 0
        var misses = 0
    }

    private struct Entry {
        var used: UInt64
        var value: Value
    }

    private let state = Mutex(State())

    /// An empty cache.
    public init() {}

    /// The value for `key`, computing it with `compute` when nobody asked before.
    ///
    /// - Parameter generation: increases with the mesh revision; entries unused for two
    ///   generations are evicted.
    public func value<E: Error>(for key: Key, generation: UInt64, compute: () throws(E) -> Value) throws(E) -> Value {
        if let hit = state.withLock({ state -> Value? in
            if generation > state.generation {
                state.generation = generation
                state.entries = state.entries.filter { $0.value.used + 1 >= generation }
            }
            guard var entry = state.entries[key] else {
                state.misses += 1
                return nil
            }
            state.hits += 1
            if entry.used < generation {
                entry.used = generation
                state.entries[key] = entry
            }
            return entry.value
        }) {
            return hit
        }
        let value = try compute()
        state.withLock { state in
            state.entries[key] = Entry(used: max(generation, state.entries[key]?.used ?? 0), value: value)
        }
        return value
    }

    /// How many lookups were answered from the cache, how many computed, and how many entries it holds.
    public var statistics: (hits: Int, misses: Int, entries: Int) {
        state.withLock { ($0.hits, $0.misses, $0.entries.count) }
    }
}

/// Proxies' whole configurations, shared between proxies whose keys are equal.
public typealias SharedResourceCache<Key: Hashable & Sendable> = GenerationCache<Key, XDSResourceSet>

extension GenerationCache where Value == XDSResourceSet {
    /// The resources for `key`, computing them with `compute` when no proxy asked before.
    public func resources<E: Error>(for key: Key, generation: UInt64, compute: () throws(E) -> XDSResourceSet) throws(E) -> XDSResourceSet {
        try value(for: key, generation: generation, compute: compute)
    }
}
