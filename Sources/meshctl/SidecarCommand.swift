import MeshTranslation
import ArgumentParser
import Foundation

/// `meshctl sidecar`: Sidecars scoped to what workloads use.
struct SidecarCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sidecar", abstract: "Sidecars scoped to what workloads use.", subcommands: [Suggest.self])

    /// `meshctl sidecar suggest NS/WORKLOAD`.
    struct Suggest: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a Sidecar that imports exactly what a workload uses, and how much smaller its proxy's configuration would be.",
            discussion: """
                The hosts are the services the workload's proxies sent requests to (their load reports to meshd since it started; HTTP requests, not TCP connections), the services whose ALLOW AuthorizationPolicies name it as a caller, and the root namespace (istio-system/*), as Istio imports it. The Sidecar that applies to the workload keeps its ingress, binds and capture mode, with its egress hosts replaced; when none applies, or the one that applies is shared, a new one selects the workload's labels. Apply it with meshctl apply -f.
                """)
        @OptionGroup var server: ServerOptions
        @Argument(help: "The workload, namespace/name.") var workload: String
        @Option(name: .shortAndLong, help: "yaml (with the sizes as comments) or json.") var output = "yaml"

        func run() async throws {
            let client = server.client
            let answer = try await client.request("GET", "/v1/workloads/\(workload)/sidecar-suggestion", body: nil)
            guard answer.status == 200 else { throw CLIError(AdminClient.message(answer.body)) }
            if output == "json" {
                FileHandle.standardOutput.write(answer.body)
                return
            }
            print(Self.text(try client.decode(SidecarSuggestion.Report.self, from: answer.body)), terminator: "")
        }

        static func text(_ report: SidecarSuggestion.Report) -> String {
            var out = "# Sidecar for \(report.workload), importing:\n"
            for host in report.hosts { out += "#   \(host.host) (\(host.reason))\n" }
            let saved = report.before.bytes - report.after.bytes
            let share = report.before.bytes > 0 ? abs(saved) * 100 / report.before.bytes : 0
            out += "# Its proxy's configuration: \(report.before.resources) resources (\(report.before.clusters) clusters), \(report.before.bytes) bytes now;\n"
            out += "# \(report.after.resources) resources (\(report.after.clusters) clusters), \(report.after.bytes) bytes with this Sidecar: \(abs(saved)) bytes (\(share)%) \(saved >= 0 ? "less" : "more") to push.\n"
            if report.observed.isEmpty { out += "# No requests reported by its proxies yet: only policies and the root namespace were used.\n" }
            return out + report.sidecar
        }
    }
}
