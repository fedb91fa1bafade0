import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import ArgumentParser

/// Options every command that talks to meshd's admin API shares.
struct ServerOptions: ParsableArguments {
    @Option(name: .customLong("server"), help: "meshd's admin API (env MESHCTL_SERVER).")
    var server = ProcessInfo.processInfo.environment["MESHCTL_SERVER"] ?? "http://127.0.0.1:15014"

    @Option(name: .customLong("data-dir"), help: "meshd's data directory, where the admin token is (env MESHCTL_DATA_DIR).")
    var dataDirectory = ProcessInfo.processInfo.environment["MESHCTL_DATA_DIR"] ?? ".meshd"

    @Option(name: .customLong("admin-token"), help: "The admin token (env MESHCTL_TOKEN; default: <data-dir>/admin-token).")
    var adminToken: String?

    /// A client of the admin API with the admin token, if one can be found.
    var client: AdminClient {
        let token = adminToken ?? ProcessInfo.processInfo.environment["MESHCTL_TOKEN"]
            ?? (try? String(contentsOfFile: dataDirectory + "/admin-token", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        return AdminClient(base: server, token: token)
    }
}

/// A small client of the admin API.
struct AdminClient {
    let base: String
    let token: String?

    /// GETs `path` and returns the body; a non-2xx answer is an error carrying the server's message.
    func get(_ path: String) async throws -> Data {
        try await send("GET", path, body: nil)
    }

    /// POSTs a JSON body.
    func post(_ path: String, json: [String: Any]) async throws -> Data {
        try await send("POST", path, body: try JSONSerialization.data(withJSONObject: json))
    }

    /// DELETEs `path`.
    func delete(_ path: String) async throws -> Data {
        try await send("DELETE", path, body: nil)
    }

    private func send(_ method: String, _ path: String, body: Data?) async throws -> Data {
        let (status, data) = try await request(method, path, body: body)
        guard (200..<300).contains(status) else { throw CLIError("meshd answered \(status) for \(method) \(path): \(Self.message(data))") }
        return data
    }

    /// Sends a request and returns the status and body, whatever the status. A 429, or a 503
    /// with `Retry-After`, is sent again after the wait the server asks for (at least the
    /// back-off: 0.5 s doubling to 30 s), as kubectl does, for up to `retryBudget` in all.
    func request(_ method: String, _ path: String, body: Data?, contentType: String = "application/json") async throws -> (status: Int, body: Data) {
        guard let url = URL(string: base + path) else { throw ValidationError("invalid --server \(base)") }
        var request = URLRequest(url: url)
        request.httpMethod = method
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        if let body {
            request.httpBody = body
            request.setValue(contentType, forHTTPHeaderField: "Content-Type")
        }
        let deadline = ContinuousClock.now + retryBudget
        var backoff = 0.5
        while true {
            let (data, response): (Data, URLResponse)
            do {
                (data, response) = try await URLSession.shared.data(for: request)
            } catch {
                throw CLIError("cannot reach meshd at \(base): \(error.localizedDescription) (is meshd running? set --server)")
            }
            let http = response as? HTTPURLResponse
            let status = http?.statusCode ?? 0
            let retryAfter = http?.value(forHTTPHeaderField: "Retry-After").flatMap(Double.init)
            guard let wait = Self.retryWait(status: status, retryAfter: retryAfter, backoff: backoff),
                  ContinuousClock.now + .milliseconds(Int(wait * 1000)) < deadline
            else { return (status, data) }
            try await Task.sleep(for: .milliseconds(Int(wait * 1000)))
            backoff = min(backoff * 2, 30)
        }
    }

    /// How long all retries of one request may take.
    var retryBudget: Duration { .seconds(120) }

    /// Seconds to wait before sending again, or `nil` if the answer is final: 429 always retries,
    /// 503 only when the server says when (`Retry-After`).
    static func retryWait(status: Int, retryAfter: Double?, backoff: Double) -> Double? {
        switch status {
        case 429: return max(retryAfter ?? 0, backoff)
        case 503: return retryAfter.map { max($0, backoff) }
        default: return nil
        }
    }

    /// The message of an error answer (`{"message": ...}`), or the body as text.
    static func message(_ data: Data) -> String {
        if let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any], let message = object["message"] as? String {
            return message
        }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Decodes a JSON answer.
    func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(type, from: data)
    }
}

/// A failure to report to the user and exit non-zero.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A table for terminal output.
func table(_ header: [String], _ rows: [[String]]) -> String {
    let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
    return ([header] + rows).map { row in
        row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }.joined(separator: "  ")
            .trimmingCharacters(in: .whitespaces)
    }.joined(separator: "\n")
}
