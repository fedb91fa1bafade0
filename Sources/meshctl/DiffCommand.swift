import ArgumentParser
import Foundation
import MeshConfig
import MeshModel
import MeshTranslation

/// `meshctl diff`: what applying files would change in each proxy's Envoy configuration.
struct Diff: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what applying resources would change in each proxy's Envoy configuration, as kubectl diff does; exits 1 when something would change.",
        discussion: "meshd translates the served configuration with these resources added (replacing those of the same kind, namespace and name) for every workload, and compares: the proxies whose configuration would change, their added, removed and changed listeners, routes, clusters and endpoints (changed ones field by field), and warnings such as proxies losing their route to a host or traffic going from mTLS to plaintext. Nothing is applied.")
    @OptionGroup var server: ServerOptions
    @Option(name: .shortAndLong, help: "A file, a directory, or - (repeatable; kubectl Lists too).") var filename: [String]
    @Option(name: .shortAndLong, help: "text or json.") var output = "text"

    func run() async throws {
        let (diff, data) = try await Self.request(readResources(filename).map(\.resource), client: server.client)
        if output == "json" {
            FileHandle.standardOutput.write(data)
        } else {
            print(Self.text(diff), terminator: "")
        }
        if !diff.proxies.isEmpty { throw ExitCode(1) }
    }

    /// Asks meshd what `resources` would change.
    static func request(_ resources: [MeshResource], client: AdminClient) async throws -> (ConfigurationDiff, Data) {
        let list = ConfigValue.object(ConfigObject([("apiVersion", .string("v1")), ("kind", .string("List")), ("items", .array(resources.map(\.configValue)))]))
        let answer = try await client.request("POST", "/v1/diff", body: Data(ConfigJSON.encode(list).utf8))
        guard answer.status == 200 else { throw CLIError(AdminClient.message(answer.body)) }
        return (try client.decode(ConfigurationDiff.self, from: answer.body), answer.body)
    }

    /// The diff for a terminal: `+` added, `-` removed, `~` changed with its fields.
    static func text(_ diff: ConfigurationDiff) -> String {
        var out = ""
        if diff.proxies.isEmpty {
            out += "No proxy's configuration would change (\(diff.unchanged) proxies checked).\n"
        }
        for proxy in diff.proxies {
            out += "proxy \(proxy.workload):\n"
            for resource in proxy.resources {
                let mark = resource.change == "added" ? "+" : resource.change == "removed" ? "-" : "~"
                out += "  \(mark) \(resource.type) \(resource.name)\n"
                for field in resource.fields {
                    out += "      \(field.path): \(field.before ?? "(none)") → \(field.after ?? "(none)")\n"
                }
            }
        }
        if !diff.proxies.isEmpty {
            out += "\(diff.proxies.count) \(diff.proxies.count == 1 ? "proxy" : "proxies") would change, \(diff.unchanged) would not.\n"
        }
        for warning in diff.warnings { out += "Warning: \(warning)\n" }
        return out
    }
}
