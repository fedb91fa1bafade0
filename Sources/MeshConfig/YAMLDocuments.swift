public import MeshModel
internal import Foundation
internal import Yams

/// Reads YAML (and JSON, which is YAML) into ``ConfigValue`` trees, one per document.
public enum YAMLDocuments {
    /// The non-empty documents of `text`, with their 1-based document numbers.
    ///
    /// Scalars are typed the way YAML 1.1 core resolution does (plain `8080` is an integer,
    /// quoted `"8080"` a string). Duplicate keys and syntax errors are errors naming the line.
    public static func parse(_ text: String, source: String) throws(ConfigLoadError) -> [(document: Int, value: ConfigValue)] {
        var out: [(Int, ConfigValue)] = []
        do {
            var index = 0
            let parser = try Parser(yaml: text)
            while let node = try parser.nextRoot() {
                index += 1
                let value = try convert(node, source: source, document: index)
                if value == .null { continue }
                out.append((index, value))
            }
        } catch let error as ConfigLoadError {
            throw error
        } catch let error as YamlError {
            throw ConfigLoadError(source: source, line: error.line, reason: "invalid YAML: \(error.shortDescription)")
        } catch {
            throw ConfigLoadError(source: source, reason: "invalid YAML: \(error)")
        }
        return out
    }

    private static func convert(_ node: Node, source: String, document: Int) throws(ConfigLoadError) -> ConfigValue {
        switch node {
        case .scalar(let scalar):
            return scalarValue(scalar)
        case .sequence(let sequence):
            var elements: [ConfigValue] = []
            for element in sequence { elements.append(try convert(element, source: source, document: document)) }
            return .array(elements)
        case .mapping(let mapping):
            var object = ConfigObject()
            for (keyNode, valueNode) in mapping {
                guard case .scalar(let keyScalar) = keyNode else {
                    throw ConfigLoadError(source: source, document: document, line: keyNode.mark.map { $0.line }, reason: "mapping keys must be scalars")
                }
                let key = keyScalar.string
                if object[key] != nil {
                    throw ConfigLoadError(source: source, document: document, line: keyNode.mark.map { $0.line }, reason: "duplicate key \"\(key)\"")
                }
                object[key] = try convert(valueNode, source: source, document: document)
            }
            return .object(object)
        case .alias:
            throw ConfigLoadError(source: source, document: document, reason: "YAML aliases are not supported")
        }
    }

    /// A YAML 1.1 integer as the core resolver tags one (decimal, `0x`, `0o`/leading `0` octal,
    /// `0b`, sexagesimal `1:30`, underscores), or `nil` when it does not fit in 64 bits.
    static func integer(_ text: String) -> Int64? {
        var body = Substring(text.replacingOccurrences(of: "_", with: ""))
        var negative = false
        if let sign = body.first, sign == "-" || sign == "+" {
            negative = sign == "-"
            body = body.dropFirst()
        }
        let magnitude: Int64?
        if body.contains(":") {
            var value: Int64 = 0
            for part in body.split(separator: ":", omittingEmptySubsequences: false) {
                guard let digit = Int64(part) else { return nil }
                let (scaled, overflowed) = value.multipliedReportingOverflow(by: 60)
                let (sum, carried) = scaled.addingReportingOverflow(digit)
                guard !overflowed, !carried else { return nil }
                value = sum
            }
            magnitude = value
        } else if body.hasPrefix("0x") {
            magnitude = Int64(body.dropFirst(2), radix: 16)
        } else if body.hasPrefix("0o") {
            magnitude = Int64(body.dropFirst(2), radix: 8)
        } else if body.hasPrefix("0b") {
            magnitude = Int64(body.dropFirst(2), radix: 2)
        } else if body.count > 1, body.hasPrefix("0") {
            magnitude = Int64(body.dropFirst(), radix: 8)
        } else {
            magnitude = Int64(body)
        }
        return magnitude.map { negative ? -$0 : $0 }
    }

    /// `value` as YAML text that ``parse(_:source:)`` reads back as the same value: keys in
    /// their order, strings quoted where a plain scalar would read as another type (`"8080"`,
    /// `"true"`).
    public static func write(_ value: ConfigValue) throws -> String {
        try Yams.serialize(node: node(value), width: -1)
    }

    private static func node(_ value: ConfigValue) -> Node {
        switch value {
        case .null: return Node("null", Tag(.null))
        case .bool(let flag): return Node(flag ? "true" : "false", Tag(.bool))
        case .int(let number): return Node(String(number), Tag(.int))
        case .double(let number):
            if number.isNaN { return Node(".nan", Tag(.float)) }
            if number.isInfinite { return Node(number > 0 ? ".inf" : "-.inf", Tag(.float)) }
            return Node(number == number.rounded() && abs(number) < 1e15 ? String(format: "%.1f", number) : "\(number)", Tag(.float))
        case .string(let text):
            let plain = Node.Scalar(text, Tag(.implicit), .plain)
            let style: Node.Scalar.Style = scalarValue(plain) == .string(text) ? .any : .doubleQuoted
            return .scalar(Node.Scalar(text, Tag(.str), style))
        case .array(let elements): return .sequence(Node.Sequence(elements.map(node)))
        case .object(let object): return .mapping(Node.Mapping(object.pairs.map { (Node($0.key), node($0.value)) }))
        }
    }

    private static func scalarValue(_ scalar: Node.Scalar) -> ConfigValue {
        let text = scalar.string
        // Quoted and block scalars are strings; plain ones are typed by YAML's core rules.
        guard scalar.style == .plain || scalar.style == .any else { return .string(text) }
        switch Resolver.default.resolveTag(of: Node.scalar(scalar)).rawValue {
        case Tag.Name.null.rawValue:
            return .null
        case Tag.Name.bool.rawValue:
            return Bool.construct(from: scalar).map(ConfigValue.bool) ?? .string(text)
        case Tag.Name.int.rawValue:
            // Not Yams' Int.construct: it traps on a sexagesimal number that overflows
            // (`1:2:3:4:5:6:7:8:9:10:11:12`), found by fuzzing; a user's file must not crash meshd.
            return integer(text).map(ConfigValue.int) ?? .string(text)
        case Tag.Name.float.rawValue:
            return Double.construct(from: scalar).map(ConfigValue.double) ?? .string(text)
        default:
            return .string(text)
        }
    }
}

extension YamlError {
    var line: Int? {
        switch self {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _):
            return mark.line
        case .duplicatedKeysInMapping(_, let context):
            return context.mark.line
        default:
            return nil
        }
    }

    /// The problem and where, without quoting the input.
    var shortDescription: String {
        switch self {
        case .scanner(let context, let problem, _, _), .parser(let context, let problem, _, _), .composer(let context, let problem, _, _):
            if let context { return "\(problem) \(context.text)" }
            return problem
        case .duplicatedKeysInMapping(let duplicates, _):
            return "duplicate keys \(duplicates.joined(separator: ", "))"
        case .reader(let problem, let offset, _, _):
            // Never the offending line: it may be part of a private key.
            return offset.map { "\(problem) at byte \($0)" } ?? problem
        default:
            return String(describing: self)
        }
    }
}
