public import Hummingbird
internal import CertificateAuthority

/// The CA: its status (readers), its trust anchors (anyone: public by nature) and root rotation
/// (admins, rate limited and audited).
struct CARoutes {
    let backend: any CABackend
    let access: Access

    var collection: RouteCollection<AdminRequestContext> {
        let routes = RouteCollection(context: AdminRequestContext.self)
        routes.get("/v1/ca/root") { _, _ in
            AdminResponse.text(try backend.trustBundlePEM(), contentType: "application/x-pem-file")
        }
        access.group(routes, .reader).get("/v1/ca") { _, _ in try AdminResponse.json(backend.caStatus()) }
        access.group(routes, .admin).post("/v1/ca/rotate-root") { request, context -> Response in
            let principal = try context.authenticatedCaller()
            try access.limit(principal, request)
            let status: CertificateService.Status
            do throws(CAError) {
                status = try backend.rotateRoot()
            } catch {
                access.audit(principal.description, "ca.rotate-root", result: "refused: \(error.message)")
                throw APIError(.conflict, error.message)
            }
            access.audit(principal.description, "ca.rotate-root", result: "started")
            return try AdminResponse.json(status, status: .accepted)
        }
        return routes
    }
}
