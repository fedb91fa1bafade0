public import Hummingbird
internal import MeshModel
internal import MeshConfig
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
        return router
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
        let data = try encoder.encode(value)
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func resourceJSON(_ value: ConfigValue) throws -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: ConfigJSON.encode(value, pretty: true) + "\n")))
    }
}
