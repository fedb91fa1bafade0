import MeshClient
import ArgumentParser
import Foundation
import MeshConfig
import MeshModel
import MeshTranslation
import Yams

/// The kinds by the names users type: plural, singular, kind, or Istio's short names.
func resolveKind(_ text: String) throws -> ResourceKind {
    let lower = text.lowercased()
    let short = ["vs": ResourceKind.virtualService, "dr": .destinationRule, "se": .serviceEntry, "we": .workloadEntry, "gw": .gateway, "pa": .peerAuthentication, "ap": .authorizationPolicy, "ra": .requestAuthentication]
    if let kind = short[lower] { return kind }
    if let kind = ResourceKind.allCases.first(where: { $0.plural == lower || $0.rawValue.lowercased() == lower || $0.plural.dropLast() == lower }) { return kind }
    throw ValidationError("unknown kind \(text); one of \(ResourceKind.allCases.map(\.plural).joined(separator: ", ")) (or vs, dr, se, we, gw, pa, ap, ra)")
}

/// The REST path of a kind in a namespace (and of one resource).
func resourcePath(_ kind: ResourceKind, namespace: String?, name: String? = nil) -> String {
    let base = kind.restPrefix
    guard let namespace else { return "\(base)/\(kind.plural)" }
    return "\(base)/namespaces/\(namespace)/\(kind.plural)" + (name.map { "/\($0)" } ?? "")
}

/// Reads `-f` sources: a file, every .yaml/.yml/.json file under a directory (sorted), or `-` for stdin.
func readSources(_ paths: [String]) throws -> [(source: String, text: String)] {
    var out: [(String, String)] = []
    for path in paths {
        if path == "-" {
            out.append(("stdin", String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)))
            continue
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw CLIError("no such file or directory: \(path)") }
        if isDirectory.boolValue {
            let files = (FileManager.default.enumerator(atPath: path)?.compactMap { $0 as? String } ?? [])
                .filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") || $0.hasSuffix(".json") }.sorted()
            for file in files { out.append(("\(path)/\(file)", try String(contentsOfFile: "\(path)/\(file)", encoding: .utf8))) }
        } else {
            out.append((path, try String(contentsOfFile: path, encoding: .utf8)))
        }
    }
    return out
}

/// Every resource of the `-f` sources (Lists expanded); a problem names its file.
func readResources(_ paths: [String]) throws -> [SourcedResource] {
    var out: [SourcedResource] = []
    for (source, text) in try readSources(paths) {
        do {
            out += try ResourceDocuments.decode(text, source: source)
        } catch {
            throw CLIError("\(error)")
        }
    }
    return out
}

