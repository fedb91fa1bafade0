import ArgumentParser
import Foundation

/// `meshctl bootstrap`: print an Envoy bootstrap for a workload.
struct Bootstrap: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a working Envoy bootstrap for a workload: its node identity, Envoy's admin address, and the xDS cluster (TLS, verified against meshd's root) with a token minted for the workload's service account.",
        discussion: "To run a sidecar, prefer `meshctl proxy run --workload NS/NAME`: it fetches the bootstrap and starts Envoy with the drain settings that make policy changes reach open connections.")

    @OptionGroup var server: ServerOptions

    @Option(name: .customLong("workload"), help: "The workload as namespace/name of its WorkloadEntry.")
    var workload: String?

    @OptionGroup var bootstrap: BootstrapOptions

    func validate() throws {
        try bootstrap.check(workload: workload)
    }

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

    @Option(name: .customLong("workload-group"), help: "Register into this WorkloadGroup (namespace/name) on connecting, as Istio's auto-registration does, instead of naming a WorkloadEntry; needs --address.")
    var workloadGroup: String?

    @Option(name: .customLong("address"), help: "With --workload-group: the proxy's IP address (its WorkloadEntry's address and name).")
    var address: String?
    @Flag(name: .customLong("proxyless"), help: "gRPC's xDS bootstrap (for GRPC_XDS_BOOTSTRAP) for a gRPC application that reads xDS itself, instead of Envoy's; needs --cert-dir, where `meshctl cert renew` keeps the workload's certificate.")
    var proxyless = false

    /// Exactly one of a WorkloadEntry (`workload`) and a WorkloadGroup with an address.
    func check(workload: String?) throws {
        if proxyless {
            guard certificateDirectory != nil else { throw ValidationError("--proxyless needs --cert-dir: the application connects with the certificate `meshctl cert renew` keeps there") }
            guard !delta, workloadGroup == nil else { throw ValidationError("--proxyless takes --workload (gRPC's xDS client speaks state of the world and does not register into WorkloadGroups)") }
        }
        if let workload {
            guard workloadGroup == nil, address == nil else { throw ValidationError("give --workload, or --workload-group with --address, not both") }
            guard workload.split(separator: "/").count == 2 else { throw ValidationError("--workload must be namespace/name, got \(workload)") }
        } else {
            guard let workloadGroup, address != nil else { throw ValidationError("give --workload NAMESPACE/NAME, or --workload-group NAMESPACE/NAME with --address IP") }
            guard workloadGroup.split(separator: "/").count == 2 else { throw ValidationError("--workload-group must be namespace/name, got \(workloadGroup)") }
        }
    }

    /// Asks meshd for the bootstrap of `workload` (namespace/name), or of a proxy of
    /// ``workloadGroup`` at ``address``.
    func fetch(workload: String?, client: AdminClient) async throws -> Data {
        try check(workload: workload)
        var body: [String: Any] = [:]
        if let workload { body["workload"] = workload }
        if let workloadGroup { body["workloadGroup"] = workloadGroup }
        if let address { body["address"] = address }
        if let xdsAddress { body["xdsAddress"] = xdsAddress }
        if let adminAddress { body["adminAddress"] = adminAddress }
        if let tokenTTL { body["tokenTTLSeconds"] = tokenTTL }
        if let certificateDirectory { body["certificateDirectory"] = URL(fileURLWithPath: certificateDirectory).standardizedFileURL.path }
        if delta { body["delta"] = true }
        if proxyless { body["proxyless"] = true }
        return try await client.post("/v1/bootstrap", json: body)
    }
}
