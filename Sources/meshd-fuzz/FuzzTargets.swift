import CertificateAuthority
import EnvoyAPI
import Foundation
import MeshConfig
import MeshModel
import SwiftProtobuf
import XDSCache
import XDSServer

/// The fuzz targets: each takes arbitrary bytes and must neither crash nor hang, whatever they
/// are. Errors are the expected outcome for almost every input; only traps (a failed
/// precondition, an out-of-range index, a forced unwrap) count as findings.
enum FuzzTargets {
    static let names = ["config", "csr", "xds"]

    /// Runs `target` on one input.
    static func run(_ target: String, _ bytes: [UInt8]) {
        switch target {
        case "config": config(bytes)
        case "csr": csr(bytes)
        case "xds": xds(bytes)
        default: fatalError("unknown fuzz target \(target); targets: \(names.joined(separator: ", "))")
        }
    }

    /// YAML/JSON into the Istio model: documents, strict decoding, validation, and mesh.yaml.
    static func config(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        if let resources = try? ResourceDocuments.decode(text, source: "fuzz.yaml") {
            _ = GatewayCredentials.problems(in: Dictionary(resources.map { ($0.resource.key, $0.resource) }, uniquingKeysWith: { $1 }))
        }
        if let documents = try? YAMLDocuments.parse(text, source: "mesh.yaml") {
            for document in documents { _ = try? MeshTelemetry(document: document.value) }
        }
        // The same text as a kubectl export (meshctl import kubernetes), and written back as YAML.
        if let documents = try? ResourceDocuments.documents(text, source: "export.yaml") {
            _ = KubernetesImport.convert(documents.map { KubernetesImport.Input(source: "export.yaml", document: $0) })
            for document in documents.prefix(4) { _ = try? YAMLDocuments.write(document.value) }
        }
    }

    static let caller = SpiffeID(trustDomain: "cluster.local", namespace: "fuzz", serviceAccount: "fuzz")

    /// CSR parsing and the CSR policy: the input as a PEM, and as the DER inside one.
    static func csr(_ bytes: [UInt8]) {
        _ = try? CSRPolicy.check(pem: String(decoding: bytes, as: UTF8.self), caller: caller)
        let wrapped = "-----BEGIN CERTIFICATE REQUEST-----\n" + Data(bytes).base64EncodedString(options: .lineLength64Characters)
            + "\n-----END CERTIFICATE REQUEST-----\n"
        _ = try? CSRPolicy.check(pem: wrapped, caller: caller)
    }

    /// Configurations the stream machines are given between requests.
    static let resourceSets: [XDSResourceSet] = {
        func set(clusters: [String], routes: [String: String]) -> XDSResourceSet {
            var set = XDSResourceSet()
            for name in clusters {
                var cluster = Envoy_Config_Cluster_V3_Cluster()
                cluster.name = name
                set.insert(XDSResource(name: name, message: cluster))
                var assignment = Envoy_Config_Endpoint_V3_ClusterLoadAssignment()
                assignment.clusterName = name
                set.insert(XDSResource(name: name, message: assignment))
            }
            var listener = Envoy_Config_Listener_V3_Listener()
            listener.name = "l"
            listener.statPrefix = routes.keys.sorted().joined()
            set.insert(XDSResource(name: "l", message: listener))
            for (name, value) in routes {
                var route = Envoy_Config_Route_V3_RouteConfiguration()
                route.name = name
                route.requestHeadersToRemove = [value]
                set.insert(XDSResource(name: name, message: route))
            }
            var secret = Envoy_Extensions_TransportSockets_Tls_V3_Secret()
            secret.name = "default"
            set.insert(XDSResource(name: "default", message: secret))
            return set
        }
        return [
            set(clusters: ["a", "b"], routes: ["r1": "x"]), set(clusters: ["a"], routes: ["r1": "y"]),
            set(clusters: ["a", "c"], routes: ["r1": "x", "r2": "z"]), XDSResourceSet(),
        ]
    }()

    /// The stream machines (state of the world and delta, side by side): the input is a sequence
    /// of records `[length: 2 bytes][op][payload]`; op 0 is a DiscoveryRequest, 1 a
    /// DeltaDiscoveryRequest (protobuf), 2 a new configuration (payload[0] picks one).
    static func xds(_ bytes: [UInt8]) {
        var sotw = SotWStreamStateMachine()
        var delta = DeltaStreamStateMachine()
        var offset = 0
        var records = 0
        while offset + 3 <= bytes.count, records < 256 {
            let length = Int(bytes[offset]) << 8 | Int(bytes[offset + 1])
            let op = bytes[offset + 2]
            let start = offset + 3
            let end = min(bytes.count, start + length)
            let payload = Array(bytes[start..<end])
            offset = end
            records += 1
            switch op % 3 {
            case 0:
                if let request = try? Envoy_Service_Discovery_V3_DiscoveryRequest(serializedBytes: payload) { _ = try? sotw.received(request) }
            case 1:
                if let request = try? Envoy_Service_Discovery_V3_DeltaDiscoveryRequest(serializedBytes: payload) { _ = try? delta.received(request) }
            default:
                let set = resourceSets[Int(payload.first ?? 0) % resourceSets.count]
                _ = sotw.update(set)
                _ = delta.update(set)
            }
        }
        _ = sotw.isSettled
        _ = delta.isSettled
    }
}

#if FUZZING
import CLibFuzzer

/// libFuzzer's entry point; the target is chosen by `MESHD_FUZZ_TARGET`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    FuzzTargets.run(FuzzEnvironment.target, Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

enum FuzzEnvironment {
    static let target = ProcessInfo.processInfo.environment["MESHD_FUZZ_TARGET"] ?? "config"
}

/// The fuzzing build's main: hands over to libFuzzer's driver.
@main
struct FuzzMain {
    static func main() {
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzOneInput(data, size) })
    }
}
#endif
