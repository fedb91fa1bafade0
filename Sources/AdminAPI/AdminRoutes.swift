public import Hummingbird
internal import MeshModel
internal import MeshConfig
internal import MeshClient
internal import CertificateAuthority
internal import Foundation
internal import Logging

/// The admin HTTP API.
///
/// - Public: `/healthz`, `/readyz`, `/version`, `/openapi.json`, `/v1/ca/root` (the trust
///   anchors, public by nature).
/// - Reader or admin token: everything else that reads (`/metrics`, `/debug/*`, resources under
///   Kubernetes-style paths `/apis/{group}/{version}/namespaces/{ns}/{plural}[/{name}]`, proxy
///   status and config, describe, analyze, the CA's status and ledger).
/// - Admin token: every change (resources, tokens, bootstraps, root rotation) and the audit log.
/// - Workload token: `POST /v1/certificates` for its own identity.
///
/// Missing or unknown tokens get 401, a role that may not do it 403; changes and CSRs are rate
/// limited per caller (429); every change and every refusal of a change is audited.
public enum AdminRoutes {
    /// The version meshd reports.
    public static let version = "0.1.0"

    /// A router serving the admin API from `backend`; `limiter` bounds changes and CSRs per caller.
    public static func router(backend: any AdminBackend, limiter: RateLimiter = RateLimiter()) -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: ErrorReporting())
        let api = API(backend: backend, limiter: limiter)
        router.get("/healthz") { _, _ in text("ok\n") }
        router.get("/readyz") { _, _ -> Response in
            backend.configStatus.revision > 0 ? text("ready\n") : text("no configuration loaded yet\n", status: .serviceUnavailable)
        }
        router.get("/version") { _, _ in try json(["version": version]) }
        router.get("/openapi.json") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.json)))
        }
        router.get("/metrics") { request, _ in
            _ = try api.reader(request)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(string: backend.metricsText())))
        }
        router.get("/debug/config") { request, _ in
            _ = try api.reader(request)
            return try json(backend.configStatus)
        }
        router.get("/debug/proxies") { request, _ in
            _ = try api.reader(request)
            return try json(backend.proxies)
        }
        routeResources(router, api)
        routeOperations(router, api)
        routeCA(router, api)
        return router
    }

    // MARK: Resources

    /// Istio's kinds under `/apis/{group}/{version}`, the core Secret under `/api/v1`, as
    /// Kubernetes lays them out. Secrets are answered without their data (the annotation
    /// ``redactedAnnotation`` lists the keys) unless an admin asks for one with `?reveal=true`,
    /// which is audited.
    private static func routeResources(_ router: Router<BasicRequestContext>, _ api: API) {
        for prefix in ["/apis/:group/:version", "/api/:version"] {
            routeResources(router, api, prefix: prefix)
        }
    }

    private static func routeResources(_ router: Router<BasicRequestContext>, _ api: API, prefix: String) {
        let backend = api.backend
        router.get("\(prefix)/:plural") { request, context in
            _ = try api.reader(request)
            let kind = try resolveKind(context)
            return try api.list(backend.snapshot.allResources.filter { $0.kind == kind })
        }
        router.get("\(prefix)/namespaces/:namespace/:plural") { request, context in
            _ = try api.reader(request)
            let kind = try resolveKind(context)
            let namespace = try context.parameters.require("namespace")
            return try api.list(backend.snapshot.allResources.filter { $0.kind == kind && $0.metadata.namespace == namespace })
        }
        router.get("\(prefix)/namespaces/:namespace/:plural/:name") { request, context in
            let reveal = request.uri.queryParameters["reveal"].map { $0 == "true" } ?? false
            let principal = reveal ? try api.admin(request) : try api.reader(request)
            let key = try resolveKey(context)
            guard let resource = backend.snapshot.resources[key] else { throw APIError(.notFound, "\(key) not found") }
            guard reveal else { return try api.resource(resource) }
            guard key.kind == .secret else { throw APIError(.badRequest, "reveal applies to Secrets; \(key.kind.rawValue) has nothing hidden", field: "reveal") }
            try api.limit(principal, request)
            backend.audit(who: principal.description, action: "secret.reveal", target: key.description, result: "ok")
            return try api.resource(resource, reveal: true)
        }
        router.post("\(prefix)/namespaces/:namespace/:plural") { request, context -> Response in
            let principal = try api.admin(request)
            let kind = try resolveKind(context)
            let namespace = try context.parameters.require("namespace")
            let resource = try await api.decodeBody(request, context: context, kind: kind, namespace: namespace, name: nil)
            return try api.change(.create(resource), request: request, principal: principal, action: "resource.create", success: .created)
        }
        router.put("\(prefix)/namespaces/:namespace/:plural/:name") { request, context -> Response in
            let principal = try api.admin(request)
            let key = try resolveKey(context)
            let resource = try await api.decodeBody(request, context: context, kind: key.kind, namespace: key.namespace, name: key.name)
            return try api.change(.replace(resource, expectedVersion: resource.metadata.resourceVersion), request: request, principal: principal, action: "resource.replace", success: .ok)
        }
        router.delete("\(prefix)/namespaces/:namespace/:plural/:name") { request, context -> Response in
            let principal = try api.admin(request)
            let key = try resolveKey(context)
            let expected = request.uri.queryParameters["resourceVersion"].map(String.init)
            return try api.change(.delete(key, expectedVersion: expected), request: request, principal: principal, action: "resource.delete", success: .ok)
        }
    }

    // MARK: Operations views

    private static func routeOperations(_ router: Router<BasicRequestContext>, _ api: API) {
        let backend = api.backend
        router.get("/v1/proxies") { request, _ in
            _ = try api.reader(request)
            return try json(backend.proxies)
        }
        router.get("/v1/proxies/:id/config") { request, context -> Response in
            _ = try api.reader(request)
            let id = try context.parameters.require("id")
            guard let config = backend.proxyConfig(proxyID: id) else { throw APIError(.notFound, "no connected proxy \(id)") }
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: config)))
        }
        router.get("/v1/workloads/:namespace/:name/describe") { request, context -> Response in
            _ = try api.reader(request)
            let workload = "\(try context.parameters.require("namespace"))/\(try context.parameters.require("name"))"
            do {
                return try json(try backend.describe(workload: workload))
            } catch let error as AdminRequestError {
                throw APIError(error.kind == .notFound ? .notFound : .badRequest, error.description)
            }
        }
        router.get("/v1/analyze") { request, _ in
            _ = try api.reader(request)
            return try json(backend.analyze())
        }
        router.get("/v1/audit") { request, _ in
            _ = try api.admin(request)
            return try json(backend.auditRecords())
        }
    }

    // MARK: CA, tokens, bootstraps

    private static func routeCA(_ router: Router<BasicRequestContext>, _ api: API) {
        let backend = api.backend
        router.post("/v1/tokens") { request, context -> Response in
            let principal = try api.admin(request)
            try api.limit(principal, request)
            let body: TokenRequest
            do {
                body = try await request.decode(as: TokenRequest.self, context: context)
            } catch {
                throw APIError(.badRequest, "the body must be JSON: {\"role\": \"workload|reader|admin\", \"namespace\", \"serviceAccount\", \"ttlSeconds\"}")
            }
            let role = body.role ?? "workload"
            guard ["workload", "reader", "admin"].contains(role) else { throw APIError(.badRequest, "role must be workload, reader or admin", field: "role") }
            if role == "workload" {
                guard let namespace = body.namespace, let serviceAccount = body.serviceAccount,
                      NameRules.isLabel(Substring(namespace)), NameRules.problems(name: serviceAccount, at: .root).isEmpty
                else { throw APIError(.badRequest, "a workload token needs namespace and serviceAccount, both DNS names", field: "namespace") }
            }
            if let ttl = body.ttlSeconds, ttl <= 0 || ttl > TokenRequest.maximumTTLSeconds {
                throw APIError(.badRequest, "ttlSeconds must be between 1 and \(TokenRequest.maximumTTLSeconds) (10 years)", field: "ttlSeconds")
            }
            let minted = try backend.mintToken(role: role, namespace: body.namespace, serviceAccount: body.serviceAccount, ttl: body.ttlSeconds.map(TimeInterval.init))
            backend.audit(who: principal.description, action: "token.create", target: "\(role) \(body.namespace ?? "")/\(body.serviceAccount ?? "") id=\(minted.id)", result: "ok")
            var response = try json(minted)
            response.status = .created
            return response
        }
        router.get("/v1/tokens") { request, _ in
            _ = try api.admin(request)
            return try json(backend.tokens())
        }
        router.delete("/v1/tokens/:id") { request, context -> Response in
            let principal = try api.admin(request)
            try api.limit(principal, request)
            let id = try context.parameters.require("id")
            let found = try backend.revokeToken(id: id)
            backend.audit(who: principal.description, action: "token.revoke", target: id, result: found ? "ok" : "not found")
            guard found else { throw APIError(.notFound, "no token \(id)") }
            return try json(["revoked": id])
        }
        router.get("/v1/ca") { request, _ in
            _ = try api.reader(request)
            return try json(backend.caStatus())
        }
        router.get("/v1/ca/root") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/x-pem-file"], body: .init(byteBuffer: ByteBuffer(string: try backend.trustBundlePEM())))
        }
        router.post("/v1/ca/rotate-root") { request, _ -> Response in
            let principal = try api.admin(request)
            try api.limit(principal, request)
            let status: CertificateService.Status
            do throws(CAError) {
                status = try backend.rotateRoot()
            } catch {
                backend.audit(who: principal.description, action: "ca.rotate-root", target: "", result: "refused: \(error.message)")
                throw APIError(.conflict, error.message)
            }
            backend.audit(who: principal.description, action: "ca.rotate-root", target: "", result: "started")
            var response = try json(status)
            response.status = .accepted
            return response
        }
        router.get("/v1/certificates") { request, _ in
            _ = try api.reader(request)
            return try json(backend.issuedCertificates())
        }
        router.post("/v1/certificates") { request, context -> Response in
            // The CA authenticates the token itself, and counts and logs refusals; the caller only
            // hears that it was refused.
            try api.limit(key: backend.authenticate(bearer(request))?.description ?? "anonymous", request)
            let body: CSRRequest
            do {
                body = try await request.decode(as: CSRRequest.self, context: context)
            } catch {
                throw APIError(.badRequest, "the body must be JSON: {\"csr\": PEM, \"ttlSeconds\": N}")
            }
            let chain: [String]
            do throws(CAError) {
                chain = try backend.signCSR(body.csr, ttlSeconds: body.ttlSeconds ?? 0, token: bearer(request))
            } catch {
                throw APIError(error.code == .unauthenticated ? .unauthorized : .badRequest, "certificate request refused")
            }
            return try json(["certChain": chain])
        }
        router.post("/v1/bootstrap") { request, context -> Response in
            let principal = try api.admin(request)
            try api.limit(principal, request)
            let body: BootstrapRequest
            do {
                body = try await request.decode(as: BootstrapRequest.self, context: context)
            } catch {
                throw APIError(.badRequest, "the body must be JSON: {\"workload\": \"namespace/name\", ...}")
            }
            let bootstrap: String
            do {
                bootstrap = try backend.bootstrap(body)
            } catch let error as AdminRequestError {
                throw APIError(error.kind == .notFound ? .notFound : .badRequest, error.description)
            }
            backend.audit(who: principal.description, action: "bootstrap", target: body.workload, result: "ok")
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: bootstrap)))
        }
    }

    struct TokenRequest: Codable {
        var role: String?
        var namespace: String?
        var serviceAccount: String?
        var ttlSeconds: Int?

        /// The longest token lifetime the API mints: 10 years.
        static let maximumTTLSeconds = 10 * 365 * 86400
    }

    struct CSRRequest: Codable {
        var csr: String
        var ttlSeconds: Int64?
    }

    // MARK: Helpers

    static func bearer(_ request: Request) -> String? {
        guard let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer ") else { return nil }
        let token = String(header.dropFirst("bearer ".count)).trimmingCharacters(in: .whitespaces)
        return token.isEmpty ? nil : token
    }

    private static func resolveKind(_ context: BasicRequestContext) throws -> ResourceKind {
        let group = context.parameters.get("group") ?? ""
        let version = try context.parameters.require("version")
        let plural = try context.parameters.require("plural")
        guard let kind = ResourceKind(plural: plural), kind.group == group else {
            throw APIError(.notFound, "no resource type \(plural) in \(group.isEmpty ? "the core group (/api)" : group)")
        }
        guard kind.versions.contains(version) else {
            throw APIError(.notFound, "\(kind.rawValue) is not served as \(group)/\(version)")
        }
        return kind
    }

    private static func resolveKey(_ context: BasicRequestContext) throws -> ResourceKey {
        ResourceKey(kind: try resolveKind(context), namespace: try context.parameters.require("namespace"), name: try context.parameters.require("name"))
    }

    static func text(_ body: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    static func json(_ value: some Encodable) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        let data = try encoder.encode(value)
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func resourceJSON(_ value: ConfigValue, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: ConfigJSON.encode(value, pretty: true) + "\n")))
    }
}


