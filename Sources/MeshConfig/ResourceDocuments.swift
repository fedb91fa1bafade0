public import MeshModel

/// A resource with where it came from.
public struct SourcedResource: Hashable, Sendable {
    /// The resource.
    public var resource: MeshResource
    /// The file (or other source) it was read from.
    public var source: String
    /// Its 1-based document number in the source.
    public var document: Int

    /// A resource and its origin.
    public init(resource: MeshResource, source: String, document: Int) {
        self.resource = resource
        self.source = source
        self.document = document
    }

    /// `file.yaml, document 2`.
    public var origin: String { "\(source), document \(document)" }
}

/// Decodes Istio resources from YAML or JSON text.
public enum ResourceDocuments {
    /// Every resource in `text`, strictly decoded and validated; the first problem is thrown.
    public static func decode(_ text: String, source: String) throws(ConfigLoadError) -> [SourcedResource] {
        var out: [SourcedResource] = []
        for (document, value) in try YAMLDocuments.parse(text, source: source) {
            do throws(ResourceDecodeError) {
                out.append(SourcedResource(resource: try MeshResource(document: value), source: source, document: document))
            } catch {
                throw ConfigLoadError(source: source, document: document, decode: error)
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
                    source: item.source, document: item.document, resource: item.resource.key.description,
                    reason: "defined twice: also in \(earlier.origin)")
            }
            seen[item.resource.key] = item
        }
    }
}
