import ArgumentParser

@main
struct Meshctl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meshctl",
        abstract: "The command line of meshd: apply and inspect configuration, see what each proxy has, find problems, manage tokens and certificates.",
        subcommands: [
            Apply.self, Get.self, Delete.self, ProxyStatusCommand.self, ProxyConfig.self, Describe.self, Analyze.self, Diff.self, Simulate.self, SidecarCommand.self, Audit.self,
            Bootstrap.self, Proxy.self, Token.self, CA.self, Certs.self, Cert.self, Import.self,
        ])
}
