internal import Synchronization

/// Where the CA draws the randomness of serial numbers and signatures from: the system's
/// generator, or (tests) a fixed sequence. Injected, as the clock is.
public struct RandomSource: RandomNumberGenerator, Sendable {
    private let draw: @Sendable () -> UInt64

    /// A source drawing from `draw`.
    public init(_ draw: @escaping @Sendable () -> UInt64) {
        self.draw = draw
    }

    /// The system's cryptographically secure generator.
    public static let system = RandomSource {
        var generator = SystemRandomNumberGenerator()
        return generator.next()
    }

    /// A reproducible sequence from `seed` (SplitMix64), for tests only.
    public static func seeded(_ seed: UInt64) -> RandomSource {
        let state = Mutex(seed)
        return RandomSource {
            state.withLock { value in
                value &+= 0x9E37_79B9_7F4A_7C15
                var mixed = value
                mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
                mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
                return mixed ^ (mixed >> 31)
            }
        }
    }

    public mutating func next() -> UInt64 { draw() }
}
