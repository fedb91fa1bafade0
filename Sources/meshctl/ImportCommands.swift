import ArgumentParser
import CertificateAuthority
import Foundation
import MeshConfig
import MeshModel
import Yams

/// `meshctl import`: configuration from another control plane.
struct Import: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Turn another control plane's configuration into meshd's.",
        subcommands: [ImportKubernetes.self])
}

/// `meshctl import kubernetes`: a kubectl export of a cluster running Istio into meshd's files.
struct ImportKubernetes: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kubernetes",
        abstract: "Convert a kubectl export (Istio's kinds, Services, EndpointSlices, Pods, ...) into meshd configuration.",
        discussion: """
            Export with: kubectl get virtualservices,destinationrules,gateways,serviceentries,workloadentries,sidecars,peerauthentications,authorizationpolicies,telemetries,services,endpointslices,pods,serviceaccounts -A -o yaml > export.yaml
            Each Service becomes a MESH_INTERNAL ServiceEntry (host <service>.<namespace>.svc.cluster.local, its selector as workloadSelector), each ready Pod a WorkloadEntry (address, labels, service account, locality from its node); Istio's resources and TLS Secrets are kept as they are. What cannot be carried over is listed with the reason. If any object cannot be read, nothing is written. See docs/MIGRATION.md.
            """)
    @Option(name: .shortAndLong, help: "An export file, a directory of them, or - (repeatable).") var filename: [String]
    @Option(name: .long, help: "Import only this namespace (repeatable; Kubernetes' own namespaces are left out unless named).") var namespace: [String] = []
    @Option(name: .shortAndLong, help: "Write one file per namespace into this directory (a config directory meshd can watch); without it, print to stdout.") var output: String?
    @Flag(name: .customLong("skip-unsupported"), help: "Leave out objects of kinds meshd does not import (Deployments, ConfigMaps, ...) instead of refusing the export.") var skipUnsupported = false

    func run() async throws {
        var inputs: [KubernetesImport.Input] = []
        for (source, text) in try readSources(filename) {
            do {
                inputs += try ResourceDocuments.documents(text, source: source).map { KubernetesImport.Input(source: source, document: $0) }
            } catch {
                throw CLIError("\(error)")
            }
        }
        let result = KubernetesImport.convert(inputs, options: .init(namespaces: namespace.isEmpty ? nil : Set(namespace), skipUnsupported: skipUnsupported))
        for note in result.notes { FileHandle.standardError.write(Data("not carried: \(note)\n".utf8)) }
        guard result.errors.isEmpty else {
            for error in result.errors { FileHandle.standardError.write(Data("error: \(error)\n".utf8)) }
            throw CLIError("nothing was written: \(result.errors.count) object\(result.errors.count == 1 ? "" : "s") cannot be imported")
        }
        // Everything is written out as text before any file is touched.
        let byNamespace = Dictionary(grouping: result.resources, by: \.metadata.namespace)
        let files = try byNamespace.keys.sorted().map { namespace in
            let resources = byNamespace[namespace]!
            return (namespace: namespace, text: try resources.map(Self.yaml).joined(separator: "---\n"), holdsSecret: resources.contains { $0.kind == .secret })
        }
        var written: [String] = []
        if let output {
            try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
            for file in files {
                let path = "\(output)/\(file.namespace).yaml"
                // meshd refuses a config file holding a Secret that others may read.
                try AtomicFile.write(file.text, to: path, mode: file.holdsSecret ? 0o600 : 0o644)
                written.append(path)
            }
        } else {
            print(files.map(\.text).joined(separator: "---\n"), terminator: "")
        }
        let counts = Dictionary(grouping: result.resources, by: \.kind).sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.value.count) \($0.key.rawValue)" }
        FileHandle.standardError.write(Data("imported \(result.resources.count) resources (\(counts.joined(separator: ", "))); \(result.notes.count) not carried\(written.isEmpty ? "" : "; wrote " + written.joined(separator: ", "))\n".utf8))
    }

    /// A resource as YAML.
    static func yaml(_ resource: MeshResource) throws -> String {
        try YAMLDocuments.write(resource.configValue)
    }
}
