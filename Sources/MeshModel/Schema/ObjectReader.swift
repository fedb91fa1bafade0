/// Reads the fields of one Istio message from an object, strictly.
///
/// Construction checks the shape (an object), unknown keys and oneof conflicts; the accessors then
/// decode each field with its path.
public struct ObjectReader {
    private let object: ConfigObject
    private let path: FieldPath

    /// Reads `value` as the message `type` whose YAML field names are `fields`.
    ///
    /// - Parameters:
    ///   - aliases: other accepted spellings of a field (Istio's CRD alternative names).
    ///   - oneofs: groups of fields of which at most one may be set.
    public init(
        _ value: ConfigValue, at path: FieldPath, type: String, fields: [String],
        aliases: [String: String] = [:], oneofs: [[String]] = []
    ) throws(SchemaError) {
        guard case .object(var object) = value else {
            throw SchemaError(path: path, reason: "expected an object (\(type)), found \(value.typeName)")
        }
        for (alias, field) in aliases {
            guard let aliased = object[alias] else { continue }
            if object[field] != nil {
                throw SchemaError(path: path.appending(alias), reason: "\"\(alias)\" and \"\(field)\" are the same field; set only one")
            }
            object[alias] = nil
            object[field] = aliased
        }
        let known = Set(fields)
        for key in object.keys where !known.contains(key) {
            let hint = fields.isEmpty ? "\(type) has no fields" : "\(type) has: \(fields.joined(separator: ", "))"
            throw SchemaError(path: path.appending(key), reason: "unknown field \"\(key)\" (\(hint))")
        }
        for group in oneofs {
            let set = group.filter { object[$0] != nil && object[$0] != .null }
            if set.count > 1 {
                throw SchemaError(path: path.appending(set[1]), reason: "only one of \(group.joined(separator: ", ")) may be set; found \(set.joined(separator: " and "))")
            }
        }
        self.object = object
        self.path = path
    }

    /// The field's value, or `nil` when it is absent or `null`.
    public func optional<T: ConfigDecodable>(_ key: String) throws(SchemaError) -> T? {
        guard let value = object[key], value != .null else { return nil }
        return try T(config: value, at: path.appending(key))
    }

    /// The field's value; absent or `null` is an error.
    public func required<T: ConfigDecodable>(_ key: String) throws(SchemaError) -> T {
        guard let value: T = try optional(key) else {
            throw SchemaError(path: path.appending(key), reason: "missing required field \"\(key)\"")
        }
        return value
    }
}

/// Builds the object of one message for output, leaving unset fields out.
public struct ObjectWriter {
    /// The object built so far.
    public private(set) var object = ConfigObject()

    /// An empty writer.
    public init() {}

    /// Sets `key` unless `value` is `nil`.
    public mutating func set(_ key: String, _ value: (some ConfigEncodable)?) {
        if let value { object[key] = value.configValue }
    }

    /// The object as a value.
    public var value: ConfigValue { .object(object) }
}
