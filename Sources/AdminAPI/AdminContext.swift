public import Hummingbird
internal import Foundation

/// The admin API's request context: Hummingbird's, plus the caller that ``Authentication`` found.
public struct AdminRequestContext: RequestContext {
    /// Hummingbird's part.
    public var coreContext: CoreRequestContextStorage
    /// The bearer token, when the request carries one.
    public var token: String?
    /// Who the token belongs to; `nil` for no token or an unknown, revoked or expired one.
    public var caller: Principal?

    /// A context for one request.
    public init(source: Source) {
        coreContext = .init(source: source)
    }

    /// The caller, or 401 saying what is missing.
    func authenticatedCaller() throws -> Principal {
        guard token != nil else {
            throw APIError(.unauthorized, "this call needs a token: Authorization: Bearer <token> (the admin token is in meshd's data directory; meshctl token create --role reader makes a read-only one)")
        }
        guard let caller else { throw APIError(.unauthorized, "unknown, revoked or expired token") }
        return caller
    }
}

/// Puts the bearer token and its caller into the context of every request; refuses nothing
/// (``Require`` does, per route).
struct Authentication: RouterMiddleware {
    let callers: any CallerBackend

    func handle(_ request: Request, context: AdminRequestContext, next: (Request, AdminRequestContext) async throws -> Response) async throws -> Response {
        var context = context
        context.token = Self.bearer(request)
        context.caller = context.token.flatMap { callers.authenticate($0) }
        return try await next(request, context)
    }

    static func bearer(_ request: Request) -> String? {
        guard let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer ") else { return nil }
        let token = String(header.dropFirst("bearer ".count)).trimmingCharacters(in: .whitespaces)
        return token.isEmpty ? nil : token
    }
}

/// What the routes share: role checks, per-caller rate limits and the audit log.
struct Access: Sendable {
    /// Who may call a route.
    enum Role: Sendable {
        /// Readers and admins.
        case reader
        /// Admins only; other callers' attempts are audited.
        case admin
    }

    let callers: any CallerBackend
    let limiter: RateLimiter

    /// The caller if it has `role`, else 401 or 403.
    func require(_ role: Role, _ request: Request, _ context: AdminRequestContext) throws -> Principal {
        let principal = try context.authenticatedCaller()
        switch (role, principal) {
        case (_, .admin), (.reader, .reader):
            return principal
        case (.reader, .workload):
            throw APIError(.forbidden, "a workload token may only ask for its own certificate")
        case (.admin, _):
            audit(principal.description, "\(request.method) \(request.uri.path)", result: "forbidden")
            throw APIError(.forbidden, "a \(principal.role) token may not change anything")
        }
    }

    /// Records an action in the audit log.
    func audit(_ who: String, _ action: String, target: String = "", result: String) {
        callers.audit(who: who, action: action, target: target, result: result)
    }

    /// 429 with `Retry-After` when the caller is over its rate; 503 when the change could not be
    /// audited (`audited`: the audit log is fail-closed, as Vault's: no change without its line).
    func limit(_ principal: Principal, _ request: Request, audited: Bool = true) throws {
        try limit(key: principal.description, request)
        if audited, let problem = callers.auditProblem() {
            throw APIError(.serviceUnavailable, "nothing changed: the audit log cannot be written (\(problem))")
        }
    }

    /// 429 with `Retry-After` when `key` is over its rate.
    func limit(key: String, _ request: Request) throws {
        guard let wait = limiter.admit(key) else { return }
        audit(key, "\(request.method) \(request.uri.path)", result: "rate limited")
        let seconds = max(1, Int(wait.rounded(.up)))
        throw APIError(
            .tooManyRequests, "too many changes; slow down (limit: \(limiter.ratePerSecond)/s, burst \(limiter.burst)); retry after \(seconds) s",
            headers: [.retryAfter: String(seconds)])
    }

    /// Routes added to the returned group answer only callers with `role`.
    func group(_ routes: some RouterMethods<AdminRequestContext>, _ role: Role) -> RouterGroup<AdminRequestContext> {
        routes.group().add(middleware: Require(role: role, access: self))
    }
}

/// Lets a request through to its route only when its caller has the route's role.
struct Require: RouterMiddleware {
    let role: Access.Role
    let access: Access

    func handle(_ request: Request, context: AdminRequestContext, next: (Request, AdminRequestContext) async throws -> Response) async throws -> Response {
        _ = try access.require(role, request, context)
        return try await next(request, context)
    }
}
