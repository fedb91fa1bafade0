import ArgumentParser

@main
struct Meshctl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meshctl",
        abstract: "The command line of meshd: bootstraps for sidecars, and (as later features land) config, certificates and proxy status.",
        subcommands: [Bootstrap.self, Token.self, CA.self, Certs.self, Cert.self])
}
