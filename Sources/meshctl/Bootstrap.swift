import ArgumentParser
import Foundation

/// `meshctl bootstrap`: print an Envoy bootstrap for a workload.
struct Bootstrap: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a working Envoy bootstrap for a workload: its node identity, Envoy's admin address, and the xDS cluster (TLS, verified against meshd's root) with a token minted for the workload's service account.",
        discussion: "To run a sidecar, prefer `meshctl proxy run --workload NS/NAME`: it fetches the bootstrap and starts Envoy with the drain settings that make policy changes reach open connections.")

    @OptionGroup var server: ServerOptions

    @Option(name: .customLong("workload"), help: "The workload as namespace/name of its WorkloadEntry.")
    var workload: String

    @OptionGroup var bootstrap: BootstrapOptions

    func run() async throws {
        FileHandle.standardOutput.write(try await bootstrap.fetch(workload: workload, client: server.client))
    }
}

/// What a bootstrap is made with, shared by `meshctl bootstrap` and `meshctl proxy run`.
struct BootstrapOptions: ParsableArguments {
    @Option(name: .customLong("xds-address"), help: "meshd's xDS address as the sidecar reaches it (default: where meshd listens).")
    var xdsAddress: String?

    @Option(name: .customLong("admin-address"), help: "Envoy's admin address (default: <workload address>:15000).")
    var adminAddress: String?

    @Option(name: .customLong("token-ttl"), help: "Lifetime of the embedded token, seconds (default: no expiry).")
    var tokenTTL: Int?

    @Option(name: .customLong("cert-dir"), help: "Take the sidecar's certificate from this directory, kept fresh by `meshctl cert renew`, instead of from meshd.")
    var certificateDirectory: String?

    @Flag(name: .customLong("delta"), help: "Use delta (incremental) xDS instead of state of the world.")
    var delta = false

    /// Asks meshd for the bootstrap of `workload` (namespace/name).
    func fetch(workload: String, client: AdminClient) async throws -> Data {
        guard workload.split(separator: "/").count == 2 else { throw ValidationError("--workload must be namespace/name, got \(workload)") }
        var body: [String: Any] = ["workload": workload]
        if let xdsAddress { body["xdsAddress"] = xdsAddress }
        if let adminAddress { body["adminAddress"] = adminAddress }
        if let tokenTTL { body["tokenTTLSeconds"] = tokenTTL }
        if let certificateDirectory { body["certificateDirectory"] = URL(fileURLWithPath: certificateDirectory).standardizedFileURL.path }
        if delta { body["delta"] = true }
        return try await client.post("/v1/bootstrap", json: body)
    }
}
