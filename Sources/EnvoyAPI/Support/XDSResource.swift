public import SwiftProtobuf

/// One named xDS resource, packed and hashed once when it is made.
public struct XDSResource: Sendable, Hashable {
    /// The resource name (listener, cluster, route configuration, cluster load assignment, secret).
    public let name: String
    /// The type URL.
    public let typeURL: String
    /// The packed resource.
    public let body: Google_Protobuf_Any
    /// A content hash of the packed bytes: the resource's version.
    public let hash: ContentHash

    /// Packs `message` as the resource `name`.
    public init(name: String, message: some SwiftProtobuf.Message) {
        self.name = name
        body = Google_Protobuf_Any(deterministic: message)
        typeURL = body.typeURL
        var hash = ContentHash()
        hash.combine(name)
        body.value.withUnsafeBytes { hash.combine(buffer: $0) }
        self.hash = hash
    }

    /// The resource as the given message type, or `nil` if it is another type.
    public func unpack<M: SwiftProtobuf.Message>(_ type: M.Type) -> M? {
        guard typeURL == "type.googleapis.com/" + M.protoMessageName else { return nil }
        return try? M(serializedBytes: body.value)
    }
}

/// The resources of one proxy, by type URL and name.
public struct XDSResourceSet: Sendable, Hashable {
    /// Resources by type URL, then by name.
    public private(set) var byType: [String: [String: XDSResource]]

    /// An empty set.
    public init() {
        byType = [:]
    }

    /// A set holding `resources`; a later resource with the same type and name replaces an earlier one.
    public init(_ resources: some Sequence<XDSResource>) {
        self.init()
        for resource in resources { insert(resource) }
    }

    /// Adds or replaces a resource.
    public mutating func insert(_ resource: XDSResource) {
        byType[resource.typeURL, default: [:]][resource.name] = resource
    }

    /// The resources of one type, by name.
    public func resources(ofType typeURL: String) -> [String: XDSResource] {
        byType[typeURL] ?? [:]
    }

    /// The resources of one type, sorted by name.
    public func sortedResources(ofType typeURL: String) -> [XDSResource] {
        resources(ofType: typeURL).values.sorted { $0.name < $1.name }
    }

    /// The number of resources of every type.
    public var count: Int {
        byType.values.reduce(0) { $0 + $1.count }
    }
}
