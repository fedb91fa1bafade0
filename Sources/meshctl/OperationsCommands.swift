import MeshClient
import ArgumentParser
import Foundation
import MeshConfig
import MeshModel
import MeshTranslation

/// `meshctl proxy-status`: each connected proxy's xDS state per type, as istioctl shows it.
struct ProxyStatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "proxy-status",
        abstract: "Each connected proxy and, per type, SYNCED, NOT SENT, STALE (sent, not yet answered) or ERROR (rejected, with Envoy's message).")
    @OptionGroup var server: ServerOptions
    @Option(name: .shortAndLong, help: "table or json.") var output = "table"

    func run() async throws {
        let client = server.client
        let data = try await client.get("/v1/proxies")
        if output == "json" {
            FileHandle.standardOutput.write(data)
            return
        }
        let proxies = try client.decode([ProxyStatus].self, from: data)
        let types = ["cds", "lds", "eds", "rds", "sds"]
        print(table(["NAME", "WORKLOAD"] + types.map { $0.uppercased() }, proxies.map { proxy in
            [proxy.proxyID, proxy.workload] + types.map { proxy.types[$0]?.state ?? "NOT SENT" }
        }))
        for proxy in proxies {
            for type in types {
                if let error = proxy.types[type]?.error { print("\(proxy.proxyID) \(type.uppercased()) rejected: \(error)") }
            }
            if let waiting = proxy.waiting { print("\(proxy.proxyID) \(waiting)") }
        }
    }
}

/// Finds a connected proxy by node id or by workload (`namespace/name`).
func resolveProxy(_ text: String, client: AdminClient) async throws -> String {
    let proxies = try client.decode([ProxyStatus].self, from: try await client.get("/v1/proxies"))
    if proxies.contains(where: { $0.proxyID == text }) { return text }
    let matches = proxies.filter { $0.workload == text || $0.proxyID.contains("~\(text)") }
    guard let first = matches.first else {
        throw CLIError("no connected proxy \(text); connected: \(proxies.map(\.proxyID).joined(separator: ", "))")
    }
    return first.proxyID
}

/// `meshctl proxy-config`: what meshd sent a proxy.
struct ProxyConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "proxy-config",
        abstract: "What meshd sent a proxy: clusters, listeners, routes, endpoints or secrets (without private keys).")
    @OptionGroup var server: ServerOptions
    @Argument(help: "cluster, listener, route, endpoint or secret.") var type: String
    @Argument(help: "The proxy: its node id or its workload (namespace/name).") var proxy: String
    @Option(name: .shortAndLong, help: "table or json.") var output = "table"

    func run() async throws {
        let shortNames = ["cluster": "cds", "clusters": "cds", "listener": "lds", "listeners": "lds", "route": "rds", "routes": "rds",
                          "endpoint": "eds", "endpoints": "eds", "secret": "sds", "secrets": "sds"]
        guard let short = shortNames[type] else { throw ValidationError("the type must be cluster, listener, route, endpoint or secret") }
        let client = server.client
        let id = try await resolveProxy(proxy, client: client)
        let data = try await client.get("/v1/proxies/\(id.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? id)/config")
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any], let items = object[short] as? [[String: Any]] else {
            throw CLIError("meshd answered without \(short)")
        }
        if output == "json" {
            let text = try JSONSerialization.data(withJSONObject: items, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            FileHandle.standardOutput.write(text)
            print()
            return
        }
        switch short {
        case "cds":
            print(table(["NAME", "TYPE"], items.map { [$0["name"] as? String ?? "", $0["type"] as? String ?? "EDS"] }))
        case "lds":
            print(table(["NAME", "ADDRESS", "PORT"], items.map { item in
                let socket = (item["address"] as? [String: Any])?["socket_address"] as? [String: Any] ?? [:]
                return [item["name"] as? String ?? "", socket["address"] as? String ?? "", "\(socket["port_value"] ?? "")"]
            }))
        case "rds":
            print(table(["NAME", "VIRTUAL HOSTS"], items.map { item in
                let hosts = (item["virtual_hosts"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
                return [item["name"] as? String ?? "", hosts.joined(separator: ", ")]
            }))
        case "eds":
            print(table(["CLUSTER", "ENDPOINTS"], items.map { item in
                let addresses = (item["endpoints"] as? [[String: Any]] ?? []).flatMap { $0["lb_endpoints"] as? [[String: Any]] ?? [] }.map { endpoint -> String in
                    let socket = (((endpoint["endpoint"] as? [String: Any])?["address"] as? [String: Any])?["socket_address"] as? [String: Any]) ?? [:]
                    return "\(socket["address"] ?? ""):\(socket["port_value"] ?? "")"
                }
                return [item["cluster_name"] as? String ?? "", addresses.joined(separator: ", ")]
            }))
        default:
            print(table(["NAME", "KIND"], items.map { item in
                [item["name"] as? String ?? "", item["tls_certificate"] != nil ? "certificate" : item["validation_context"] != nil ? "trust bundle" : "other"]
            }))
        }
    }
}

/// `meshctl describe`: what applies to a workload, and whether its connections use mTLS.
struct Describe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "What applies to a workload (VirtualServices, DestinationRules, PeerAuthentications, AuthorizationPolicies), its mTLS mode per port, and whether each connection it makes will really use mTLS.")
    @OptionGroup var server: ServerOptions
    @Argument(help: "The workload: namespace/name of its WorkloadEntry.") var workload: String
    @Option(name: .shortAndLong, help: "text or json.") var output = "text"

    func run() async throws {
        let parts = workload.split(separator: "/")
        guard parts.count == 2 else { throw ValidationError("the workload must be namespace/name") }
        let client = server.client
        let data = try await client.get("/v1/workloads/\(parts[0])/\(parts[1])/describe")
        if output == "json" {
            FileHandle.standardOutput.write(data)
            return
        }
        let description = try client.decode(WorkloadDescription.self, from: data)
        func list(_ items: [String]) -> String { items.isEmpty ? "none" : items.joined(separator: ", ") }
        print("Workload:               \(description.workload)")
        print("Identity:               \(description.identity)")
        print("Labels:                 \(description.labels.keys.sorted().map { "\($0)=\(description.labels[$0]!)" }.joined(separator: ", "))")
        print("Services:               \(list(description.services))")
        if let group = description.workloadGroup { print("Registered from:        WorkloadGroup \(group)") }
        if let health = description.health { print("Health:                 \(health)") }
        print("Sidecar:                \(description.sidecar ?? "none")")
        if !description.gateways.isEmpty { print("Gateway of:             \(list(description.gateways))") }
        print("VirtualServices:        \(list(description.virtualServices))")
        print("DestinationRules:       \(list(description.destinationRules))")
        print("PeerAuthentications:    \(list(description.peerAuthentications))")
        print("AuthorizationPolicies:  \(list(description.authorizationPolicies))")
        print("RequestAuthentications: \(list(description.requestAuthentications))")
        print("\nInbound mTLS:")
        print(table(["PORT", "MODE", "DECIDED BY"], description.inbound.map { ["\($0.port)", $0.mtlsMode, $0.decidedBy] }))
        print("\nOutbound connections:")
        print(table(["HOST", "PORT", "CLIENT SENDS", "BECAUSE", "SERVER MODES", "RESULT"], description.outbound.map {
            [$0.host, "\($0.port)", $0.client, $0.clientReason, $0.serverModes.joined(separator: ","), $0.result]
        }))
    }
}

