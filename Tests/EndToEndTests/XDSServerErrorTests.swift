import EnvoyAPI
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import MeshModel
import SwiftProtobuf
import Testing
import XDSTesting

extension EndToEnd {
    /// Bad requests on the real gRPC server end the stream with a clear status; meshd keeps serving.
    @Suite("ADS refuses bad streams with clear gRPC statuses")
    struct XDSServerErrors {
        static var files: [String: String] {
            ["mesh.yaml": serviceYAML("server", namespace: "errors") + "---\n" + workloadYAML("server-1", namespace: "errors", block: 21, host: 2, labels: ["app": "server"], serviceAccount: "server")]
        }

        static func node(_ id: String) -> Envoy_Config_Core_V3_Node {
            var node = Envoy_Config_Core_V3_Node()
            node.id = id
            return node
        }

        static let goodNode = node("sidecar~127.21.0.2~server-1.errors~errors.svc.cluster.local")

        func status(_ mesh: MeshHarness, _ body: @escaping @Sendable (ADSConversation) async throws -> Void) async throws -> RPCError? {
            try await ADSTestClient.withStream(to: mesh.xdsAddress) { conversation in
                try await body(conversation)
                do {
                    _ = try await conversation.receive()
                    return nil
                } catch let error as RPCError {
                    return error
                }
            }
        }

        @Test("missing node, unknown workload, unknown type, delta and garbage each get their status")
        func statuses() async throws {
            let mesh = try await MeshHarness("xds-errors", files: Self.files)
            do {
                let noNode = try await status(mesh) { $0.request(XDSTypeURL.cluster) }
                #expect(noNode?.code == .invalidArgument)
                #expect(noNode?.message.contains("must carry the node") == true)

                let unknown = try await status(mesh) { $0.request(XDSTypeURL.cluster, node: Self.node("sidecar~127.21.0.9~ghost.errors~errors.svc.cluster.local")) }
                #expect(unknown?.code == .notFound)
                #expect(unknown?.message.contains("no WorkloadEntry errors/ghost") == true)

                let unnamed = try await status(mesh) { $0.request(XDSTypeURL.cluster, node: Self.node("not-an-istio-node-id")) }
                #expect(unnamed?.code == .invalidArgument)

                let badType = try await status(mesh) { $0.request("type.googleapis.com/envoy.config.cluster.v3.Nope", node: Self.goodNode) }
                #expect(badType?.code == .invalidArgument)
                #expect(badType?.message.contains("unsupported type_url") == true)

                let garbage = try await rawStream(mesh, bytes: [0xff, 0xff, 0xff, 0xff, 0x0f])
                #expect(garbage?.code == .invalidArgument, "\(String(describing: garbage))")

                let delta = try await deltaStatus(mesh)
                #expect(delta?.code == .unimplemented)

                // After all that, a good proxy is still served.
                let clusters = try await ADSTestClient.withStream(to: mesh.xdsAddress) { conversation in
                    conversation.request(XDSTypeURL.cluster, node: Self.goodNode)
                    return try await conversation.receive().resources.count
                }
                #expect(clusters == 2)
                #expect(try await mesh.admin("/metrics").body.contains("meshd_xds_refused_streams_total 2"))
            } catch {
                await mesh.stop()
                throw error
            }
            await mesh.stop()
        }

        /// Sends bytes that are not a DiscoveryRequest.
        func rawStream(_ mesh: MeshHarness, bytes: [UInt8]) async throws -> RPCError? {
            try await withGRPCClient(transport: .http2NIOPosix(target: .ipv4(address: "127.0.0.1", port: mesh.xdsPort), transportSecurity: .plaintext)) { client in
                do {
                    try await client.bidirectionalStreaming(
                        request: StreamingClientRequest(of: [UInt8].self) { writer in try await writer.write(bytes) },
                        descriptor: Envoy_Service_Discovery_V3_AggregatedDiscoveryService.Method.StreamAggregatedResources.descriptor,
                        serializer: RawBytes(), deserializer: RawBytes(), options: .defaults
                    ) { response in
                        for try await _ in response.messages {}
                    }
                    return nil
                } catch let error as RPCError {
                    return error
                }
            }
        }

        func deltaStatus(_ mesh: MeshHarness) async throws -> RPCError? {
            try await withGRPCClient(transport: .http2NIOPosix(target: .ipv4(address: "127.0.0.1", port: mesh.xdsPort), transportSecurity: .plaintext)) { client in
                let ads = Envoy_Service_Discovery_V3_AggregatedDiscoveryService.Client(wrapping: client)
                do {
                    try await ads.deltaAggregatedResources(request: StreamingClientRequest { writer in
                        try await writer.write(Envoy_Service_Discovery_V3_DeltaDiscoveryRequest())
                    }) { response in
                        for try await _ in response.messages {}
                    }
                    return nil
                } catch let error as RPCError {
                    return error
                }
            }
        }
    }
}

/// Passes bytes through unchanged, to send messages that are not valid protobuf.
struct RawBytes: MessageSerializer, MessageDeserializer {
    func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes { Bytes(message) }
    func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> [UInt8] {
        serializedMessageBytes.withUnsafeBytes { Array($0) }
    }
}
