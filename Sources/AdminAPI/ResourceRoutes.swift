public import Hummingbird
internal import MeshModel
internal import MeshConfig
internal import MeshClient
internal import Foundation

/// Istio's kinds under `/apis/{group}/{version}`, the core Secret under `/api/v1`, as Kubernetes
/// lays them out: list, get, create, replace, delete; `?dryRun=All` only checks a change.
/// Secrets are answered without their data (the annotation ``redactedAnnotation`` lists the keys)
/// unless an admin asks for one with `?reveal=true`, which is audited.
struct ResourceRoutes {
    let backend: any ResourceBackend
    let access: Access

    var collection: RouteCollection<AdminRequestContext> {
        let routes = RouteCollection(context: AdminRequestContext.self)
        for prefix in ["/apis/:group/:version", "/api/:version"] {
            add(to: routes, prefix: RouterPath(prefix))
        }
        return routes
    }

    private func add(to routes: RouteCollection<AdminRequestContext>, prefix: RouterPath) {
        let readers = access.group(routes, .reader)
        let admins = access.group(routes, .admin)
        readers.get(prefix.appendingPath(":plural")) { _, context in
            let kind = try Self.kind(context)
            return list(backend.snapshot.allResources.filter { $0.kind == kind })
        }
        readers.get(prefix.appendingPath("namespaces/:namespace/:plural")) { _, context in
            let kind = try Self.kind(context)
            let namespace = try context.parameters.require("namespace")
            return list(backend.snapshot.allResources.filter { $0.kind == kind && $0.metadata.namespace == namespace })
        }
        // Readers, or admins only with `?reveal=true`: the role depends on the query, so the
        // route checks it itself.
        routes.get(prefix.appendingPath("namespaces/:namespace/:plural/:name")) { request, context in
            let reveal = request.uri.queryParameters["reveal"].map { $0 == "true" } ?? false
            let principal = try access.require(reveal ? .admin : .reader, request, context)
            let key = try Self.key(context)
            guard let resource = backend.snapshot.resources[key] else { throw APIError.notFound("\(key) not found") }
            guard reveal else { return answer(resource) }
            guard key.kind == .secret else { throw APIError.invalid("reveal applies to Secrets; \(key.kind.rawValue) has nothing hidden", field: "reveal") }
            try access.limit(principal, request)
            access.audit(principal.description, "secret.reveal", target: key.description, result: "ok")
            return answer(resource, reveal: true)
        }
        admins.post(prefix.appendingPath("namespaces/:namespace/:plural")) { request, context -> Response in
            let kind = try Self.kind(context)
            let namespace = try context.parameters.require("namespace")
            let resource = try await decodeBody(request, kind: kind, namespace: namespace, name: nil, action: "resource.create", context)
            return try change(.create(resource), request, context, action: "resource.create", success: .created)
        }
        admins.put(prefix.appendingPath("namespaces/:namespace/:plural/:name")) { request, context -> Response in
            let key = try Self.key(context)
            let resource = try await decodeBody(request, kind: key.kind, namespace: key.namespace, name: key.name, action: "resource.replace", context)
            return try change(.replace(resource, expectedVersion: resource.metadata.resourceVersion), request, context, action: "resource.replace", success: .ok)
        }
        admins.delete(prefix.appendingPath("namespaces/:namespace/:plural/:name")) { request, context -> Response in
            let key = try Self.key(context)
            let expected = request.uri.queryParameters["resourceVersion"].map(String.init)
            return try change(.delete(key, expectedVersion: expected), request, context, action: "resource.delete", success: .ok)
        }
    }

    /// The counter label of a refused change.
    static func reason(_ error: ResourceChangeError) -> String {
        switch error {
        case .conflict: "conflict"
        case .notFound: "not_found"
        case .storage: "storage"
        case .invalid: "invalid"
        }
    }

    // MARK: Paths

    private static func kind(_ context: AdminRequestContext) throws -> ResourceKind {
        let group = context.parameters.get("group") ?? ""
        let version = try context.parameters.require("version")
        let plural = try context.parameters.require("plural")
        guard let kind = ResourceKind(plural: plural), kind.group == group else {
            throw APIError.notFound("no resource type \(plural) in \(group.isEmpty ? "the core group (/api)" : group)")
        }
        guard kind.versions.contains(version) else {
            throw APIError.notFound("\(kind.rawValue) is not served as \(group)/\(version)")
        }
        return kind
    }

    private static func key(_ context: AdminRequestContext) throws -> ResourceKey {
        ResourceKey(kind: try kind(context), namespace: try context.parameters.require("namespace"), name: try context.parameters.require("name"))
    }

    // MARK: Answers

    private func list(_ items: [MeshResource]) -> Response {
        AdminResponse.resource(.object(ConfigObject([
            ("apiVersion", .string("v1")), ("kind", .string("List")), ("items", .array(items.map { annotated($0) })),
        ])))
    }

    private func answer(_ resource: MeshResource, status: HTTPResponse.Status = .ok, reveal: Bool = false) -> Response {
        AdminResponse.resource(annotated(resource, reveal: reveal), status: status)
    }

