public import Hummingbird
internal import MeshClient

/// Health, version and the API's description (anyone); metrics and the configuration source's
/// state (readers); the audit log (admins).
struct DebugRoutes {
    let backend: any DebugBackend
    let access: Access

    var collection: RouteCollection<AdminRequestContext> {
        let routes = RouteCollection(context: AdminRequestContext.self)
        routes.get("/healthz") { _, _ in AdminResponse.text("ok\n") }
        routes.get("/readyz") { _, _ -> Response in
            backend.configStatus.revision > 0 ? AdminResponse.text("ready\n") : AdminResponse.text("no configuration loaded yet\n", status: .serviceUnavailable)
        }
        routes.get("/version") { _, _ in try AdminResponse.json(["version": AdminRoutes.version]) }
        routes.get("/openapi.json") { _, _ in AdminResponse.json(text: OpenAPIDocument.json) }
        let readers = access.group(routes, .reader)
        readers.get("/metrics") { _, _ in
            AdminResponse.text(backend.metricsText(), contentType: "text/plain; version=0.0.4")
        }
        readers.get("/debug/config") { _, _ in try AdminResponse.json(backend.configStatus) }
        access.group(routes, .admin).get("/v1/audit") { _, _ in try AdminResponse.json(backend.auditRecords()) }
        return routes
    }
}
