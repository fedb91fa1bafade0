import Testing
import XDSCache

@Suite("GenerationCache: computed once per key, kept while used, dropped two generations after its last use")
struct GenerationCacheTests {
    @Test("equal keys share one computation; an entry used in every generation stays; one unused for two generations is computed again")
    func eviction() {
        let cache = GenerationCache<String, Int>()
        var computed = 0
        func value(_ key: String, _ generation: UInt64) -> Int {
            cache.value(for: key, generation: generation) {
                computed += 1
                return computed
            }
        }
        #expect(value("kept", 1) == 1)
        #expect(value("dropped", 1) == 2)
        #expect(value("kept", 1) == 1 && computed == 2, "a second lookup is a hit")
        #expect(value("kept", 2) == 1)
        #expect(value("kept", 3) == 1, "used in generation 2: still there in 3")
        #expect(cache.statistics.entries == 1, "'dropped' was last used in generation 1")
        #expect(value("dropped", 3) == 3 && computed == 3)
        #expect(cache.statistics.hits == 3 && cache.statistics.misses == 3)
    }
}
