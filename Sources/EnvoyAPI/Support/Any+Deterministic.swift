public import SwiftProtobuf
import Foundation

extension Google_Protobuf_Any {
    /// Packs `message` with deterministic serialization (map entries in key order), so that the
    /// same configuration always gives the same bytes and therefore the same content hash.
    public init(deterministic message: some SwiftProtobuf.Message) {
        self.init()
        typeURL = "type.googleapis.com/" + type(of: message).protoMessageName
        value = Data(message.deterministicBytes)
    }
}

extension SwiftProtobuf.Message {
    /// The wire form with map entries in key order.
    public var deterministicBytes: [UInt8] {
        var options = BinaryEncodingOptions()
        options.useDeterministicOrdering = true
        // Envoy API messages have no required fields, so encoding cannot fail.
        return (try? serializedBytes(options: options)) ?? []
    }
}
