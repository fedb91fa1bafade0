/// Where a value sits in a resource: `spec.http[0].route[1].destination.host`.
public struct FieldPath: Hashable, Sendable, CustomStringConvertible {
    /// One step of a path.
    public enum Component: Hashable, Sendable {
        /// An object member.
        case key(String)
        /// A list element.
        case index(Int)
    }

    /// The steps from the document root.
    public private(set) var components: [Component]

    /// A path from steps.
    public init(_ components: [Component] = []) {
        self.components = components
    }

    /// The path of the document root.
    public static let root = FieldPath()

    /// This path extended by an object member.
    public func appending(_ key: String) -> FieldPath {
        var copy = self
        copy.components.append(.key(key))
        return copy
    }

    /// This path extended by a list index.
    public func appending(index: Int) -> FieldPath {
        var copy = self
        copy.components.append(.index(index))
        return copy
    }

    /// The dotted form users see: `spec.hosts[0]`, with map keys that are not plain names
    /// in brackets and quotes (`headers["user-agent"]`).
    public var description: String {
        var out = ""
        for component in components {
            switch component {
            case .index(let index):
                out += "[\(index)]"
            case .key(let key):
                if key.isPlainName {
                    out += out.isEmpty ? key : ".\(key)"
                } else {
                    out += "[\"\(key)\"]"
                }
            }
        }
        return out.isEmpty ? "(document)" : out
    }
}

extension String {
    fileprivate var isPlainName: Bool {
        guard let first = unicodeScalars.first, first == "_" || first.properties.isAlphabetic else {
            return false
        }
        return unicodeScalars.allSatisfy { $0 == "_" || $0.properties.isAlphabetic || ("0"..."9").contains($0) }
    }
}
