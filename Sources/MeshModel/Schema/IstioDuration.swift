/// A `google.protobuf.Duration` as Istio's YAML writes it.
///
/// Accepts the protobuf JSON form (`"5s"`, `"1.5s"`, `"0.001s"`) and, because Istio's own docs and
/// users write them, Go duration strings with units `h`, `m`, `s`, `ms`, `us`/`µs`, `ns`
/// (`"1m"`, `"500ms"`, `"1h30m"`). Negative durations are refused. Written back as seconds (`"90s"`).
public struct IstioDuration: Hashable, Comparable, Sendable, ConfigCodable, CustomStringConvertible {
    /// The length in nanoseconds.
    public var nanoseconds: Int64

    /// A duration of `nanoseconds`.
    public init(nanoseconds: Int64) {
        self.nanoseconds = nanoseconds
    }

    /// A duration of whole `seconds`.
    public static func seconds(_ seconds: Int64) -> IstioDuration {
        IstioDuration(nanoseconds: seconds * 1_000_000_000)
    }

    /// A duration of whole `milliseconds`.
    public static func milliseconds(_ milliseconds: Int64) -> IstioDuration {
        IstioDuration(nanoseconds: milliseconds * 1_000_000)
    }

    /// The whole seconds part (for `google.protobuf.Duration.seconds`).
    public var wholeSeconds: Int64 { nanoseconds / 1_000_000_000 }
    /// The nanoseconds beyond the whole seconds (for `google.protobuf.Duration.nanos`).
    public var nanosPart: Int32 { Int32(nanoseconds % 1_000_000_000) }
    /// The length in (fractional) seconds.
    public var secondsValue: Double { Double(nanoseconds) / 1e9 }

    /// Parses the text forms described on the type; `nil` if `text` is not one of them.
    public init?(parsing text: String) {
        var rest = Substring(text)
        guard !rest.isEmpty, !rest.hasPrefix("-") else { return nil }
        if rest.hasPrefix("+") { rest = rest.dropFirst() }
        var total: Double = 0
        var parsedAny = false
        while !rest.isEmpty {
            let number = rest.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
            guard !number.isEmpty, let value = Double(number) else { return nil }
            rest = rest.dropFirst(number.count)
            let unit = rest.prefix { !($0.isASCII && ($0.isNumber || $0 == ".")) }
            rest = rest.dropFirst(unit.count)
            let scale: Double
            switch unit {
            case "h": scale = 3600e9
            case "m": scale = 60e9
            case "s": scale = 1e9
            case "ms": scale = 1e6
            case "us", "µs", "μs": scale = 1e3
            case "ns": scale = 1
            default: return nil
            }
            total += value * scale
            parsedAny = true
        }
        guard parsedAny, total < 9.2e18 else { return nil }
        nanoseconds = Int64(total.rounded())
    }

    public init(config value: ConfigValue, at path: FieldPath) throws(SchemaError) {
        guard case .string(let text) = value else {
            throw SchemaError(path: path, reason: "expected a duration string such as \"5s\" or \"1.5s\", found \(value.typeName)")
        }
        guard let parsed = IstioDuration(parsing: text) else {
            throw SchemaError(path: path, reason: "invalid duration \"\(text)\"; write seconds with an \"s\" suffix such as \"5s\" or \"0.25s\"")
        }
        self = parsed
    }

    public var configValue: ConfigValue { .string(description) }

    /// Seconds with an `s` suffix and no trailing zeros: `"5s"`, `"0.25s"`.
    public var description: String {
        let seconds = nanoseconds / 1_000_000_000
        let nanos = nanoseconds % 1_000_000_000
        if nanos == 0 { return "\(seconds)s" }
        var fraction = String(nanos)
        fraction = String(repeating: "0", count: 9 - fraction.count) + fraction
        while fraction.hasSuffix("0") { fraction.removeLast() }
        return "\(seconds).\(fraction)s"
    }

    public static func < (lhs: IstioDuration, rhs: IstioDuration) -> Bool {
        lhs.nanoseconds < rhs.nanoseconds
    }
}
