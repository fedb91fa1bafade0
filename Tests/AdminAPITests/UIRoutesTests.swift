import AdminAPI
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

@Suite("The service graph page: a login form without a token, a cookie that keeps it, data only with it")
struct UIRoutesTests {
    static func app() -> Application<RouterResponder<AdminRequestContext>> {
        Application(router: AdminRoutes.router(backend: FakeBackend(), limiter: RateLimiter(ratePerSecond: 1000, burst: 1000)))
    }

    static func login(_ client: some TestClientProtocol, token: String, origin: String? = nil) async throws -> TestResponse {
        var headers: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]
        if let origin { headers[.origin] = origin }
        return try await client.execute(uri: "/ui/login", method: .post, headers: headers, body: ByteBuffer(string: "token=" + token))
    }

    @Test("without a token: the login form only, and the data calls answer 401 without data")
    func anonymous() async throws {
        try await Self.app().test(.router) { client in
            let page = try await client.execute(uri: "/ui/graph", method: .get)
            let html = String(buffer: page.body)
            #expect(page.status == .ok)
            #expect(html.contains(#"<form method="post" action="/ui/login""#) && !html.contains("graph.js"))
            #expect(page.headers[.contentSecurityPolicy]?.contains("script-src 'self'") == true)
            for path in ["/ui/api/graph", "/ui/api/edge?id=a%3Eb"] {
                let data = try await client.execute(uri: path, method: .get)
                #expect(data.status == .unauthorized, "\(path)")
                #expect(!String(buffer: data.body).contains("workload:shop/web"))
            }
            let workload = try await client.execute(uri: "/ui/api/graph", method: .get, headers: [.cookie: "meshd_ui=workload"])
            #expect(workload.status == .unauthorized, "a workload token reads no graph")
        }
    }

    @Test("a reader's token: 303 to the graph with an HttpOnly, SameSite=Strict cookie, which then reads the graph and an edge")
    func signedIn() async throws {
        try await Self.app().test(.router) { client in
            for refused in ["bogus", "workload", ""] {
                let response = try await Self.login(client, token: refused)
                #expect(response.status == .unauthorized && response.headers[.setCookie] == nil, "\(refused)")
                #expect(String(buffer: response.body).contains("was not accepted"))
            }
            let foreign = try await Self.login(client, token: "reader", origin: "http://evil.example")
            #expect(foreign.status == .forbidden && foreign.headers[.setCookie] == nil)

            let response = try await Self.login(client, token: "reader")
            #expect(response.status == .seeOther && response.headers[.location] == "/ui/graph")
            let cookie = try #require(response.headers[.setCookie])
            #expect(cookie.hasPrefix("meshd_ui=reader;") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Path=/ui"), "\(cookie)")
            let headers: HTTPFields = [.cookie: "other=1; meshd_ui=reader"]
            let page = try await client.execute(uri: "/ui/graph", method: .get, headers: headers)
            #expect(String(buffer: page.body).contains(#"<script src="/ui/graph.js"></script>"#))
            let graph = try await client.execute(uri: "/ui/api/graph", method: .get, headers: headers)
            #expect(graph.status == .ok && String(buffer: graph.body).contains("workload:shop/web"))
            #expect(try await client.execute(uri: "/ui/api/edge?id=a%3Eb", method: .get, headers: headers).status == .ok)
            #expect(try await client.execute(uri: "/ui/api/edge?id=none", method: .get, headers: headers).status == .notFound)
            let out = try await client.execute(uri: "/ui/logout", method: .post, headers: headers)
            #expect(out.headers[.setCookie]?.contains("Max-Age=0") == true)
        }
    }

    @Test("the page's own assets: served without a token, script that never writes markup, no inline script or style")
    func assets() async throws {
        try await Self.app().test(.router) { client in
            let script = try await client.execute(uri: "/ui/graph.js", method: .get)
            let text = String(buffer: script.body)
            #expect(script.status == .ok && script.headers[.contentType]?.hasPrefix("text/javascript") == true)
            for sink in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"] {
                #expect(!text.contains(sink), "\(sink)")
            }
            #expect(try await client.execute(uri: "/ui/graph.css", method: .get).status == .ok)
            let page = String(buffer: try await client.execute(uri: "/ui/graph", method: .get, headers: [.cookie: "meshd_ui=admin"]).body)
            #expect(!page.contains("<script>") && !page.contains("style="), "no inline script or style: the policy would block it")
        }
    }
}
