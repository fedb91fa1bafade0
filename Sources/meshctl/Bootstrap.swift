import ArgumentParser
import ControlPlane
import MeshConfig
import MeshModel
import Foundation

/// `meshctl bootstrap`: print an Envoy bootstrap for a workload.
struct Bootstrap: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a working Envoy bootstrap for a workload (its WorkloadEntry is read from meshd).",
        discussion: "Example: meshctl bootstrap --workload tai-system/governor-v1 > governor.json && envoy -c governor.json")

    @OptionGroup var server: ServerOptions

    @Option(name: .customLong("workload"), help: "The workload as namespace/name of its WorkloadEntry.")
    var workload: String

    @Option(name: .customLong("xds-address"), help: "meshd's xDS address as the sidecar reaches it.")
    var xdsAddress = "127.0.0.1:15010"

    @Option(name: .customLong("admin-address"), help: "Envoy's admin address (default: <workload address>:15000).")
    var adminAddress: String?

    func run() async throws {
        let parts = workload.split(separator: "/")
        guard parts.count == 2 else { throw ValidationError("--workload must be namespace/name, got \(workload)") }
        guard let xds = HostPort(xdsAddress) else { throw ValidationError("--xds-address must be host:port") }
        var admin: HostPort? = nil
        if let adminAddress {
            guard let parsed = HostPort(adminAddress) else { throw ValidationError("--admin-address must be host:port") }
            admin = parsed
        }
        let client = AdminClient(base: server.server)
        let body = try await client.get("/apis/networking.istio.io/v1/namespaces/\(parts[0])/workloadentries/\(parts[1])")
        let text = String(decoding: body, as: UTF8.self)
        guard let document = try YAMLDocuments.parse(text, source: "meshd").first?.value else {
            throw CLIError("meshd returned an empty WorkloadEntry")
        }
        let resource = try MeshResource(document: document)
        guard case .workloadEntry(let entry) = resource.spec else { throw CLIError("meshd returned a \(resource.kind.rawValue)") }
        let instance = WorkloadInstance(entry: entry, name: resource.metadata.name, namespace: resource.metadata.namespace, source: resource.key)
        let bootstrap = BootstrapBuilder(workload: instance, xdsAddress: xds, adminAddress: admin)
        print(ConfigJSON.encode(bootstrap.configValue, pretty: true))
    }
}
