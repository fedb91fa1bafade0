public import Hummingbird
internal import MeshModel
internal import MeshClient
internal import Foundation

/// Tokens (mint, list, revoke) and bootstraps, which mint one; for admins, rate limited and
/// audited.
struct TokenRoutes {
    let backend: any TokenBackend
    let access: Access

    struct TokenRequest: Codable {
        var role: String?
        var namespace: String?
        var serviceAccount: String?
        var ttlSeconds: Int?
        var workloadGroup: String?

        /// The longest token lifetime the API mints: 10 years.
        static let maximumTTLSeconds = 10 * 365 * 86400
    }

    var collection: RouteCollection<AdminRequestContext> {
        let routes = RouteCollection(context: AdminRequestContext.self)
        let admins = access.group(routes, .admin)
        admins.post("/v1/tokens") { request, context -> Response in
            let principal = try context.authenticatedCaller()
            try access.limit(principal, request)
            let body: TokenRequest
            do {
                body = try await request.decode(as: TokenRequest.self, context: context)
            } catch {
                throw APIError.invalid("the body must be JSON: {\"role\": \"workload|reader|admin\", \"namespace\", \"serviceAccount\", \"workloadGroup\", \"ttlSeconds\"}")
            }
            let role = try Self.check(body)
            let minted = try backend.mintToken(
                role: role, namespace: body.namespace, serviceAccount: body.serviceAccount, workloadGroup: body.workloadGroup, ttl: body.ttlSeconds.map(TimeInterval.init))
            let scope = minted.workloadGroup.map { " group=\($0)" } ?? ""
            access.audit(principal.description, "token.create", target: "\(role) \(minted.namespace ?? "")/\(minted.serviceAccount ?? "")\(scope) id=\(minted.id)", result: "ok")
            return try AdminResponse.json(minted, status: .created)
        }
        admins.get("/v1/tokens") { _, _ in try AdminResponse.json(backend.tokens()) }
        admins.delete("/v1/tokens/:id") { request, context -> Response in
            let principal = try context.authenticatedCaller()
            try access.limit(principal, request)
            let id = try context.parameters.require("id")
            let found = try backend.revokeToken(id: id)
            access.audit(principal.description, "token.revoke", target: id, result: found ? "ok" : "not found")
            guard found else { throw APIError.notFound("no token \(id)") }
            return try AdminResponse.json(["revoked": id])
        }
        admins.post("/v1/bootstrap") { request, context -> Response in
            let principal = try context.authenticatedCaller()
            try access.limit(principal, request)
            let body: BootstrapRequest
            do {
                body = try await request.decode(as: BootstrapRequest.self, context: context)
            } catch {
                throw APIError.invalid("the body must be JSON: {\"workload\": \"namespace/name\", ...} or {\"workloadGroup\": \"namespace/name\", \"address\": \"IP\", ...}")
            }
            let bootstrap = try backend.bootstrap(body)
            access.audit(principal.description, "bootstrap", target: body.workload ?? "group \(body.workloadGroup ?? "") address \(body.address ?? "")", result: "ok")
            return AdminResponse.json(text: bootstrap)
        }
        return routes
    }

    /// The role a token request asks for, once the request is valid.
    private static func check(_ body: TokenRequest) throws -> String {
        let role = body.role ?? "workload"
        guard ["workload", "reader", "admin"].contains(role) else { throw APIError.invalid("role must be workload, reader or admin", field: "role") }
        if let group = body.workloadGroup {
            let parts = group.split(separator: "/", omittingEmptySubsequences: false)
            guard role == "workload", parts.count == 2, parts.allSatisfy({ NameRules.isLabel($0) }) else {
                throw APIError.invalid("workloadGroup must be namespace/name of a WorkloadGroup, on a workload token", field: "workloadGroup")
            }
        } else if role == "workload" {
            guard let namespace = body.namespace, let serviceAccount = body.serviceAccount,
                  NameRules.isLabel(Substring(namespace)), NameRules.problems(name: serviceAccount, at: .root).isEmpty
            else { throw APIError.invalid("a workload token needs namespace and serviceAccount, both DNS names", field: "namespace") }
        }
        if let ttl = body.ttlSeconds, ttl <= 0 || ttl > TokenRequest.maximumTTLSeconds {
            throw APIError.invalid("ttlSeconds must be between 1 and \(TokenRequest.maximumTTLSeconds) (10 years)", field: "ttlSeconds")
        }
        return role
    }
}
