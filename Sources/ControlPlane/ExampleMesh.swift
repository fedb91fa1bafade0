internal import Foundation

/// The example mesh of the ADR (`examples/tai-system`), built into the binary so that `meshd` runs
/// with no arguments on a fresh machine.
public enum ExampleMesh {
    /// The files, by name.
    public static let files: [(name: String, contents: [UInt8])] = [
        ("services.yaml", PackageResources.services_yaml),
        ("workloads.yaml", PackageResources.workloads_yaml),
        ("sidecars.yaml", PackageResources.sidecars_yaml),
        ("mtls.yaml", PackageResources.mtls_yaml),
        ("governor-circuit-breaker.yaml", PackageResources.governor_circuit_breaker_yaml),
        ("coordinator-canary.yaml", PackageResources.coordinator_canary_yaml),
        ("coordinator-authz.yaml", PackageResources.coordinator_authz_yaml),
        ("tracing.yaml", PackageResources.tracing_yaml),
        ("mesh.yaml", PackageResources.mesh_yaml),
        ("telemetry-backends.yaml", PackageResources.telemetry_backends_yaml),
    ]

    /// Writes the files into `directory` (created if needed).
    public static func write(to directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for file in files {
            let path = (directory as NSString).appendingPathComponent(file.name)
            try Data(file.contents).write(to: URL(fileURLWithPath: path), options: .atomic)
        }
    }
}
