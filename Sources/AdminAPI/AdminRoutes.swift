public import Hummingbird

/// The admin HTTP API: route collections, each over its own backend protocol, behind one
/// authentication middleware that puts the caller in the request context (``AdminRequestContext``).
///
/// - Public: `/healthz`, `/readyz`, `/version`, `/openapi.json`, `/v1/ca/root` (the trust
///   anchors, public by nature).
/// - Reader or admin token: everything else that reads (`/metrics`, `/debug/*`, resources under
///   Kubernetes-style paths `/apis/{group}/{version}/namespaces/{ns}/{plural}[/{name}]`, proxy
///   status and config, describe, analyze, the CA's status and ledger).
/// - Admin token: every change (resources, tokens, bootstraps, root rotation) and the audit log.
/// - Workload token: `POST /v1/certificates` for its own identity.
/// - The service graph page `/ui/graph` (``UIRoutes``): a login form that keeps a reader or admin
///   token in a cookie; its data only for that cookie.
///
/// Missing or unknown tokens get 401, a role that may not do it 403; changes and CSRs are rate
/// limited per caller (429); every change and every refusal of a change is audited. Every
/// refusal is an ``APIError`` with a JSON body.
public enum AdminRoutes {
    /// The version meshd reports.
    public static let version = "0.1.0"

    /// A router serving the admin API from `backend`; `limiter` bounds changes and CSRs per caller.
    public static func router(backend: any AdminBackend, limiter: RateLimiter = RateLimiter()) -> Router<AdminRequestContext> {
        let router = Router(context: AdminRequestContext.self)
        router.add(middleware: ErrorReporting())
        router.add(middleware: Authentication(callers: backend))
        let access = Access(callers: backend, limiter: limiter)
        router.addRoutes(DebugRoutes(backend: backend, access: access).collection)
        router.addRoutes(ResourceRoutes(backend: backend, access: access).collection)
        router.addRoutes(ProxyRoutes(backend: backend, access: access).collection)
        router.addRoutes(TokenRoutes(backend: backend, access: access).collection)
        router.addRoutes(CARoutes(backend: backend, access: access).collection)
        router.addRoutes(CertificateRoutes(backend: backend, access: access).collection)
        router.addRoutes(UIRoutes(backend: backend).collection)
        return router
    }
}
