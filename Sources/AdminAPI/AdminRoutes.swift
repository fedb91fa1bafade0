public import Hummingbird
internal import MeshModel
internal import MeshConfig
internal import CertificateAuthority
internal import Foundation

/// The admin HTTP API: health, metrics, status, and read access to the mesh resources under
/// Kubernetes-style paths (`/apis/{group}/{version}/namespaces/{ns}/{plural}[/{name}]`).
public enum AdminRoutes {
    /// The version meshd reports.
    public static let version = "0.1.0"

    /// A router serving the admin API from `backend`.
    public static func router(backend: any AdminBackend) -> Router<BasicRequestContext> {
        let router = Router()
        router.get("/healthz") { _, _ in "ok\n" }
        router.get("/readyz") { _, _ -> Response in
            backend.configStatus.revision > 0 ? text("ready\n") : text("no configuration loaded yet\n", status: .serviceUnavailable)
        }
        router.get("/version") { _, _ in try json(["version": version]) }
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(string: backend.metricsText())))
        }
        router.get("/debug/config") { _, _ in try json(backend.configStatus) }
        router.get("/debug/proxies") { _, _ in try json(backend.proxies) }
        router.get("/apis/:group/:version/namespaces/:namespace/:plural") { _, context in
            let kind = try resolveKind(context)
            let namespace = try context.parameters.require("namespace")
            let items = backend.snapshot.allResources.filter { $0.kind == kind && $0.metadata.namespace == namespace }
            return try resourceJSON(.object(ConfigObject([
                ("apiVersion", .string("v1")), ("kind", .string("List")), ("items", .array(items.map(\.configValue))),
            ])))
        }
        router.get("/apis/:group/:version/namespaces/:namespace/:plural/:name") { _, context in
            let kind = try resolveKind(context)
            let key = ResourceKey(kind: kind, namespace: try context.parameters.require("namespace"), name: try context.parameters.require("name"))
            guard let resource = backend.snapshot.resources[key] else {
                throw HTTPError(.notFound, message: "\(key) not found")
            }
            return try resourceJSON(resource.configValue)
        }
        routeCA(router, backend: backend)
        return router
    }

    /// Tokens, certificates, the CA and bootstraps. Mutations and token listings need the admin
    /// token; signing a CSR needs a workload token (the certificate is for that token's identity).
    private static func routeCA(_ router: Router<BasicRequestContext>, backend: any AdminBackend) {
        router.post("/v1/tokens") { request, context -> Response in
            try requireAdmin(request, backend)
            let body = try await request.decode(as: TokenRequest.self, context: context)
            guard NameRules.isLabel(Substring(body.namespace)), NameRules.problems(name: body.serviceAccount, at: .root).isEmpty else {
                throw HTTPError(.badRequest, message: "namespace and serviceAccount must be DNS names")
            }
            let minted = try backend.mintToken(namespace: body.namespace, serviceAccount: body.serviceAccount, ttl: body.ttlSeconds.map(TimeInterval.init))
            backend.audit(who: "admin", action: "token.create", target: "\(body.namespace)/\(body.serviceAccount) id=\(minted.id)", result: "ok")
            var response = try json(minted)
            response.status = .created
            return response
        }
        router.get("/v1/tokens") { request, _ in
            try requireAdmin(request, backend)
            return try json(backend.tokens())
        }
        router.delete("/v1/tokens/:id") { request, context -> Response in
            try requireAdmin(request, backend)
            let id = try context.parameters.require("id")
            let found = try backend.revokeToken(id: id)
            backend.audit(who: "admin", action: "token.revoke", target: id, result: found ? "ok" : "not found")
            guard found else { throw HTTPError(.notFound, message: "no token \(id)") }
            return text("revoked \(id)\n")
        }
        router.get("/v1/ca") { _, _ in try json(backend.caStatus()) }
        router.post("/v1/ca/rotate-root") { request, _ -> Response in
            try requireAdmin(request, backend)
            let status: CertificateService.Status
            do throws(CAError) {
                status = try backend.rotateRoot()
            } catch {
                backend.audit(who: "admin", action: "ca.rotate-root", target: "", result: "refused: \(error.message)")
                throw HTTPError(.conflict, message: error.message)
            }
            backend.audit(who: "admin", action: "ca.rotate-root", target: "", result: "started")
            var response = try json(status)
            response.status = .accepted
            return response
        }
        router.get("/v1/ca/root") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/x-pem-file"], body: .init(byteBuffer: ByteBuffer(string: try backend.trustBundlePEM())))
        }
        router.get("/v1/certificates") { _, _ in try json(backend.issuedCertificates()) }
        router.post("/v1/certificates") { request, context -> Response in
            let body = try await request.decode(as: CSRRequest.self, context: context)
            let chain: [String]
            do throws(CAError) {
                chain = try backend.signCSR(body.csr, ttlSeconds: body.ttlSeconds ?? 0, token: bearer(request))
            } catch {
                throw HTTPError(error.code == "unauthenticated" ? .unauthorized : .badRequest, message: "certificate request refused")
            }
            return try json(["certChain": chain])
        }
        router.post("/v1/bootstrap") { request, context -> Response in
            try requireAdmin(request, backend)
            let body = try await request.decode(as: BootstrapRequest.self, context: context)
            let bootstrap: String
            do {
                bootstrap = try backend.bootstrap(body)
            } catch let error as AdminRequestError {
                throw HTTPError(error.kind == .notFound ? .notFound : .badRequest, message: error.description)
            }
            backend.audit(who: "admin", action: "bootstrap", target: body.workload, result: "ok")
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: bootstrap)))
        }
    }

    struct TokenRequest: Codable {
        var namespace: String
        var serviceAccount: String
        var ttlSeconds: Int?
    }

    struct CSRRequest: Codable {
        var csr: String
        var ttlSeconds: Int64?
    }

    static func bearer(_ request: Request) -> String? {
        guard let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer ") else { return nil }
        return String(header.dropFirst("bearer ".count)).trimmingCharacters(in: .whitespaces)
    }

    static func requireAdmin(_ request: Request, _ backend: any AdminBackend) throws {
        guard let token = bearer(request) else {
            throw HTTPError(.unauthorized, message: "this call needs the admin token: Authorization: Bearer <token from the data directory's admin-token>")
        }
        guard backend.isAdmin(token) else {
            backend.audit(who: "unknown", action: "\(request.method) \(request.uri.path)", target: "", result: "forbidden")
            throw HTTPError(.forbidden, message: "this token may not do that")
        }
    }

    private static func resolveKind(_ context: BasicRequestContext) throws -> ResourceKind {
        let group = try context.parameters.require("group")
        let version = try context.parameters.require("version")
        let plural = try context.parameters.require("plural")
        guard let kind = ResourceKind(plural: plural), kind.group == group else {
            throw HTTPError(.notFound, message: "no resource type \(plural) in \(group)")
        }
        guard kind.versions.contains(version) else {
            throw HTTPError(.notFound, message: "\(kind.rawValue) is not served as \(group)/\(version)")
        }
        return kind
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

    static func resourceJSON(_ value: ConfigValue) throws -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: ConfigJSON.encode(value, pretty: true) + "\n")))
    }
}
