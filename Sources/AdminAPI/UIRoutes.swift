internal import Hummingbird
internal import Foundation
internal import MeshClient

/// The service graph page (`/ui/graph`, opened by `meshctl dashboard`), served by meshd with
/// everything it loads: no CDN, no Internet.
///
/// - Without a reader or admin token the page is only a login form. The token is posted once and
///   kept in a cookie (`HttpOnly`, `SameSite=Strict`, path `/ui`), which the page's data calls
///   (`/ui/api/graph`, `/ui/api/edge`) carry; without it they answer 401 and no data.
/// - Every page and asset is sent with a content security policy that allows only meshd's own
///   script and style (no inline script), and the page writes every name as text, never as
///   markup: a resource name or label value cannot run script.
struct UIRoutes {
    let backend: any CallerBackend & GraphBackend

    /// The cookie that keeps the token.
    static let cookieName = "meshd_ui"
    static let securityHeaders: HTTPFields = [
        .contentSecurityPolicy: "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        .xContentTypeOptions: "nosniff",
        .cacheControl: "no-store",
        HTTPFields.Element.Name("Referrer-Policy")!: "same-origin",
    ]

    var collection: RouteCollection<AdminRequestContext> {
        let routes = RouteCollection(context: AdminRequestContext.self)
        routes.get("/ui") { _, _ in Self.redirect(to: "/ui/graph") }
        routes.get("/ui/graph") { request, context -> Response in
            Self.page(reader(request, context) != nil ? UIAssets.graphPage : UIAssets.loginPage(message: nil))
        }
        routes.get("/ui/graph.js") { _, _ in Self.asset(UIAssets.script, type: "text/javascript; charset=utf-8") }
        routes.get("/ui/graph.css") { _, _ in Self.asset(UIAssets.style, type: "text/css; charset=utf-8") }
        routes.post("/ui/login") { request, _ -> Response in
            // A browser says where a form was sent from: only meshd's own page may sign in.
            if let origin = request.headers[.origin], !Self.sameOrigin(origin, authority: request.head.authority) {
                return Self.page(UIAssets.loginPage(message: "This form must be sent from meshd's own page."), status: .forbidden)
            }
            let body = try await request.body.collect(upTo: 16 << 10)
            let token = Self.formValue("token", in: String(buffer: body))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            switch backend.authenticate(token) {
            case .reader?, .admin?:
                var response = Self.redirect(to: "/ui/graph")
                response.headers[.setCookie] = "\(Self.cookieName)=\(token); Path=/ui; HttpOnly; SameSite=Strict; Max-Age=28800"
                return response
            default:
                return Self.page(UIAssets.loginPage(message: "That token was not accepted: it needs a reader or admin token (meshctl token create --role reader)."), status: .unauthorized)
            }
        }
        routes.post("/ui/logout") { _, _ -> Response in
            var response = Self.redirect(to: "/ui/graph")
            response.headers[.setCookie] = "\(Self.cookieName)=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0"
            return response
        }
        routes.get("/ui/api/graph") { request, context -> Response in
            guard reader(request, context) != nil else { throw Self.unauthorized }
            return try Self.secured(AdminResponse.json(backend.serviceGraph()))
        }
        routes.get("/ui/api/edge") { request, context -> Response in
            guard reader(request, context) != nil else { throw Self.unauthorized }
            guard let id = request.uri.queryParameters["id"].map(String.init), let series = backend.edgeSeries(id: id) else {
                throw APIError.notFound("no such edge")
            }
            return try Self.secured(AdminResponse.json(series))
        }
        return routes
    }

    /// The reader or admin behind the request's cookie (or bearer token), if any.
    private func reader(_ request: Request, _ context: AdminRequestContext) -> Principal? {
        let principal = Self.cookieToken(request).flatMap { backend.authenticate($0) } ?? context.caller
        switch principal {
        case .reader?, .admin?: return principal
        default: return nil
        }
    }

    /// Whether `origin` is meshd's own address (`authority`), over http or https.
    static func sameOrigin(_ origin: String, authority: String?) -> Bool {
        guard let authority else { return false }
        return origin == "http://" + authority || origin == "https://" + authority
    }

    /// The token in the request's `meshd_ui` cookie.
    static func cookieToken(_ request: Request) -> String? {
        for header in request.headers[values: .cookie] {
            for part in header.split(separator: ";") {
                let pair = part.trimmingCharacters(in: .whitespaces)
                if pair.hasPrefix(cookieName + "=") {
                    let value = String(pair.dropFirst(cookieName.count + 1))
                    return value.isEmpty ? nil : value
                }
            }
        }
        return nil
    }

    /// A value of an `application/x-www-form-urlencoded` body.
    static func formValue(_ name: String, in body: String) -> String? {
        for pair in body.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, parts[0] == name else { continue }
            return String(parts[1]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding
        }
        return nil
    }

    static func page(_ html: String, status: HTTPResponse.Status = .ok) -> Response {
        secured(AdminResponse.text(html, status: status, contentType: "text/html; charset=utf-8"))
    }

    static func asset(_ text: String, type: String) -> Response {
        secured(AdminResponse.text(text, contentType: type))
    }

    static func redirect(to path: String) -> Response {
        secured(Response(status: .seeOther, headers: [.location: path]))
    }

    static let unauthorized = APIError(.unauthorized, "sign in with a reader or admin token at /ui/graph (or send one as Authorization: Bearer)")

    static func secured(_ response: Response) -> Response {
        var response = response
        for field in securityHeaders { response.headers[field.name] = field.value }
        return response
    }
}
