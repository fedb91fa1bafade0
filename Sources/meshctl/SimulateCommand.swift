import ArgumentParser
import Foundation
import MeshConfig
import MeshTranslation

/// `meshctl simulate`: where one request would go and what would answer it.
struct Simulate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Walk one request from a workload through the Envoy configuration meshd serves, step by step.",
        discussion: """
            meshd follows the request as the proxies would: the caller's outbound listener, virtual host and route, faults, the weighted choice of cluster, the cluster's endpoints and whether it connects over mTLS; then, at each destination, its inbound listener, the filter chain the caller's transport selects, the authorization decision with the policy rule that decided, and the app. It prints every step and every outcome with its probability. Not simulated: JWT validation (a request is judged as carrying no verified token), the answer of a CUSTOM authorizer, retries and outlier ejection, and servers outside the mesh. Exits 0 whatever the outcome; use --json for scripts.
            """)
    @OptionGroup var server: ServerOptions
    @Option(help: "The calling workload, namespace/name.") var from: String
    @Option(help: "Where the app sends the request: http://host[:port]/path (plaintext HTTP from the app) or tcp://host:port.") var to: String
    @Option(name: [.customShort("H"), .customLong("header")], help: "A request header, 'Name: value' (repeatable).") var headers: [String] = []
    @Option(name: [.customShort("X"), .customLong("method")], help: "The HTTP method.") var method = "GET"
    @Flag(help: "Print the simulation as JSON.") var json = false

    func run() async throws {
        var fields: [String: String] = [:]
        for header in headers {
            guard let colon = header.firstIndex(of: ":"), colon != header.startIndex else {
                throw ValidationError("--header \(header): expected 'Name: value'")
            }
            fields[header[..<colon].trimmingCharacters(in: .whitespaces).lowercased()] = header[header.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let request = RequestSimulation.Request(from: from, url: to, method: method, headers: fields)
        let client = server.client
        let answer = try await client.request("POST", "/v1/simulate", body: try JSONEncoder().encode(request))
        guard answer.status == 200 else { throw CLIError(AdminClient.message(answer.body)) }
        if json {
            FileHandle.standardOutput.write(answer.body)
        } else {
            print(try client.decode(RequestSimulation.self, from: answer.body).text, terminator: "")
        }
    }
}
