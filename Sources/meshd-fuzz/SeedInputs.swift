import EnvoyAPI
import Foundation
import SwiftProtobuf
import XDSServer

/// Seed inputs for the xds target: the record format of ``FuzzTargets/xds(_:)``.
enum SeedInputs {
    static func record(_ op: UInt8, _ payload: [UInt8]) -> [UInt8] {
        [UInt8(payload.count >> 8), UInt8(payload.count & 0xff), op] + payload
    }

    static func sotw(_ typeURL: String, names: [String] = [], version: String = "", nonce: String = "") throws -> [UInt8] {
        var request = Envoy_Service_Discovery_V3_DiscoveryRequest()
        request.typeURL = typeURL
        request.resourceNames = names
        request.versionInfo = version
        request.responseNonce = nonce
        request.node.id = "sidecar~127.0.0.2~a.ns~ns.svc.cluster.local"
        return record(0, try request.serializedBytes())
    }

    static func delta(_ typeURL: String, subscribe: [String] = [], initial: [String: String] = [:], nonce: String = "") throws -> [UInt8] {
        var request = Envoy_Service_Discovery_V3_DeltaDiscoveryRequest()
        request.typeURL = typeURL
        request.resourceNamesSubscribe = subscribe
        request.initialResourceVersions = initial
        request.responseNonce = nonce
        return record(1, try request.serializedBytes())
    }

    static func writeXDS(to directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let seeds: [String: [UInt8]] = [
            "sotw-handshake": try record(2, [0]) + sotw(XDSTypeURL.cluster) + sotw(XDSTypeURL.cluster, nonce: "1")
                + sotw(XDSTypeURL.endpoint, names: ["a", "b"]) + sotw(XDSTypeURL.endpoint, names: ["a", "b"], nonce: "2")
                + sotw(XDSTypeURL.listener) + sotw(XDSTypeURL.route, names: ["r1"]) + record(2, [1]) + sotw(XDSTypeURL.listener, nonce: "3"),
            "delta-handshake": try record(2, [2]) + delta(XDSTypeURL.cluster) + delta(XDSTypeURL.cluster, nonce: "1")
                + delta(XDSTypeURL.endpoint, subscribe: ["a", "c"]) + delta(XDSTypeURL.route, subscribe: ["r1", "r2"]) + record(2, [1]),
            "delta-reconnect": try record(2, [0]) + delta(XDSTypeURL.cluster, initial: ["a": "1", "b": "2"]) + delta(XDSTypeURL.secret, subscribe: ["default"]),
            "unserved": try record(2, [0]) + sotw("type.googleapis.com/envoy.service.runtime.v3.Runtime", names: ["rtds"]) + sotw(XDSTypeURL.cluster),
        ]
        for (name, bytes) in seeds {
            try Data(bytes).write(to: URL(fileURLWithPath: "\(directory)/\(name)"))
        }
    }
}
