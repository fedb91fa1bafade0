import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import ArgumentParser

/// Options every command that talks to meshd's admin API shares.
struct ServerOptions: ParsableArguments {
    @Option(name: .customLong("server"), help: "meshd's admin API (env MESHCTL_SERVER).")
    var server = ProcessInfo.processInfo.environment["MESHCTL_SERVER"] ?? "http://127.0.0.1:15014"
}

/// A small client of the admin API.
struct AdminClient {
    let base: String

    /// GETs `path` and returns the body; a non-2xx answer is an error carrying the server's message.
    func get(_ path: String) async throws -> Data {
        guard let url = URL(string: base + path) else { throw ValidationError("invalid --server \(base)") }
        let (data, response): (Data, URLResponse)
        do {
            (data, response) = try await URLSession.shared.data(from: url)
        } catch {
            throw CLIError("cannot reach meshd at \(base): \(error.localizedDescription) (is meshd running? set --server)")
        }
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        guard (200..<300).contains(status) else {
            let message = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw CLIError("meshd answered \(status) for \(path): \(message)")
        }
        return data
    }
}

/// A failure to report to the user and exit non-zero.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
