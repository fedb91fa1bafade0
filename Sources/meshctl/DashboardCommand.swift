import Foundation
import ArgumentParser

/// `meshctl dashboard`: opens meshd's service graph page in a browser (or prints its address).
struct Dashboard: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Open meshd's service graph (/ui/graph) in a browser.",
        discussion: "The page asks for a reader or admin token once (meshctl token create --role reader) and keeps it in a cookie.")

    @OptionGroup var server: ServerOptions

    @Flag(name: .customLong("no-browser"), help: "Only print the address.")
    var noBrowser = false

    func run() async throws {
        let address = server.server.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + "/ui/graph"
        // The page is served by meshd itself; say so now if meshd is not there.
        let (status, _) = try await AdminClient(base: server.server, token: nil).request("GET", "/healthz", body: nil)
        guard status == 200 else { throw CLIError("meshd's admin API at \(server.server) answered \(status) for /healthz") }
        print("service graph: \(address)")
        print("sign in with a reader token: meshctl token create --role reader")
        guard !noBrowser else { return }
        for opener in ["/usr/bin/xdg-open", "/usr/bin/open"] where FileManager.default.isExecutableFile(atPath: opener) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: opener)
            process.arguments = [address]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            if (try? process.run()) != nil { return }
        }
        print("(no browser opener found: open the address yourself)")
    }
}
