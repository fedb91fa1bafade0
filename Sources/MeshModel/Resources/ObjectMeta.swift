/// The `metadata` of a resource: the parts of Kubernetes' ObjectMeta that mean something without
/// Kubernetes. The bookkeeping fields Kubernetes tools write (`uid`, `ownerReferences`,
/// `managedFields`, ...) are accepted and kept so that YAML exported from a cluster loads unchanged.
public struct ObjectMeta: Hashable, Sendable, ConfigCodable {
    /// The resource name (a DNS-1123 subdomain).
    public var name: String
    /// The namespace; `default` when the document leaves it out, as `kubectl` does.
    public var namespace: String
    /// Labels.
    public var labels: [String: String]
    /// Annotations (`istio.io/dry-run` and others).
    public var annotations: [String: String]
    /// Set by meshd's store for optimistic concurrency; empty for file-based resources.
    public var resourceVersion: String?
    /// Incremented by meshd's store on each change of the spec.
    public var generation: Int64?
    /// When the resource was first stored (RFC 3339).
    public var creationTimestamp: String?
    /// Other ObjectMeta fields, kept as written.
    public var passthrough: ConfigObject

    /// Fields of Kubernetes' ObjectMeta that meshd keeps but does not interpret.
    static let passthroughFields = [
        "uid", "selfLink", "ownerReferences", "finalizers", "managedFields", "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ]

    /// Metadata with a name and namespace.
    public init(name: String, namespace: String = "default", labels: [String: String] = [:], annotations: [String: String] = [:]) {
        self.name = name
        self.namespace = namespace
        self.labels = labels
        self.annotations = annotations
        self.passthrough = ConfigObject()
    }

    public init(config source: ConfigValue, at location: FieldPath) throws(SchemaError) {
        let own = ["name", "namespace", "labels", "annotations", "resourceVersion", "generation", "creationTimestamp"]
        let reader = try ObjectReader(source, at: location, type: "ObjectMeta", fields: own + Self.passthroughFields)
        name = try reader.required("name")
        namespace = try reader.optional("namespace") ?? "default"
        labels = try reader.optional("labels") ?? [:]
        annotations = try reader.optional("annotations") ?? [:]
        resourceVersion = try reader.optional("resourceVersion")
        generation = try reader.optional("generation")
        creationTimestamp = try reader.optional("creationTimestamp")
        passthrough = ConfigObject()
        for field in Self.passthroughFields {
            if let value: ConfigValue = try reader.optional(field) { passthrough[field] = value }
        }
        for problem in NameRules.problems(name: name, at: location.appending("name")) { throw problem }
        for problem in NameRules.problems(namespace: namespace, at: location.appending("namespace")) { throw problem }
    }

    public var configValue: ConfigValue {
        var writer = ObjectWriter()
        writer.set("name", name)
        writer.set("namespace", namespace)
        writer.set("labels", labels.isEmpty ? nil : labels)
        writer.set("annotations", annotations.isEmpty ? nil : annotations)
        writer.set("resourceVersion", resourceVersion)
        writer.set("generation", generation)
        writer.set("creationTimestamp", creationTimestamp)
        var object = writer.object
        for (key, value) in passthrough.pairs { object[key] = value }
        return .object(object)
    }
}

/// Kubernetes' naming rules for names and namespaces.
public enum NameRules {
    /// Problems with a resource name (DNS-1123 subdomain: at most 253 characters of lower-case
    /// letters, digits, `-` and `.`, starting and ending with a letter or digit).
    public static func problems(name: String, at path: FieldPath) -> [SchemaError] {
        if name.isEmpty { return [SchemaError(path: path, reason: "must not be empty")] }
        guard name.count <= 253, name.split(separator: ".", omittingEmptySubsequences: false).allSatisfy(isLabel) else {
            return [SchemaError(path: path, reason: "\"\(name)\" is not a valid name: use lower-case letters, digits, '-' and '.', starting and ending with a letter or digit")]
        }
        return []
    }

    /// Problems with a namespace (DNS-1123 label: at most 63 characters).
    public static func problems(namespace: String, at path: FieldPath) -> [SchemaError] {
        guard isLabel(Substring(namespace)) else {
            return [SchemaError(path: path, reason: "\"\(namespace)\" is not a valid namespace: use at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit")]
        }
        return []
    }

    /// Whether `label` is a DNS-1123 label.
    public static func isLabel(_ label: Substring) -> Bool {
        guard !label.isEmpty, label.count <= 63 else { return false }
        let allowed = label.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" }
        return allowed && label.first != "-" && label.last != "-"
    }
}
