public import MeshModel

/// Why configuration text was refused: where (file and document), which resource, which field, why.
public struct ConfigLoadError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The file path, or a description of the source (`request body`).
    public var source: String
    /// The 1-based document number within the source, when known.
    public var document: Int?
    /// The 1-based index of the item within a `List` document, when the problem is in one.
    public var item: Int?
    /// The 1-based line, when the YAML parser reported one.
    public var line: Int?
    /// `Kind namespace/name`, when readable.
    public var resource: String?
    /// The field path, when the problem is in a field.
    public var path: String?
    /// The reason.
    public var reason: String
    /// Further problems of the same document (`path: reason`), when validation found several.
    public var moreProblems: [String] = []

    /// An error from its parts.
    public init(source: String, document: Int? = nil, item: Int? = nil, line: Int? = nil, resource: String? = nil, path: String? = nil, reason: String) {
        self.source = source
        self.document = document
        self.item = item
        self.line = line
        self.resource = resource
        self.path = path
        self.reason = reason
    }

    /// An error for a document that failed to decode as a resource.
    public init(source: String, document: Int, item: Int? = nil, decode error: ResourceDecodeError) {
        var resource: String? = nil
        if let kind = error.kind, let name = error.name {
            resource = "\(kind) \(error.namespace ?? "default")/\(name)"
        } else if let kind = error.kind {
            resource = kind
        }
        self.init(source: source, document: document, item: item, resource: resource, path: error.error.path.description, reason: error.error.reason)
        moreProblems = error.problems.dropFirst().map(\.description)
    }

    /// `dir/a.yaml, document 2 (VirtualService tai-system/x): spec.hosts: at least one host is required`
    public var description: String {
        var location = source
        if let document { location += ", document \(document)" }
        if let item { location += ", item \(item)" }
        if let line { location += ", line \(line)" }
        if let resource { location += " (\(resource))" }
        var text = path.map { "\(location): \($0): \(reason)" } ?? "\(location): \(reason)"
        if !moreProblems.isEmpty { text += "; also " + moreProblems.joined(separator: "; ") }
        return text
    }
}
