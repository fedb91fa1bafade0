/// A type read strictly from a ``ConfigValue`` tree.
public protocol ConfigDecodable: Sendable {
    /// Decodes the value found at `path`, or throws an error that names the path.
    init(config value: ConfigValue, at path: FieldPath) throws(SchemaError)
}

/// A type that writes itself back as a ``ConfigValue`` tree in Istio's YAML/JSON shape.
public protocol ConfigEncodable {
    /// The value as YAML/JSON carries it.
    var configValue: ConfigValue { get }
}

/// Both directions.
public typealias ConfigCodable = ConfigDecodable & ConfigEncodable

/// An Istio message (a struct of named fields).
public protocol IstioMessage: ConfigCodable, Hashable {}

/// An Istio enum: YAML carries the value's name as a string.
public protocol IstioEnum: ConfigCodable, Hashable, CaseIterable, RawRepresentable where RawValue == String {}

extension IstioEnum {
    public init(config value: ConfigValue, at path: FieldPath) throws(SchemaError) {
        guard case .string(let name) = value else {
            throw SchemaError(path: path, reason: "expected one of \(Self.allowedNames), found \(value.typeName)")
        }
        guard let decoded = Self(rawValue: name) else {
            throw SchemaError(path: path, reason: "unknown value \"\(name)\"; expected one of \(Self.allowedNames)")
        }
        self = decoded
    }

    public var configValue: ConfigValue { .string(rawValue) }

    private static var allowedNames: String {
        allCases.map(\.rawValue).joined(separator: ", ")
    }
}

extension String: ConfigCodable {
    public init(config value: ConfigValue, at path: FieldPath) throws(SchemaError) {
        guard case .string(let string) = value else {
            throw SchemaError(path: path, reason: "expected a string, found \(value.typeName)")
        }
        self = string
    }

    public var configValue: ConfigValue { .string(self) }
}

extension Bool: ConfigCodable {
    public init(config value: ConfigValue, at path: FieldPath) throws(SchemaError) {
        guard case .bool(let bool) = value else {
            throw SchemaError(path: path, reason: "expected a boolean, found \(value.typeName)")
        }
        self = bool
    }

    public var configValue: ConfigValue { .bool(self) }
}

extension Double: ConfigCodable {
    public init(config value: ConfigValue, at path: FieldPath) throws(SchemaError) {
        switch value {
        case .double(let double): self = double
        case .int(let int): self = Double(int)
        default: throw SchemaError(path: path, reason: "expected a number, found \(value.typeName)")
        }
    }

    public var configValue: ConfigValue { .double(self) }
}

/// Integers are read from YAML/JSON numbers only (as Istio's CRD schema requires) and must fit the
/// field's range.
public protocol ConfigInteger: FixedWidthInteger, ConfigCodable {}

extension ConfigInteger {
    public init(config value: ConfigValue, at path: FieldPath) throws(SchemaError) {
        switch value {
        case .int(let int):
            guard let exact = Self(exactly: int) else {
                throw SchemaError(path: path, reason: "\(int) is out of range \(Self.min)...\(Self.max)")
            }
            self = exact
        case .double(let double) where double.rounded() == double:
            guard let exact = Self(exactly: double) else {
                throw SchemaError(path: path, reason: "\(double) is out of range \(Self.min)...\(Self.max)")
            }
            self = exact
        default:
            throw SchemaError(path: path, reason: "expected an integer, found \(value.typeName)")
        }
    }

    public var configValue: ConfigValue { .int(Int64(clamping: self)) }
}

extension Int32: ConfigInteger {}
extension UInt32: ConfigInteger {}
extension Int64: ConfigInteger {}
extension UInt64: ConfigInteger {}
extension Int: ConfigInteger {}

extension ConfigValue: ConfigCodable {
    /// Free-form values (`google.protobuf.Struct`) are taken as they are.
    public init(config value: ConfigValue, at path: FieldPath) throws(SchemaError) {
        self = value
    }

    public var configValue: ConfigValue { self }
}

extension Array: ConfigDecodable where Element: ConfigDecodable {
    public init(config value: ConfigValue, at path: FieldPath) throws(SchemaError) {
        guard case .array(let elements) = value else {
            throw SchemaError(path: path, reason: "expected a list, found \(value.typeName)")
        }
        var out: [Element] = []
        out.reserveCapacity(elements.count)
        for (index, element) in elements.enumerated() {
            out.append(try Element(config: element, at: path.appending(index: index)))
        }
        self = out
    }
}

extension Array: ConfigEncodable where Element: ConfigEncodable {
    public var configValue: ConfigValue { .array(map(\.configValue)) }
}

extension Dictionary: ConfigDecodable where Key == String, Value: ConfigDecodable {
    public init(config value: ConfigValue, at path: FieldPath) throws(SchemaError) {
        guard case .object(let object) = value else {
            throw SchemaError(path: path, reason: "expected a map, found \(value.typeName)")
        }
        var out: [String: Value] = [:]
        for (key, member) in object.pairs {
            out[key] = try Value(config: member, at: path.appending(key))
        }
        self = out
    }
}

extension Dictionary: ConfigEncodable where Key == String, Value: ConfigEncodable {
    /// Maps are written with sorted keys so that output is stable.
    public var configValue: ConfigValue {
        .object(ConfigObject(keys.sorted().map { ($0, self[$0]!.configValue) }))
    }
}
