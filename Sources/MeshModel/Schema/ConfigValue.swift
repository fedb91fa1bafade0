/// A configuration value as YAML or JSON carries it: the common tree both formats decode to.
///
/// Objects keep their keys in document order so that errors and re-encoded output follow what
/// the user wrote.
public enum ConfigValue: Hashable, Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([ConfigValue])
    case object(ConfigObject)

    /// A short name of the value's type, for error messages.
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .int: "an integer"
        case .double: "a number"
        case .string: "a string"
        case .array: "a list"
        case .object: "an object"
        }
    }

    /// The object, if this value is one.
    public var objectValue: ConfigObject? {
        if case .object(let object) = self { return object }
        return nil
    }

    /// The string, if this value is one.
    public var stringValue: String? {
        if case .string(let string) = self { return string }
        return nil
    }

    /// The elements, if this value is a list.
    public var arrayValue: [ConfigValue]? {
        if case .array(let array) = self { return array }
        return nil
    }

    /// The member at `key` when this value is an object.
    public subscript(key: String) -> ConfigValue? {
        objectValue?[key]
    }
}

/// An object of a ``ConfigValue`` tree: string keys in document order.
public struct ConfigObject: Hashable, Sendable {
    /// The keys in the order they were written.
    public private(set) var keys: [String]
    private var members: [String: ConfigValue]

    /// An empty object.
    public init() {
        keys = []
        members = [:]
    }

    /// An object from ordered pairs; a later duplicate key replaces the earlier value.
    public init(_ pairs: [(String, ConfigValue)]) {
        self.init()
        for (key, value) in pairs { self[key] = value }
    }

    /// The value at `key`; assigning `nil` removes the key.
    public subscript(key: String) -> ConfigValue? {
        get { members[key] }
        set {
            if let newValue {
                if members.updateValue(newValue, forKey: key) == nil { keys.append(key) }
            } else if members.removeValue(forKey: key) != nil {
                keys.removeAll { $0 == key }
            }
        }
    }

    /// The members in document order.
    public var pairs: [(key: String, value: ConfigValue)] {
        keys.map { ($0, members[$0]!) }
    }

    /// Whether the object has no members.
    public var isEmpty: Bool { keys.isEmpty }

    public static func == (lhs: ConfigObject, rhs: ConfigObject) -> Bool {
        lhs.members == rhs.members
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(members)
    }
}
