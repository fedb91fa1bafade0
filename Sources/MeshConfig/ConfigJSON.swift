public import MeshModel

/// Writes ``ConfigValue`` trees as JSON, keys in document order (JSON is also valid YAML).
public enum ConfigJSON {
    /// JSON text of `value`.
    public static func encode(_ value: ConfigValue, pretty: Bool = false) -> String {
        var out = ""
        write(value, into: &out, indent: pretty ? 0 : nil)
        return out
    }

    private static func write(_ value: ConfigValue, into out: inout String, indent: Int?) {
        let newline = indent == nil ? "" : "\n"
        let pad = { (level: Int) in String(repeating: "  ", count: level) }
        switch value {
        case .null: out += "null"
        case .bool(let bool): out += bool ? "true" : "false"
        case .int(let int): out += String(int)
        case .double(let double):
            out += double.isFinite ? (double == double.rounded() && abs(double) < 1e15 ? String(Int64(double)) : String(double)) : "null"
        case .string(let string): out += quote(string)
        case .array(let elements):
            if elements.isEmpty { out += "[]"; return }
            out += "[" + newline
            for (index, element) in elements.enumerated() {
                if let indent { out += pad(indent + 1) }
                write(element, into: &out, indent: indent.map { $0 + 1 })
                if index < elements.count - 1 { out += "," }
                out += newline
            }
            if let indent { out += pad(indent) }
            out += "]"
        case .object(let object):
            if object.isEmpty { out += "{}"; return }
            out += "{" + newline
            let pairs = object.pairs
            for (index, pair) in pairs.enumerated() {
                if let indent { out += pad(indent + 1) }
                out += quote(pair.key) + (indent == nil ? ":" : ": ")
                write(pair.value, into: &out, indent: indent.map { $0 + 1 })
                if index < pairs.count - 1 { out += "," }
                out += newline
            }
            if let indent { out += pad(indent) }
            out += "}"
        }
    }

    /// A JSON string literal.
    public static func quote(_ string: String) -> String { JSONString.quote(string) }
}