/// The shared pieces of the route handlers: authentication, limits, bodies, changes.
struct API: Sendable {
    let backend: any AdminBackend
    let limiter: RateLimiter

    /// The caller, or 401.
    func authenticated(_ request: Request) throws -> Principal {
        guard let token = AdminRoutes.bearer(request) else {
            throw APIError(.unauthorized, "this call needs a token: Authorization: Bearer <token> (the admin token is in meshd's data directory; meshctl token create --role reader makes a read-only one)")
        }
        guard let principal = backend.authenticate(token) else {
            throw APIError(.unauthorized, "unknown, revoked or expired token")
        }
        return principal
    }

    /// A reader or admin, or 401/403.
    func reader(_ request: Request) throws -> Principal {
        let principal = try authenticated(request)
        if case .workload = principal { throw APIError(.forbidden, "a workload token may only ask for its own certificate") }
        return principal
    }

    /// An admin, or 401/403 (audited).
    func admin(_ request: Request) throws -> Principal {
        let principal = try authenticated(request)
        guard case .admin = principal else {
            backend.audit(who: principal.description, action: "\(request.method) \(request.uri.path)", target: "", result: "forbidden")
            throw APIError(.forbidden, "a \(principal.role) token may not change anything")
        }
        return principal
    }

    /// 429 with `Retry-After` when the caller is over its rate; 503 when the change could not be
    /// audited (`audited`: the audit log is fail-closed, as Vault's: no change without its line).
    func limit(_ principal: Principal, _ request: Request, audited: Bool = true) throws {
        try limit(key: principal.description, request)
        if audited, let problem = backend.auditProblem() {
            throw APIError(.serviceUnavailable, "nothing changed: the audit log cannot be written (\(problem))")
        }
    }