/// `meshctl analyze`: problems in the served configuration.
struct Analyze: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Find problems in the served configuration; exits 1 when there is an error.",
        discussion: "Unknown hosts, subsets or telemetry providers (IST0101), VirtualServices fighting over a host (IST0109), DestinationRules for unknown hosts (IST0174), subsets that select no workload (IST0173), rules no request can reach (IST0130), and STRICT servers whose clients a DestinationRule tells to send plaintext (IST0113).")
    @OptionGroup var server: ServerOptions
    @Option(name: .shortAndLong, help: "text or json.") var output = "text"
    @Option(name: .shortAndLong, help: "Analyze the served configuration with these resources added (a file, a directory, or -; repeatable; kubectl Lists too). Nothing is applied.") var filename: [String] = []

    func run() async throws {
        let client = server.client
        let data: Data
        if filename.isEmpty {
            data = try await client.get("/v1/analyze")
        } else {
            // Read here, so that a problem names its file; sent as one List.
            let items = try readResources(filename).map(\.resource.configValue)
            let list = ConfigValue.object(ConfigObject([("apiVersion", .string("v1")), ("kind", .string("List")), ("items", .array(items))]))
            let answer = try await client.request("POST", "/v1/analyze", body: Data(ConfigJSON.encode(list).utf8))
            guard answer.status == 200 else { throw CLIError(AdminClient.message(answer.body)) }
            data = answer.body
        }
        let messages = try client.decode([AnalysisMessage].self, from: data)
        if output == "json" {
            FileHandle.standardOutput.write(data)
        } else if messages.isEmpty {
            print("✔ No validation issues found.")
        } else {
            for message in messages { print("\(message.level) [\(message.code)] (\(message.resource)) \(message.message)") }
        }
        if messages.contains(where: { $0.level == "Error" }) { throw ExitCode(1) }
    }
}

/// `meshctl audit`: the audit log.
struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the audit log: every change made through the admin API, who made it, when, and how it ended.")
    @OptionGroup var server: ServerOptions

    func run() async throws {
        let client = server.client
        let records = try client.decode([AuditRecord].self, from: try await client.get("/v1/audit"))
        let iso = ISO8601DateFormatter()
        print(table(["TIME", "WHO", "ACTION", "TARGET", "RESULT"], records.map { [iso.string(from: $0.time), $0.who, $0.action, $0.target, $0.result] }))
    }
}
