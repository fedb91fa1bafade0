public import SwiftProtobuf
internal import Synchronization

/// Envoy's JSON form of resources meshd made (what `meshctl proxy-config` prints): every message
/// type meshd packs into an `Any` is registered as it is packed, so nested `typed_config`s print
/// as objects with their `@type`.
public enum EnvoyJSON {
    private static let registered = Mutex<Set<String>>([])

    /// Makes `type` printable inside an `Any`.
    public static func register(_ type: any SwiftProtobuf.Message.Type) {
        let isNew = registered.withLock { $0.insert(type.protoMessageName).inserted }
        if isNew { _ = Google_Protobuf_Any.register(messageType: type) }
    }

    /// The JSON of a packed resource (`{"@type": ..., ...}`), with proto field names.
    public static func string(_ any: Google_Protobuf_Any) throws -> String {
        var options = JSONEncodingOptions()
        options.preserveProtoFieldNames = true
        return try any.jsonString(options: options)
    }
}
