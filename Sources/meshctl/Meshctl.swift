import ArgumentParser

@main
struct Meshctl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meshctl",
        abstract: "The command line of meshd: apply and inspect configuration, see what each proxy has, find problems, manage tokens and certificates.",
        subcommands: [
            Apply.self, Get.self, Delete.self, ProxyStatusCommand.self, ProxyConfig.self, Describe.self, Analyze.self, Diff.self, Simulate.self, SidecarCommand.self, Audit.self,
            Bootstrap.self, Proxy.self, Token.self, CA.self, Certs.self, Cert.self, Import.self, Dashboard.self,
        ])

    /// Runs the command line, reading kubectl's `--dry-run=server` as `--dry-run` (meshd checks
    /// and diffs on the server) and `--dry-run=none` as no dry run.
    static func main() async {
        await main(normalized(Array(CommandLine.arguments.dropFirst())))
    }

    static func normalized(_ arguments: [String]) -> [String] {
        arguments.compactMap { argument in
            switch argument {
            case "--dry-run=server": "--dry-run"
            case "--dry-run=none": nil
            default: argument
            }
        }
    }
}