    /// The resource as answered: with where it comes from, and a Secret without its data unless
    /// `reveal`.
    private func annotated(_ resource: MeshResource, reveal: Bool = false) -> ConfigValue {
        var copy = resource
        if let source = backend.source(of: resource.key) { copy.metadata.annotations[sourceAnnotation] = source }
        if resource.kind == .workloadEntry,
           let condition = backend.snapshot.healthCondition(of: .init(namespace: resource.metadata.namespace, name: resource.metadata.name)),
           case .object(var object) = copy.configValue {
            // Istio's place for a probe's result: a `Healthy` condition in the entry's status.
            var entry = ConfigObject([("type", .string("Healthy")), ("status", .string(condition.status))])
            if let message = condition.message { entry["message"] = .string(message) }
            object["status"] = .object(ConfigObject([("conditions", .array([.object(entry)]))]))
            return .object(object)
        }
        guard case .secret(let secret) = resource.spec, !reveal else { return copy.configValue }
        copy.metadata.annotations[redactedAnnotation] = secret.data.keys.sorted().joined(separator: ",")
        // kubectl's copy of the applied object repeats the data.
        copy.metadata.annotations[KubernetesImport.lastAppliedAnnotation] = nil
        guard case .object(var object) = copy.configValue else { return copy.configValue }
        object["data"] = nil
        return .object(object)
    }

    // MARK: Changes

    /// The body as one resource, or a refusal that is audited, counted and logged (unless a dry run).
    private func decodeBody(
        _ request: Request, kind: ResourceKind, namespace: String, name: String?, action: String, _ context: AdminRequestContext
    ) async throws -> MeshResource {
        do {
            return try await Self.decodeBody(request, kind: kind, namespace: namespace, name: name)
        } catch let error as APIError where request.uri.queryParameters["dryRun"] == nil {
            let target = "\(kind.rawValue) \(namespace)/\(name ?? "?")"
            access.audit(try context.authenticatedCaller().description, action, target: target, result: "refused: \(error.message)")
            backend.recordRejection(of: target, reason: "invalid", message: error.message)
            throw error
        }
    }

    /// The body as one resource of `kind`, its namespace (and name) checked against the path.
    private static func decodeBody(_ request: Request, kind: ResourceKind, namespace: String, name: String?) async throws -> MeshResource {
        let buffer = try await request.body.collect(upTo: 1 << 20)
        let documents: [(document: Int, value: ConfigValue)]
        do {
            documents = try YAMLDocuments.parse(String(buffer: buffer), source: "request body")
        } catch {
            throw APIError.invalid(error.description)
        }
        // An object exported from a Kubernetes cluster, without what its API server set (as files
        // and meshctl apply read it).
        guard documents.count == 1, case .object(var object) = KubernetesImport.asRead(documents[0].value) else {
            throw APIError.invalid("the body must be exactly one resource (JSON or YAML object); apply several one by one")
        }
        // The path gives the namespace when the body does not.
        if case .object(var metadata)? = object["metadata"] {
            if metadata["namespace"] == nil { metadata["namespace"] = .string(namespace) }
            if case .object(var annotations)? = metadata["annotations"] {
                annotations[sourceAnnotation] = nil
                annotations[redactedAnnotation] = nil
                metadata["annotations"] = .object(annotations)
            }
            object["metadata"] = .object(metadata)
        }
        let resource: MeshResource
        do throws(ResourceDecodeError) {
            resource = try MeshResource(document: .object(object))
        } catch {
            throw APIError.invalid(ConfigLoadError(source: "request body", document: 1, decode: error).description, field: error.error.path.description)
        }
        guard resource.kind == kind else {
            throw APIError.invalid("the body is a \(resource.kind.rawValue), the path is for \(kind.plural)", field: "kind")
        }
        guard resource.metadata.namespace == namespace else {
            throw APIError.invalid("the body's namespace \(resource.metadata.namespace) differs from the path's \(namespace)", field: "metadata.namespace")
        }
        if let name, resource.metadata.name != name {
            throw APIError.invalid("the body's name \(resource.metadata.name) differs from the path's \(name)", field: "metadata.name")
        }
        return resource
    }

    /// Applies a change (or, with `?dryRun=All`, only checks it), audits it, answers.
    private func change(
        _ change: ResourceChange, _ request: Request, _ context: AdminRequestContext, action: String, success: HTTPResponse.Status
    ) throws -> Response {
        let principal = try context.authenticatedCaller()
        let dryRun = request.uri.queryParameters["dryRun"] != nil
        try access.limit(principal, request, audited: !dryRun)
        let stored: MeshResource?
        do throws(ResourceChangeError) {
            stored = try backend.apply(change, dryRun: dryRun)
        } catch {
            if !dryRun {
                access.audit(principal.description, action, target: change.key.description, result: "refused: \(error)")
                backend.recordRejection(of: change.key.description, reason: Self.reason(error), message: error.description)
            }
            switch error {
            case .conflict(let message): throw APIError(.conflict, message)
            case .notFound(let message): throw APIError.notFound(message)
            case .storage(let message): throw APIError(.serviceUnavailable, "nothing changed: \(message)")
            case .invalid(let message, let field): throw APIError.invalid(message, field: field)
            }
        }
        if !dryRun { access.audit(principal.description, action, target: change.key.description, result: "ok") }
        if let stored { return answer(stored, status: dryRun ? .ok : success) }
        return try AdminResponse.json(["deleted": change.key.description])
    }
}
