/// The OpenAPI 3 document of the admin API (`Sources/AdminAPI/openapi.json`, written by
/// `scripts/openapi.py`), served at `/openapi.json`.
enum OpenAPIDocument {
    static let json = String(decoding: PackageResources.openapi_json, as: UTF8.self)
}
