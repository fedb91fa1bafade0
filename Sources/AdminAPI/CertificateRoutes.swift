public import Hummingbird
internal import CertificateAuthority

/// Certificates: the issuance ledger (readers) and CSRs (`POST /v1/certificates`, a workload's
/// token for its own identity).
struct CertificateRoutes {
    let backend: any CertificateBackend
    let access: Access

    struct CSRRequest: Codable {
        var csr: String
        var ttlSeconds: Int64?
    }

    var collection: RouteCollection<AdminRequestContext> {
        let routes = RouteCollection(context: AdminRequestContext.self)
        access.group(routes, .reader).get("/v1/certificates") { _, _ in try AdminResponse.json(backend.issuedCertificates()) }
        // The CA authenticates the token itself, and counts and logs refusals; the caller only
        // hears that it was refused.
        routes.post("/v1/certificates") { request, context -> Response in
            try access.limit(key: context.caller?.description ?? "anonymous", request)
            let body: CSRRequest
            do {
                body = try await request.decode(as: CSRRequest.self, context: context)
            } catch {
                throw APIError.invalid("the body must be JSON: {\"csr\": PEM, \"ttlSeconds\": N}")
            }
            let chain: [String]
            do throws(CAError) {
                chain = try backend.signCSR(body.csr, ttlSeconds: body.ttlSeconds ?? 0, token: context.token)
            } catch {
                throw APIError(error.code == .unauthenticated ? .unauthorized : .badRequest, "certificate request refused")
            }
            return try AdminResponse.json(["certChain": chain])
        }
        return routes
    }
}