/// `meshctl apply`: create or replace resources through the API.
struct Apply: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create or replace resources from YAML or JSON (several documents per file; a directory; - for stdin).",
        discussion: "Documents may be kubectl's List form (kind: List, items: [...]); objects exported from a Kubernetes cluster are applied without what its API server set (uid, resourceVersion, status). meshctl reads every document first: if one is not valid YAML, not a kind meshd serves, or has an unknown field, nothing is applied. Each resource is then checked by meshd exactly as a file would be; an invalid one is refused with its field path and nothing of it changes. Resources from meshd's config directory are read-only here.")
    @OptionGroup var server: ServerOptions
    @Option(name: .shortAndLong, help: "A file, a directory, or - (repeatable).") var filename: [String]
    @Flag(name: .customLong("dry-run"), help: "Check every resource as meshd would, and show what would change in each proxy's configuration (as meshctl diff), without changing anything (also --dry-run=server, as kubectl).") var dryRun = false

    func run() async throws {
        // Every document is read and decoded first: one that meshctl can already tell is wrong
        // (YAML, an unknown kind or field) stops the whole apply before anything changes.
        var resources: [(origin: String, resource: MeshResource)] = []
        var problems: [String] = []
        for (source, text) in try readSources(filename) {
            let documents: [SourceDocument]
            do {
                documents = try ResourceDocuments.documents(text, source: source)
            } catch {
                problems.append("\(error)")
                continue
            }
            for document in documents {
                // An object exported from a Kubernetes API server carries the server's bookkeeping
                // (uid, its resourceVersion, status), which means nothing to meshd.
                let value = KubernetesImport.asRead(document.value)
                do throws(ResourceDecodeError) {
                    resources.append((SourceDocument.origin(source, document: document.document, item: document.item), try MeshResource(document: value)))
                } catch {
                    var problem = ConfigLoadError(source: source, document: document.document, item: document.item, decode: error).description
                    if let kind = value["kind"]?.stringValue, KubernetesImport.convertedKinds.contains(kind) {
                        problem += " (Kubernetes' \(kind) objects become meshd resources through meshctl import kubernetes)"
                    }
                    problems.append(problem)
                }
            }
        }
        if !problems.isEmpty {
            for problem in problems { FileHandle.standardError.write(Data("\(problem)\n".utf8)) }
            throw CLIError("nothing was applied: \(problems.count) document\(problems.count == 1 ? " is" : "s are") invalid")
        }
        let client = server.client
        var failures = 0
        for (position, item) in resources.enumerated() {
            let progress = resources.count > 1 ? "[\(position + 1)/\(resources.count)] " : ""
            do {
                let outcome = try await apply(item.resource, client: client)
                print("\(progress)\(outcome)")
            } catch {
                failures += 1
                FileHandle.standardError.write(Data("\(progress)\(item.origin): \(error)\n".utf8))
            }
        }
        if failures > 0 {
            FileHandle.standardError.write(Data("\(failures) of \(resources.count) resources were not applied\n".utf8))
            throw ExitCode(1)
        }
        if dryRun {
            print(Diff.text(try await Diff.request(resources.map(\.resource), client: client).0), terminator: "")
        }
    }

    private func apply(_ resource: MeshResource, client: AdminClient) async throws -> String {
        let key = resource.key
        let suffix = dryRun ? " (dry run)" : ""
        let query = dryRun ? "?dryRun=All" : ""
        let body = Data(ConfigJSON.encode(resource.configValue).utf8)
        let current = try await client.request("GET", resourcePath(key.kind, namespace: key.namespace, name: key.name), body: nil)
        if current.status == 404 {
            let created = try await client.request("POST", resourcePath(key.kind, namespace: key.namespace) + query, body: body)
            guard (200..<300).contains(created.status) else { throw CLIError("\(key): \(AdminClient.message(created.body))") }
            return "\(key) created\(suffix)"
        }
        guard current.status == 200 else { throw CLIError("\(key): \(AdminClient.message(current.body))") }
        if let existing = try? MeshResource(document: try YAMLDocuments.parse(String(decoding: current.body, as: UTF8.self), source: "meshd")[0].value),
           existing.spec == resource.spec, existing.metadata.labels == resource.metadata.labels,
           existing.metadata.annotations.filter({ $0.key != sourceAnnotation }) == resource.metadata.annotations {
            return "\(key) unchanged"
        }
        let replaced = try await client.request("PUT", resourcePath(key.kind, namespace: key.namespace, name: key.name) + query, body: body)
        guard (200..<300).contains(replaced.status) else { throw CLIError("\(key): \(AdminClient.message(replaced.body))") }
        return "\(key) configured\(suffix)"
    }
}

