import MeshClient
import ArgumentParser
import Foundation

/// `meshctl token`: tokens that proxies and renewal jobs authenticate with.
struct Token: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Mint, list and revoke tokens: workload tokens (a namespace and service account) for proxies and renewal jobs, reader and admin tokens for the admin API.",
        subcommands: [Create.self, List.self, Revoke.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Mint a token; prints it on stdout (it is shown only once).")
        @OptionGroup var server: ServerOptions
        @Option(name: .customLong("role"), help: "workload (default), reader (read-only admin API) or admin.") var role = "workload"
        @Option(name: .customLong("namespace"), help: "The namespace (workload tokens).") var namespace: String?
        @Option(name: .customLong("service-account"), help: "The service account (workload tokens).") var serviceAccount: String?
        @Option(name: .customLong("ttl"), help: "Lifetime in seconds (default: no expiry).") var ttl: Int?
        @Option(name: .customLong("workload-group"), help: "A workload token for this WorkloadGroup (namespace/name) only: its namespace and service account, admitting only proxies that register into it.") var workloadGroup: String?

        func validate() throws {
            guard ["workload", "reader", "admin"].contains(role) else { throw ValidationError("--role must be workload, reader or admin") }
            if let workloadGroup {
                guard role == "workload" else { throw ValidationError("--workload-group makes a workload token") }
                guard workloadGroup.split(separator: "/").count == 2 else { throw ValidationError("--workload-group must be namespace/name, got \(workloadGroup)") }
            } else if role == "workload" && (namespace == nil || serviceAccount == nil) {
                throw ValidationError("a workload token needs --namespace and --service-account, or --workload-group")
            }
        }

        func run() async throws {
            var body: [String: Any] = ["role": role]
            if let namespace { body["namespace"] = namespace }
            if let serviceAccount { body["serviceAccount"] = serviceAccount }
            if let ttl { body["ttlSeconds"] = ttl }
            if let workloadGroup { body["workloadGroup"] = workloadGroup }
            let client = server.client
            let minted = try client.decode(MintedToken.self, from: try await client.post("/v1/tokens", json: body))
            let owner = minted.role == "workload" ? " for \(minted.namespace ?? "")/\(minted.serviceAccount ?? "")" + (minted.workloadGroup.map { ", WorkloadGroup \($0) only" } ?? "") : ""
            FileHandle.standardError.write(Data("\(minted.role) token \(minted.id)\(owner)\n".utf8))
            print(minted.token)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List tokens (never the secrets).")
        @OptionGroup var server: ServerOptions

        func run() async throws {
            let client = server.client
            let tokens = try client.decode([TokenInfo].self, from: try await client.get("/v1/tokens"))
            let iso = ISO8601DateFormatter()
            print(table(["ID", "ROLE", "NAMESPACE", "SERVICE ACCOUNT", "WORKLOAD GROUP", "CREATED", "EXPIRES", "REVOKED"], tokens.map {
                [$0.id, $0.role, $0.namespace ?? "-", $0.serviceAccount ?? "-", $0.workloadGroup ?? "-", iso.string(from: $0.createdAt), $0.expiresAt.map(iso.string(from:)) ?? "never", $0.revoked ? "yes" : "no"]
            }))
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a token; streams using it are closed.")
        @OptionGroup var server: ServerOptions
        @Argument(help: "The token id.") var id: String

        func run() async throws {
            _ = try await server.client.delete("/v1/tokens/\(id)")
            print("revoked \(id)")
        }
    }
}
