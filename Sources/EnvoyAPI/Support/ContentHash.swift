/// A stable 64-bit FNV-1a hash of bytes: the same input gives the same value in every process,
/// which makes it usable as an xDS resource version that survives restarts.
public struct ContentHash: Hashable, Sendable, CustomStringConvertible {
    /// The hash value.
    public private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    /// The hash of nothing.
    public init() {}

    /// The hash of `bytes`.
    public init(_ bytes: some Sequence<UInt8>) {
        combine(bytes)
    }

    /// Mixes `bytes` into the hash.
    public mutating func combine(_ bytes: some Sequence<UInt8>) {
        // Contiguous storage (Data, arrays, UTF-8 views) is hashed without per-byte iterator calls.
        if let done: Void = bytes.withContiguousStorageIfAvailable({ combine(buffer: UnsafeRawBufferPointer($0)) }) { return done }
        for byte in bytes {
            value ^= UInt64(byte)
            value &*= 0x0000_0100_0000_01b3
        }
    }

    /// Mixes raw bytes into the hash.
    public mutating func combine(buffer: UnsafeRawBufferPointer) {
        var value = self.value
        for byte in buffer {
            value ^= UInt64(byte)
            value &*= 0x0000_0100_0000_01b3
        }
        self.value = value
    }

    /// Mixes a string (its UTF-8 bytes and a terminator) into the hash.
    public mutating func combine(_ string: String) {
        combine(string.utf8)
        combine(CollectionOfOne(0xff))
    }

    /// Mixes another hash into this one.
    public mutating func combine(_ other: ContentHash) {
        withUnsafeBytes(of: other.value.littleEndian) { combine($0) }
    }

    /// Sixteen lowercase hex digits.
    public var description: String {
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
