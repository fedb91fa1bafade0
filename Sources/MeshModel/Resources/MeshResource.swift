/// One Istio resource as users write it: `apiVersion`, `kind`, `metadata`, `spec`.
public struct MeshResource: Hashable, Sendable {
    /// The `apiVersion` as written (`networking.istio.io/v1beta1`).
    public var apiVersion: String
    /// The metadata.
    public var metadata: ObjectMeta
    /// The typed spec.
    public var spec: ResourceSpec

    /// A resource from its parts.
    public init(apiVersion: String? = nil, metadata: ObjectMeta, spec: ResourceSpec) {
        self.apiVersion = apiVersion ?? spec.kind.preferredAPIVersion
        self.metadata = metadata
        self.spec = spec
    }

    /// The kind.
    public var kind: ResourceKind { spec.kind }

    /// Kind, namespace and name.
    public var key: ResourceKey {
        ResourceKey(kind: kind, namespace: metadata.namespace, name: metadata.name)
    }

    /// The whole document in its YAML/JSON shape.
    public var configValue: ConfigValue {
        var object = ConfigObject([
            ("apiVersion", .string(apiVersion)),
            ("kind", .string(kind.rawValue)),
            ("metadata", metadata.configValue),
        ])
        if case .secret = spec, case .object(let body) = spec.configValue {
            for (key, value) in body.pairs { object[key] = value }
        } else {
            object["spec"] = spec.configValue
        }
        return .object(object)
    }
}

/// Why a document could not be read as a resource, with as much of its identity as was readable.
public struct ResourceDecodeError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kind, if the document named a known one.
    public var kind: String?
    /// The namespace, if readable.
    public var namespace: String?
    /// The name, if readable.
    public var name: String?
    /// Every problem found: one schema error, or all the validation problems of a resource that
    /// fits the schema.
    public var problems: [SchemaError]

    /// The first problem.
    public var error: SchemaError { problems[0] }

    /// `VirtualService tai-system/reviews: spec.http[0].route: ...`
    public var description: String {
        var who: [String] = []
        if let kind { who.append(kind) }
        if let name { who.append("\(namespace ?? "default")/\(name)") }
        let text = problems.map(\.description).joined(separator: "; ")
        return who.isEmpty ? text : "\(who.joined(separator: " ")): \(text)"
    }
}

extension MeshResource {
    /// Reads one document strictly: the kind must be one meshd accepts under a served
    /// `apiVersion`; unknown fields anywhere are errors; `status` is accepted and dropped (Istio
    /// writes it).
    public init(document: ConfigValue) throws(ResourceDecodeError) {
        let object = document.objectValue
        let kindText = object?["kind"]?.stringValue
        let metadata = object?["metadata"]?.objectValue
        var failure = ResourceDecodeError(
            kind: kindText, namespace: metadata?["namespace"]?.stringValue ?? (metadata?["name"] == nil ? nil : "default"),
            name: metadata?["name"]?.stringValue, problems: [])
        // Validation walks the spec as written, not encoded again.
        var writtenSpec: ConfigValue? = nil
        do throws(SchemaError) {
            let kindName = kindText ?? ""
            // A Secret's body sits beside its metadata.
            let body = ["type", "data", "stringData", "immutable"]
            let reader = try ObjectReader(
                document, at: .root, type: kindName == ResourceKind.secret.rawValue ? "Secret" : "resource",
                fields: ["apiVersion", "kind", "metadata"] + (kindName == ResourceKind.secret.rawValue ? body : ["spec", "status"]))
            let apiVersion: String = try reader.required("apiVersion")
            let _: String = try reader.required("kind")
            guard let kind = ResourceKind(rawValue: kindName) else {
                let known = ResourceKind.allCases.map(\.rawValue).joined(separator: ", ")
                throw SchemaError(path: FieldPath().appending("kind"), reason: "unsupported kind \"\(kindName)\"; meshd accepts \(known)")
            }
            guard kind.accepts(apiVersion: apiVersion) else {
                let served = kind.apiVersions.joined(separator: ", ")
                throw SchemaError(path: FieldPath().appending("apiVersion"), reason: "\(kind.rawValue) is not served as \"\(apiVersion)\"; use one of \(served)")
            }
            let meta: ObjectMeta = try reader.required("metadata")
            let specValue: ConfigValue
            if kind == .secret {
                specValue = .object(ConfigObject((object ?? ConfigObject()).pairs.filter { body.contains($0.key) }.map { ($0.key, $0.value) }))
            } else if kind == .serviceEntry || kind == .workloadEntry || kind == .workloadGroup {
                specValue = try reader.required("spec")
            } else {
                specValue = try reader.optional("spec") ?? .object(ConfigObject())
            }
            let spec = try ResourceSpec(kind: kind, config: specValue, at: kind == .secret ? .root : FieldPath().appending("spec"))
            self.init(apiVersion: apiVersion, metadata: meta, spec: spec)
            writtenSpec = specValue
        } catch {
            failure.problems = [error]
            throw failure
        }
        let problems = Validation.problems(of: self, written: writtenSpec)
        if !problems.isEmpty {
            failure.problems = problems
            throw failure
        }
    }
}
