import Foundation
import Testing
import MeshConfig
import MeshModel

/// The example mesh shipped in examples/tai-system: the ADR's YAML blocks are acceptance cases.
let examplesDirectory: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path + "/examples/tai-system"
}()

func temporaryDirectory() throws -> String {
    let path = NSTemporaryDirectory() + "meshd-config-test-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

@Suite("Loading a config directory")
struct ConfigDirectoryTests {
    @Test("every ADR example decodes: mTLS, circuit breaker, canary, authorization, telemetry")
    func adrExamples() throws {
        let resources = try ConfigDirectory(path: examplesDirectory).load()
        let keys = Set(resources.map(\.resource.key.description))
        for expected in [
            "PeerAuthentication tai-system/default", "DestinationRule tai-system/governor-circuit-breaker",
            "VirtualService tai-system/coordinator-canary", "DestinationRule tai-system/coordinator",
            "AuthorizationPolicy tai-system/coordinator-authz", "Telemetry tai-system/tai-tracing",
        ] {
            #expect(keys.contains(expected), "missing \(expected)")
        }
        let breaker = try #require(resources.first { $0.resource.metadata.name == "governor-circuit-breaker" })
        guard case .destinationRule(let rule) = breaker.resource.spec else { Issue.record("not a DestinationRule"); return }
        #expect(rule.trafficPolicy?.connectionPool?.http?.http1MaxPendingRequests == 50)
        #expect(rule.trafficPolicy?.outlierDetection?.consecutive5xxErrors == 5)
        #expect(rule.trafficPolicy?.outlierDetection?.baseEjectionTime == .seconds(30))
        let tracing = try #require(resources.first { $0.resource.metadata.name == "tai-tracing" })
        guard case .telemetry(let telemetry) = tracing.resource.spec else { Issue.record("not Telemetry"); return }
        #expect(telemetry.tracing?.first?.randomSamplingPercentage == 100)
        #expect(telemetry.tracing?.first?.providers?.first?.name == "jaeger")
    }

    @Test("an error names the file, the document, the resource and the field")
    func errorContext() throws {
        let directory = try temporaryDirectory()
        try """
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: ok, namespace: ns}
            spec: {hosts: [ok.example.com]}
            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: reviews, namespace: ns}
            spec:
              hosts: [reviews]
              http:
              - route:
                - destination: {hots: reviews}
            """.write(toFile: directory + "/mesh-resources.yaml", atomically: true, encoding: .utf8)
        #expect {
            try ConfigDirectory(path: directory).load()
        } throws: { error in
            guard let error = error as? ConfigLoadError else { return false }
            return error.description == "\(directory)/mesh-resources.yaml, document 2 (VirtualService ns/reviews): spec.http[0].route[0].destination.hots: unknown field \"hots\" (Destination has: host, subset, port)"
        }
    }

    @Test("the same resource in two files is refused")
    func duplicates() throws {
        let directory = try temporaryDirectory()
        let entry = "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: w, namespace: ns}\nspec: {address: 127.0.0.2}\n"
        try entry.write(toFile: directory + "/a.yaml", atomically: true, encoding: .utf8)
        try entry.write(toFile: directory + "/b.yml", atomically: true, encoding: .utf8)
        #expect {
            try ConfigDirectory(path: directory).load()
        } throws: { error in
            (error as? ConfigLoadError)?.reason == "defined twice: also in \(directory)/a.yaml, document 1"
        }
    }

    @Test("hidden files, backups and other extensions are skipped; subdirectories are read")
    func fileSelection() throws {
        let directory = try temporaryDirectory()
        try FileManager.default.createDirectory(atPath: directory + "/sub", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: directory + "/.git", withIntermediateDirectories: true)
        for name in ["sub/a.yaml", ".hidden.yaml", ".git/c.yaml", "notes.txt", "d.yaml~"] {
            try "x: [".write(toFile: directory + "/" + name, atomically: true, encoding: .utf8)
        }
        #expect(try ConfigDirectory(path: directory).files() == [directory + "/sub/a.yaml"])
    }

    @Test("a data directory inside the config directory is not read as configuration")
    func dataDirectoryInside() throws {
        let directory = try temporaryDirectory()
        try FileManager.default.createDirectory(atPath: directory + "/data/sds", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: directory + "/database", withIntermediateDirectories: true)
        for name in ["a.yaml", "data/sds/0011.json", "database/b.yaml"] {
            try "x: [".write(toFile: directory + "/" + name, atomically: true, encoding: .utf8)
        }
        let files = try ConfigDirectory(path: directory, excluding: [directory + "/./data/", "/elsewhere"]).files()
        #expect(files == [directory + "/a.yaml", directory + "/database/b.yaml"])
    }

    @Test("a file holding a Secret must be readable by its owner only, as the CA's keys")
    func secretPermissions() throws {
        let directory = try temporaryDirectory()
        let file = directory + "/credential.yaml"
        let pem = "-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n"
        try "apiVersion: v1\nkind: Secret\nmetadata: {name: cred-cacert, namespace: istio-system}\nstringData: {ca.crt: \"\(pem)\"}\n"
            .write(toFile: file, atomically: true, encoding: .utf8)
        chmod(file, 0o644)
        #expect { try ConfigDirectory(path: directory).load() } throws: { error in
            "\(error)".contains("holds a Secret and is readable by other users (mode 644); chmod 600 it")
        }
        chmod(file, 0o600)
        #expect(try ConfigDirectory(path: directory).load().map(\.resource.kind) == [.secret])
    }
}