    /// 429 with `Retry-After` when `key` is over its rate.
    func limit(key: String, _ request: Request) throws {
        guard let wait = limiter.admit(key) else { return }
        backend.audit(who: key, action: "\(request.method) \(request.uri.path)", target: "", result: "rate limited")
        let seconds = max(1, Int(wait.rounded(.up)))
        throw APIError(
            .tooManyRequests, "too many changes; slow down (limit: \(limiter.ratePerSecond)/s, burst \(limiter.burst)); retry after \(seconds) s",
            headers: [.retryAfter: String(seconds)])
    }

    func list(_ items: [MeshResource]) throws -> Response {
        AdminRoutes.resourceJSON(.object(ConfigObject([
            ("apiVersion", .string("v1")), ("kind", .string("List")), ("items", .array(items.map { annotated($0) })),
        ])))
    }

    func resource(_ resource: MeshResource, status: HTTPResponse.Status = .ok, reveal: Bool = false) throws -> Response {
        AdminRoutes.resourceJSON(annotated(resource, reveal: reveal), status: status)
    }

    /// The resource as answered: with where it comes from, and a Secret without its data unless
    /// `reveal`.
    private func annotated(_ resource: MeshResource, reveal: Bool = false) -> ConfigValue {
        var copy = resource
        if let source = backend.source(of: resource.key) { copy.metadata.annotations[sourceAnnotation] = source }
        guard case .secret(let secret) = resource.spec, !reveal else { return copy.configValue }
        copy.metadata.annotations[redactedAnnotation] = secret.data.keys.sorted().joined(separator: ",")
        guard case .object(var object) = copy.configValue else { return copy.configValue }
        object["data"] = nil
        return .object(object)
    }

