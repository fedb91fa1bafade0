import AdminAPI
import MeshClient
import CertificateAuthority
import Foundation
import Hummingbird
import HummingbirdTesting
import MeshConfig
import MeshModel
import MeshTranslation
import Synchronization
import Testing

/// A backend that answers from fixed values and records what the routes ask of it.
final class FakeBackend: AdminBackend {
    let audits = Mutex<[AuditRecord]>([])
    let applied = Mutex<[ResourceKey]>([])
    let dryRuns = Mutex<[Bool]>([])
    let analyzed = Mutex<[ResourceKey]>([])
    let resources: [MeshResource]
    let auditBroken: Bool

    init(resources: [MeshResource] = [], auditBroken: Bool = false) {
        self.resources = resources
        self.auditBroken = auditBroken
    }

    var snapshot: MeshSnapshot { MeshSnapshot(revision: 1, resources: resources) }
    var configStatus: ConfigStatus { ConfigStatus(revision: 1, resources: resources.count, configDirectory: nil, rejectedChanges: 0, lastRejection: nil) }
    var proxies: [ProxyStatus] { [] }
    func metricsText() -> String { "meshd_up 1\n" }
    func serviceGraph() -> ServiceGraph {
        ServiceGraph(
            generatedAt: 0, windowSeconds: 60, namespaces: ["shop"],
            nodes: [.init(id: "workload:shop/web", kind: "workload", namespace: "shop", name: "web", sync: "SYNCED")], edges: [], splits: [])
    }
    func edgeSeries(id: String) -> EdgeSeries? { id == "a>b" ? EdgeSeries(id: id, source: "a", target: "b", points: []) : nil }
    func authenticate(_ token: String?) -> Principal? {
        switch token {
        case "admin": .admin(id: "a")
        case "reader": .reader(id: "r")
        case "workload": .workload(id: "w", namespace: "web", serviceAccount: "web")
        default: nil
        }
    }
    func audit(who: String, action: String, target: String, result: String) {
        audits.withLock { $0.append(AuditRecord(time: Date(), who: who, action: action, target: target, result: result)) }
    }
    func auditProblem() -> String? { auditBroken ? "disk full" : nil }
    func auditRecords() -> [AuditRecord] { audits.withLock { $0 } }
    func source(of key: ResourceKey) -> String? { "api" }
    let rejections = Mutex<[String]>([])
    func recordRejection(of resource: String, reason: String, message: String) {
        rejections.withLock { $0.append("\(reason) \(resource)") }
    }
    func apply(_ change: ResourceChange, dryRun: Bool) throws(ResourceChangeError) -> MeshResource? {
        if change.key.name == "taken" { throw .conflict("\(change.key) exists") }
        applied.withLock { $0.append(change.key) }
        dryRuns.withLock { $0.append(dryRun) }
        if case .create(let resource) = change { return resource }
        if case .replace(let resource, _) = change { return resource }
        return nil
    }
    func mintToken(role: String, namespace: String?, serviceAccount: String?, workloadGroup: String?, ttl: TimeInterval?) throws -> MintedToken {
        MintedToken(id: "t1", token: "secret", role: role, namespace: namespace, serviceAccount: serviceAccount, expiresAt: nil, workloadGroup: workloadGroup)
    }
    func tokens() -> [TokenInfo] { [] }
    func revokeToken(id: String) throws -> Bool { id == "t1" }
    func caStatus() -> CertificateService.Status {
        let info = #"{"subject": "CN=root", "fingerprint": "ab", "notAfter": "2030-01-01T00:00:00Z", "serial": "01"}"#
        let json = #"{"mode": "selfSigned", "trustDomain": "cluster.local", "roots": [\#(info)], "signer": \#(info), "defaultTTLSeconds": 86400, "maximumTTLSeconds": 86400, "chain": []}"#
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try! decoder.decode(CertificateService.Status.self, from: Data(json.utf8))
    }
    func trustBundlePEM() throws -> String { "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n" }
    func rotateRoot() throws(CAError) -> CertificateService.Status { caStatus() }
    func issuedCertificates() -> [IssuanceLedger.Entry] { [] }
    func signCSR(_ csr: String, ttlSeconds: Int64, token: String?) throws(CAError) -> [String] {
        guard token == "workload" else { throw CAError(.unauthenticated, "not a workload token") }
        return ["leaf", "root"]
    }
    func bootstrap(_ request: BootstrapRequest) throws -> String { "{}" }
    func proxyConfig(proxyID: String) -> String? { proxyID == "known" ? "{}" : nil }
    func describe(workload: String) throws -> WorkloadDescription {
        throw APIError.notFound("no workload \(workload)")
    }
    func analyze() -> [AnalysisMessage] { [] }
    func analyze(adding candidates: [MeshResource]) -> [AnalysisMessage] {
        analyzed.withLock { $0 += candidates.map(\.key) }
        return []
    }
    func diff(adding candidates: [MeshResource]) -> ConfigurationDiff {
        analyzed.withLock { $0 += candidates.map(\.key) }
        return ConfigurationDiff(proxies: [], unchanged: 0, warnings: [])
    }
    func sidecarSuggestion(workload: String) throws -> SidecarSuggestion.Report {
        throw APIError.notFound("no workload \(workload)")
    }
    func simulate(_ request: RequestSimulation.Request) throws -> RequestSimulation {
        RequestSimulation(request: request, steps: [], outcomes: [])
    }
}