/// `meshctl get`: list or show resources.
struct Get: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List resources of a kind, or show one.")
    @OptionGroup var server: ServerOptions
    @Argument(help: "The kind (virtualservices, vs, destinationrules, dr, ...).") var kind: String
    @Argument(help: "A resource name.") var name: String?
    @Option(name: .shortAndLong, help: "The namespace.") var namespace = "default"
    @Flag(name: [.customShort("A"), .customLong("all-namespaces")], help: "Every namespace.") var allNamespaces = false
    @Option(name: .shortAndLong, help: "table (default), wide, yaml or json.") var output = "table"
    @Flag(help: "Show a Secret's data (admin token only; audited). Without it Secrets are shown without their data.") var reveal = false

    func run() async throws {
        let kind = try resolveKind(self.kind)
        if reveal && (kind != .secret || name == nil) { throw ValidationError("--reveal shows one Secret: meshctl get secret NAME --reveal") }
        let client = server.client
        let path = name.map { resourcePath(kind, namespace: namespace, name: $0) + (reveal ? "?reveal=true" : "") }
            ?? resourcePath(kind, namespace: allNamespaces ? nil : namespace)
        let data = try await client.get(path)
        let object = try JSONSerialization.jsonObject(with: data)
        switch output {
        case "json":
            FileHandle.standardOutput.write(data)
        case "yaml":
            let items = name == nil ? ((object as? [String: Any])?["items"] as? [Any] ?? []) : [object]
            print(try items.map { try Yams.dump(object: $0, sortKeys: true) }.joined(separator: "---\n"), terminator: "")
        case "table", "wide":
            let items = name == nil ? ((object as? [String: Any])?["items"] as? [[String: Any]] ?? []) : [object as? [String: Any] ?? [:]]
            let rows = items.map { item -> [String] in
                let metadata = item["metadata"] as? [String: Any] ?? [:]
                let annotations = metadata["annotations"] as? [String: String] ?? [:]
                var row = [metadata["namespace"] as? String ?? "", metadata["name"] as? String ?? ""]
                if kind == .workloadEntry {
                    let spec = item["spec"] as? [String: Any] ?? [:]
                    let conditions = (item["status"] as? [String: Any])?["conditions"] as? [[String: Any]] ?? []
                    let healthy = conditions.first { $0["type"] as? String == "Healthy" }
                    let health = healthy.map { ["True": "Healthy", "False": "Unhealthy", "Unknown": "Unknown"][$0["status"] as? String ?? ""] ?? "-" } ?? "-"
                    row += [spec["address"] as? String ?? "-", annotations[AutoRegistration.groupAnnotation] ?? "-", health]
                }
                if output == "wide" {
                    row += [metadata["resourceVersion"] as? String ?? "-", annotations[sourceAnnotation] ?? "-"]
                }
                return row
            }
            if rows.isEmpty { print("No \(kind.plural) found"); return }
            let kindColumns = kind == .workloadEntry ? ["ADDRESS", "GROUP", "HEALTH"] : []
            print(table(["NAMESPACE", "NAME"] + kindColumns + (output == "wide" ? ["RESOURCE VERSION", "SOURCE"] : []), rows))
        default:
            throw ValidationError("-o must be table, wide, yaml or json")
        }
    }
}

/// `meshctl delete`: delete resources applied through the API.
struct Delete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Delete resources by kind and name, or those in files (-f).")
    @OptionGroup var server: ServerOptions
    @Argument(help: "The kind.") var kind: String?
    @Argument(help: "The names.") var names: [String] = []
    @Option(name: .shortAndLong, help: "The namespace.") var namespace = "default"
    @Option(name: .shortAndLong, help: "Delete what these files define.") var filename: [String] = []

    func run() async throws {
        var keys: [ResourceKey] = []
        if let kind {
            let resolved = try resolveKind(kind)
            keys = names.map { ResourceKey(kind: resolved, namespace: namespace, name: $0) }
        }
        keys += try readResources(filename).map(\.resource.key)
        guard !keys.isEmpty else { throw ValidationError("say what to delete: KIND NAME... or -f FILE") }
        let client = server.client
        var failures = 0
        for key in keys {
            let answer = try await client.request("DELETE", resourcePath(key.kind, namespace: key.namespace, name: key.name), body: nil)
            if (200..<300).contains(answer.status) {
                print("\(key) deleted")
            } else {
                failures += 1
                FileHandle.standardError.write(Data("\(key): \(AdminClient.message(answer.body))\n".utf8))
            }
        }
        if failures > 0 { throw ExitCode(1) }
    }
}