    /// The body as one resource of `kind`, its namespace (and name) checked against the path.
    func decodeBody(_ request: Request, context: BasicRequestContext, kind: ResourceKind, namespace: String, name: String?) async throws -> MeshResource {
        let buffer = try await request.body.collect(upTo: 1 << 20)
        let text = String(buffer: buffer)
        let documents: [(document: Int, value: ConfigValue)]
        do {
            documents = try YAMLDocuments.parse(text, source: "request body")
        } catch {
            throw APIError(.badRequest, error.description)
        }
        guard documents.count == 1, case .object(var object) = documents[0].value else {
            throw APIError(.badRequest, "the body must be exactly one resource (JSON or YAML object); apply several one by one")
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
            throw APIError(.badRequest, ConfigLoadError(source: "request body", document: 1, decode: error).description, field: error.error.path.description)
        }
        guard resource.kind == kind else {
            throw APIError(.badRequest, "the body is a \(resource.kind.rawValue), the path is for \(kind.plural)", field: "kind")
        }
        guard resource.metadata.namespace == namespace else {
            throw APIError(.badRequest, "the body's namespace \(resource.metadata.namespace) differs from the path's \(namespace)", field: "metadata.namespace")
        }
        if let name, resource.metadata.name != name {
            throw APIError(.badRequest, "the body's name \(resource.metadata.name) differs from the path's \(name)", field: "metadata.name")
        }
        return resource
    }