@Suite("Admin API routes in process: every role against every route")
struct AdminRoutesTests {
    static let secret: MeshResource = {
        let document = try! YAMLDocuments.parse("apiVersion: v1\nkind: Secret\nmetadata: {name: cred, namespace: istio-system, annotations: {kubectl.kubernetes.io/last-applied-configuration: \"{\\\"data\\\": \\\"LASTAPPLIED\\\"}\"}}\nstringData: {ca.crt: \"-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n\"}\n", source: "t")[0].value
        return try! MeshResource(document: document)
    }()

    /// Who may call a route: anyone, readers and admins, admins only, or any caller with a token
    /// (the CSR route, where the CA itself decides).
    enum Access { case open, reader, admin, csr }

    struct Route: CustomStringConvertible {
        var method: HTTPRequest.Method
        var path: String
        var access: Access
        var body: String? = nil
        /// The status an allowed caller gets.
        var allowed: HTTPResponse.Status = .ok
        var description: String { "\(method) \(path)" }
    }

    static let list = #"{"apiVersion": "v1", "kind": "List", "items": [\#(vs)]}"#
    static let vs = #"{"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "x", "namespace": "web"}, "spec": {"hosts": ["x"], "http": [{"route": [{"destination": {"host": "x"}}]}]}}"#
    static let routes: [Route] = [
        Route(method: .get, path: "/healthz", access: .open),
        Route(method: .get, path: "/version", access: .open),
        Route(method: .get, path: "/openapi.json", access: .open),
        Route(method: .get, path: "/v1/ca/root", access: .open),
        Route(method: .get, path: "/metrics", access: .reader),
        Route(method: .get, path: "/debug/config", access: .reader),
        Route(method: .get, path: "/debug/proxies", access: .reader),
        Route(method: .get, path: "/apis/networking.istio.io/v1/virtualservices", access: .reader),
        Route(method: .get, path: "/apis/networking.istio.io/v1/namespaces/web/virtualservices", access: .reader),
        Route(method: .get, path: "/api/v1/namespaces/istio-system/secrets", access: .reader),
        Route(method: .get, path: "/api/v1/namespaces/istio-system/secrets/cred", access: .reader),
        Route(method: .get, path: "/api/v1/namespaces/istio-system/secrets/cred?reveal=true", access: .admin),
        Route(method: .post, path: "/apis/networking.istio.io/v1/namespaces/web/virtualservices", access: .admin, body: vs, allowed: .created),
        Route(method: .put, path: "/apis/networking.istio.io/v1/namespaces/web/virtualservices/x", access: .admin, body: vs),
        Route(method: .delete, path: "/apis/networking.istio.io/v1/namespaces/web/virtualservices/x", access: .admin),
        Route(method: .get, path: "/v1/proxies", access: .reader),
        Route(method: .get, path: "/v1/proxies/known/config", access: .reader),
        Route(method: .get, path: "/v1/analyze", access: .reader),
        Route(method: .post, path: "/v1/analyze", access: .reader, body: list),
        Route(method: .post, path: "/v1/diff", access: .reader, body: list),
        Route(method: .post, path: "/v1/simulate", access: .reader, body: #"{"from": "web/x", "url": "http://web:8080/"}"#),
        Route(method: .get, path: "/v1/workloads/web/x/describe", access: .reader, allowed: .notFound),
        Route(method: .get, path: "/v1/workloads/web/x/sidecar-suggestion", access: .reader, allowed: .notFound),
        Route(method: .get, path: "/v1/proxies/unknown/config", access: .reader, allowed: .notFound),
        Route(method: .get, path: "/v1/audit", access: .admin),
        Route(method: .get, path: "/v1/tokens", access: .admin),
        Route(method: .post, path: "/v1/tokens", access: .admin, body: #"{"role": "reader"}"#, allowed: .created),
        Route(method: .delete, path: "/v1/tokens/t1", access: .admin),
        Route(method: .get, path: "/v1/ca", access: .reader),
        Route(method: .post, path: "/v1/ca/rotate-root", access: .admin, allowed: .accepted),
        Route(method: .get, path: "/v1/certificates", access: .reader),
        Route(method: .post, path: "/v1/certificates", access: .csr, body: #"{"csr": "x"}"#),
        Route(method: .post, path: "/v1/bootstrap", access: .admin, body: #"{"workload": "web/x"}"#),
    ]

    /// The status each caller gets: no token, a workload's, a reader's, an admin's.
    static func expected(_ route: Route, token: String?) -> HTTPResponse.Status {
        switch (route.access, token) {
        case (.open, _): route.allowed
        case (.csr, "workload"): route.allowed
        case (.csr, _): .unauthorized
        case (_, nil), (_, "bogus"): .unauthorized
        case (.reader, "workload"), (.admin, "workload"), (.admin, "reader"): .forbidden
        default: route.allowed
        }
    }

    @Test("status codes for no token, an unknown token, a workload, a reader and an admin on every route; refusals carry a JSON reason", arguments: [nil, "bogus", "workload", "reader", "admin"] as [String?])
    func roles(token: String?) async throws {
        let backend = FakeBackend(resources: [Self.secret])
        let app = Application(router: AdminRoutes.router(backend: backend, limiter: RateLimiter(ratePerSecond: 1000, burst: 1000)))
        try await app.test(.router) { client in
            for route in Self.routes {
                var headers = HTTPFields()
                if let token { headers[.authorization] = "Bearer \(token)" }
                if route.body != nil { headers[.contentType] = "application/json" }
                let response = try await client.execute(uri: route.path, method: route.method, headers: headers, body: route.body.map { ByteBuffer(string: $0) })
                let body = String(buffer: response.body)
                #expect(response.status == Self.expected(route, token: token), "\(route) as \(token ?? "nobody"): \(response.status) \(body.prefix(200))")
                if response.status.code >= 400 {
                    let object = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
                    #expect(object?["code"] as? Int == Int(response.status.code) && (object?["message"] as? String)?.isEmpty == false, "\(route): \(body)")
                }
            }
        }
        // Refused changes leave an audit line; only admins change anything.
        let changed = backend.applied.withLock { $0 }
        #expect(token == "admin" ? changed.count == 3 : changed.isEmpty)
        // POST /v1/analyze and /v1/diff read the List's resources and change nothing.
        let analyzed = backend.analyzed.withLock { $0 }.map(\.description)
        #expect(token == "admin" || token == "reader" ? analyzed == ["VirtualService web/x", "VirtualService web/x"] : analyzed.isEmpty, "\(analyzed)")
        if token == "reader" || token == "workload" {
            #expect(backend.auditRecords().contains { $0.result == "forbidden" })
        }
    }

    @Test("a Secret is answered without its data; an admin's reveal shows it and is audited")
    func secrets() async throws {
        let backend = FakeBackend(resources: [Self.secret])
        let app = Application(router: AdminRoutes.router(backend: backend))
        try await app.test(.router) { client in
            let headers: HTTPFields = [.authorization: "Bearer admin"]
            let hidden = try await client.execute(uri: "/api/v1/namespaces/istio-system/secrets/cred", method: .get, headers: headers)
            #expect(!String(buffer: hidden.body).contains("\"data\"") && String(buffer: hidden.body).contains("meshd.io/redacted"))
            #expect(!String(buffer: hidden.body).contains("LASTAPPLIED"), "kubectl's last-applied copy repeats the data: \(String(buffer: hidden.body))")
            let shown = try await client.execute(uri: "/api/v1/namespaces/istio-system/secrets/cred?reveal=true", method: .get, headers: headers)
            #expect(String(buffer: shown.body).contains("\"ca.crt\""))
            let other = try await client.execute(uri: "/apis/networking.istio.io/v1/namespaces/web/virtualservices/x?reveal=true", method: .get, headers: headers)
            #expect(other.status == .notFound || other.status == .badRequest)
        }
        #expect(backend.auditRecords().contains { $0.action == "secret.reveal" && $0.target == "Secret istio-system/cred" })
    }

    @Test("changes over the caller's rate get 429 with Retry-After and an audit line; a dry run is not audited; no audit log, no change (503)")
    func limitsAndAudit() async throws {
        let headers: HTTPFields = [.authorization: "Bearer admin", .contentType: "application/json"]
        let path = "/apis/networking.istio.io/v1/namespaces/web/virtualservices"
        let backend = FakeBackend()
        let app = Application(router: AdminRoutes.router(backend: backend, limiter: RateLimiter(ratePerSecond: 0.001, burst: 2)))
        try await app.test(.router) { client in
            let dry = try await client.execute(uri: path + "?dryRun=All", method: .post, headers: headers, body: ByteBuffer(string: Self.vs))
            #expect(dry.status == .ok)
            let real = try await client.execute(uri: path, method: .post, headers: headers, body: ByteBuffer(string: Self.vs))
            #expect(real.status == .created)
            let limited = try await client.execute(uri: path, method: .post, headers: headers, body: ByteBuffer(string: Self.vs))
            #expect(limited.status == .tooManyRequests && Int(limited.headers[.retryAfter] ?? "") ?? 0 >= 1, "\(limited.status)")
        }
        #expect(backend.dryRuns.withLock { $0 } == [true, false])
        let actions = backend.auditRecords().map { "\($0.action) \($0.result)" }
        #expect(actions == ["resource.create ok", "POST \(path) rate limited"], "\(actions)")

        let broken = FakeBackend(auditBroken: true)
        let brokenApp = Application(router: AdminRoutes.router(backend: broken))
        try await brokenApp.test(.router) { client in
            let refused = try await client.execute(uri: path, method: .post, headers: headers, body: ByteBuffer(string: Self.vs))
            #expect(refused.status == .serviceUnavailable && String(buffer: refused.body).contains("audit log cannot be written"))
        }
        #expect(broken.applied.withLock { $0 }.isEmpty)
    }

    @Test("a refused change (an invalid body, a conflict) is audited, counted by reason and logged; a refused dry run is not")
    func refusalsRecorded() async throws {
        let headers: HTTPFields = [.authorization: "Bearer admin", .contentType: "application/json"]
        let path = "/apis/networking.istio.io/v1/namespaces/web/virtualservices"
        let backend = FakeBackend()
        let app = Application(router: AdminRoutes.router(backend: backend, limiter: RateLimiter(ratePerSecond: 1000, burst: 1000)))
        let invalid = Self.vs.replacingOccurrences(of: #""host": "x""#, with: #""hots": "x""#)
        let taken = Self.vs.replacingOccurrences(of: #""name": "x""#, with: #""name": "taken""#)
        try await app.test(.router) { client in
            let refused = try await client.execute(uri: path, method: .post, headers: headers, body: ByteBuffer(string: invalid))
            let dryRun = try await client.execute(uri: path + "?dryRun=All", method: .post, headers: headers, body: ByteBuffer(string: invalid))
            let conflict = try await client.execute(uri: path, method: .post, headers: headers, body: ByteBuffer(string: taken))
            #expect(refused.status == .badRequest && dryRun.status == .badRequest && conflict.status == .conflict)
        }
        #expect(backend.rejections.withLock { $0 } == ["invalid VirtualService web/?", "conflict VirtualService web/taken"])
        #expect(backend.auditRecords().map { "\($0.action) \($0.target) \($0.result.prefix(8))" } == [
            "resource.create VirtualService web/? refused:", "resource.create VirtualService web/taken refused:",
        ])
    }
}
