public import MeshModel

/// A resource with where it came from.
public struct SourcedResource: Hashable, Sendable {
    /// The resource.
    public var resource: MeshResource
    /// The file (or other source) it was read from.
    public var source: String
    /// Its 1-based document number in the source.
    public var document: Int
    /// Its 1-based index in the document's `items`, when the document is a `List`.
    public var item: Int?

    /// A resource and its origin.
    public init(resource: MeshResource, source: String, document: Int, item: Int? = nil) {
        self.resource = resource
        self.source = source
        self.document = document
        self.item = item
    }

    /// `file.yaml, document 2` (`, item 3` in a List).
    public var origin: String { SourceDocument.origin(source, document: document, item: item) }
}

/// One document of a source, or one item of a `List` document in it (what `kubectl get -o yaml`
/// writes for several objects).
public struct SourceDocument: Sendable {
    /// The 1-based document number in the source.
    public var document: Int
    /// The 1-based index in the List's `items`, when the document is a List.
    public var item: Int?
    /// The object.
    public var value: ConfigValue

    /// `file.yaml, document 2, item 3`.
    public static func origin(_ source: String, document: Int, item: Int?) -> String {
        "\(source), document \(document)" + (item.map { ", item \($0)" } ?? "")
    }
}

/// Decodes Istio resources from YAML or JSON text.
public enum ResourceDocuments {
    /// The fields a `List` document may have.
    static let listFields: Set<String> = ["apiVersion", "kind", "metadata", "items"]

    /// The documents of `text`, each `List` (`kind: List`, or a typed list such as
    /// `VirtualServiceList`) replaced by its items in order. A List must hold only objects and no
    /// other List.
    public static func documents(_ text: String, source: String) throws(ConfigLoadError) -> [SourceDocument] {
        var out: [SourceDocument] = []
        for (document, value) in try YAMLDocuments.parse(text, source: source) {
            guard let object = value.objectValue, let kind = object["kind"]?.stringValue, kind.hasSuffix("List"), object["items"] != nil || kind == "List" else {
                out.append(SourceDocument(document: document, item: nil, value: value))
                continue
            }
            if let unknown = object.keys.first(where: { !listFields.contains($0) }) {
                throw ConfigLoadError(source: source, document: document, resource: kind, path: unknown, reason: "unknown field of a \(kind); a List has apiVersion, kind, metadata and items")
            }
            guard let items = object["items"]?.arrayValue else {
                throw ConfigLoadError(source: source, document: document, resource: kind, path: "items", reason: "a \(kind) needs items, a list of objects")
            }
            for (index, item) in items.enumerated() {
                guard let itemObject = item.objectValue else {
                    throw ConfigLoadError(source: source, document: document, item: index + 1, path: "items[\(index)]", reason: "each item of a List must be an object, not \(item.typeName)")
                }
                if let itemKind = itemObject["kind"]?.stringValue, itemKind.hasSuffix("List"), itemObject["items"] != nil {
                    throw ConfigLoadError(source: source, document: document, item: index + 1, resource: itemKind, reason: "a List inside a List is not read; write its items into the outer List")
                }
                out.append(SourceDocument(document: document, item: index + 1, value: item))
            }
        }
        return out
    }

    /// Every resource in `text` (Lists expanded), strictly decoded and validated; the first
    /// problem is thrown. An object exported from a Kubernetes API server is read without what
    /// the server set (``KubernetesImport/withoutServerFields(_:)``), among it kubectl's
    /// last-applied annotation, which repeats a Secret's data. meshd's own store reads its
    /// documents as written (`asStored`).
    public static func decode(_ text: String, source: String, asStored: Bool = false) throws(ConfigLoadError) -> [SourcedResource] {
        var out: [SourcedResource] = []
        for document in try documents(text, source: source) {
            let value = asStored ? document.value : KubernetesImport.asRead(document.value)
            do throws(ResourceDecodeError) {
                out.append(SourcedResource(resource: try MeshResource(document: value), source: source, document: document.document, item: document.item))
            } catch {
                throw ConfigLoadError(source: source, document: document.document, item: document.item, decode: error)
            }
        }
        return out
    }

    /// Fails if two resources share a kind, namespace and name.
    public static func checkUnique(_ resources: [SourcedResource]) throws(ConfigLoadError) {
        var seen: [ResourceKey: SourcedResource] = [:]
        for item in resources {
            if let earlier = seen[item.resource.key] {
                throw ConfigLoadError(
                    source: item.source, document: item.document, item: item.item, resource: item.resource.key.description,
                    reason: "defined twice: also in \(earlier.origin)")
            }
            seen[item.resource.key] = item
        }
    }
}
