public import Hummingbird
internal import Foundation
internal import Logging
internal import MeshConfig
internal import MeshModel

/// Every refusal of the admin API, from the routes and from the backend:
/// `{"code": 409, "reason": "Conflict", "message": "...", "field": "spec.hosts"}`.
public struct APIError: HTTPResponseError, CustomStringConvertible {
    /// The HTTP status.
    public let status: HTTPResponse.Status
    /// Why.
    public let message: String
    /// The field path the refusal is about, if one.
    public let field: String?
    /// Headers to add (`Retry-After`).
    public let headers: HTTPFields

    /// A refusal with `status`.
    public init(_ status: HTTPResponse.Status, _ message: String, field: String? = nil, headers: HTTPFields = [:]) {
        self.status = status
        self.message = message
        self.field = field
        self.headers = headers
    }

    /// 404: what was asked for does not exist.
    public static func notFound(_ message: String) -> APIError { APIError(.notFound, message) }

    /// 400: the request is not valid.
    public static func invalid(_ message: String, field: String? = nil) -> APIError { APIError(.badRequest, message, field: field) }

    public var description: String { message }

    struct Body: Encodable {
        var code: Int
        var reason: String
        var message: String
        var field: String?
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = try AdminResponse.json(Body(code: status.code, reason: status.reasonPhrase, message: message, field: field))
        response.status = status
        response.headers.append(contentsOf: headers)
        return response
    }
}

/// Every 5xx answer carries a reason and leaves a log line: errors that are not API errors (a
/// store that cannot be written, ...) become 500 with their description instead of an empty body.
struct ErrorReporting<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            let response = try await next(request, context)
            if response.status.code >= 500 {
                context.logger.error("admin API answered \(response.status.code)", metadata: ["method": "\(request.method)", "path": "\(request.uri.path)"])
            }
            return response
        } catch let error as APIError {
            if error.status.code >= 500 {
                context.logger.error("admin API answered \(error.status.code)", metadata: [
                    "method": "\(request.method)", "path": "\(request.uri.path)", "reason": "\(error.message)",
                ])
            }
            throw error
        } catch let error as any HTTPResponseError {
            throw error
        } catch {
            context.logger.error("admin API request failed", metadata: ["method": "\(request.method)", "path": "\(request.uri.path)", "error": "\(error)"])
            throw APIError(.internalServerError, "\(request.method) \(request.uri.path) failed: \(error)")
        }
    }
}

/// How the admin API writes its answers.
enum AdminResponse {
    static func text(_ body: String, status: HTTPResponse.Status = .ok, contentType: String = "text/plain; charset=utf-8") -> Response {
        Response(status: status, headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        let data = try encoder.encode(value)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// JSON that is already written (proxy configuration, bootstraps).
    static func json(text: String) -> Response {
        self.text(text, contentType: "application/json")
    }

    static func resource(_ value: ConfigValue, status: HTTPResponse.Status = .ok) -> Response {
        json(text: ConfigJSON.encode(value, pretty: true) + "\n").with(status: status)
    }
}

extension Response {
    func with(status: HTTPResponse.Status) -> Response {
        var response = self
        response.status = status
        return response
    }
}