    /// Applies a change (or, with `?dryRun=All`, only checks it), audits it, answers.
    func change(_ change: ResourceChange, request: Request, principal: Principal, action: String, success: HTTPResponse.Status) throws -> Response {
        let dryRun = request.uri.queryParameters["dryRun"] != nil
        try limit(principal, request, audited: !dryRun)
        let stored: MeshResource?
        do throws(ResourceChangeError) {
            stored = try backend.apply(change, dryRun: dryRun)
        } catch {
            if !dryRun { backend.audit(who: principal.description, action: action, target: change.key.description, result: "refused: \(error)") }
            switch error {
            case .conflict(let message): throw APIError(.conflict, message)
            case .notFound(let message): throw APIError(.notFound, message)
            case .storage(let message): throw APIError(.serviceUnavailable, "nothing changed: \(message)")
            case .invalid(let message, let field): throw APIError(.badRequest, message, field: field)
            }
        }
        if !dryRun { backend.audit(who: principal.description, action: action, target: change.key.description, result: "ok") }
        if let stored { return try resource(stored, status: dryRun ? .ok : success) }
        return try AdminRoutes.json(["deleted": change.key.description])
    }
}

/// An error answer: `{"code": 409, "reason": "Conflict", "message": "...", "field": "spec.hosts"}`.
struct APIError: HTTPResponseError {
    let status: HTTPResponse.Status
    let message: String
    let field: String?
    let headers: HTTPFields

    init(_ status: HTTPResponse.Status, _ message: String, field: String? = nil, headers: HTTPFields = [:]) {
        self.status = status
        self.message = message
        self.field = field
        self.headers = headers
    }

    struct Body: Encodable {
        var code: Int
        var reason: String
        var message: String
        var field: String?
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = try AdminRoutes.json(Body(code: status.code, reason: status.reasonPhrase, message: message, field: field))
        response.status = status
        response.headers.append(contentsOf: headers)
        return response
    }
}

/// Every 5xx answer carries a reason and leaves a log line: errors that are not API errors (a
/// store that cannot be written, ...) become 500 with their description instead of an empty body.
struct ErrorReporting<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            let response = try await next(request, context)
            if response.status.code >= 500 {
                context.logger.error("admin API answered \(response.status.code)", metadata: ["method": "\(request.method)", "path": "\(request.uri.path)"])
            }
            return response
        } catch let error as APIError {
            if error.status.code >= 500 {
                context.logger.error("admin API answered \(error.status.code)", metadata: [
                    "method": "\(request.method)", "path": "\(request.uri.path)", "reason": "\(error.message)",
                ])
            }
            throw error
        } catch let error as any HTTPResponseError {
            throw error
        } catch {
            context.logger.error("admin API request failed", metadata: ["method": "\(request.method)", "path": "\(request.uri.path)", "error": "\(error)"])
            throw APIError(.internalServerError, "\(request.method) \(request.uri.path) failed: \(error)")
        }
    }
}
