public import Hummingbird
internal import MeshConfig
internal import MeshModel
internal import MeshTranslation

/// The connected proxies, what meshd sent them, what applies to a workload and the analysis of
/// the served configuration; for readers and admins.
struct ProxyRoutes {
    let backend: any ProxyBackend
    let access: Access

    var collection: RouteCollection<AdminRequestContext> {
        let routes = RouteCollection(context: AdminRequestContext.self)
        let readers = access.group(routes, .reader)
        for path in ["/v1/proxies", "/debug/proxies"] {
            readers.get(RouterPath(path)) { _, _ in try AdminResponse.json(backend.proxies) }
        }
        readers.get("/v1/proxies/:id/config") { _, context -> Response in
            let id = try context.parameters.require("id")
            guard let config = backend.proxyConfig(proxyID: id) else { throw APIError.notFound("no connected proxy \(id)") }
            return AdminResponse.json(text: config)
        }
        readers.get("/v1/workloads/:namespace/:name/describe") { _, context -> Response in
            let workload = "\(try context.parameters.require("namespace"))/\(try context.parameters.require("name"))"
            return try AdminResponse.json(try backend.describe(workload: workload))
        }
        readers.get("/v1/workloads/:namespace/:name/sidecar-suggestion") { _, context -> Response in
            let workload = "\(try context.parameters.require("namespace"))/\(try context.parameters.require("name"))"
            return try AdminResponse.json(try backend.sidecarSuggestion(workload: workload))
        }
        readers.get("/v1/analyze") { _, _ in try AdminResponse.json(backend.analyze()) }
        // Resources to analyze with the served ones (YAML or JSON, several documents, Lists).
        readers.post("/v1/analyze") { request, context -> Response in
            try access.limit(key: try context.authenticatedCaller().description, request)
            return try AdminResponse.json(backend.analyze(adding: try await Self.candidates(request)))
        }
        // What the resources in the body would change in each proxy's configuration.
        readers.post("/v1/diff") { request, context -> Response in
            try access.limit(key: try context.authenticatedCaller().description, request)
            return try AdminResponse.json(backend.diff(adding: try await Self.candidates(request)))
        }
        // Where one request would go and what would answer it.
        readers.post("/v1/simulate") { request, context -> Response in
            try access.limit(key: try context.authenticatedCaller().description, request)
            let body: RequestSimulation.Request
            do {
                body = try await request.decode(as: RequestSimulation.Request.self, context: context)
            } catch {
                throw APIError.invalid("the body must be JSON: {\"from\": \"namespace/workload\", \"url\": \"http://host:port/path\", \"method\", \"headers\": {name: value}}")
            }
            return try AdminResponse.json(try backend.simulate(body))
        }
        return routes
    }

    /// The resources of a request body (YAML or JSON, several documents, Lists), checked.
    static func candidates(_ request: Request) async throws -> [MeshResource] {
        let buffer = try await request.body.collect(upTo: 8 << 20)
        do throws(ConfigLoadError) {
            return try ResourceDocuments.decode(String(buffer: buffer), source: "request body").map(\.resource)
        } catch {
            throw APIError.invalid(error.description, field: error.path)
        }
    }
}
