import EnvoyAPI
import ControlPlane
import Foundation
import Logging
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
            ["resources.yaml": serviceYAML("server", namespace: "errors") + "---\n" + workloadYAML("server-1", namespace: "errors", block: 21, host: 2, labels: ["app": "server"], serviceAccount: "server")]
        }

        static func node(_ id: String) -> Envoy_Config_Core_V3_Node {
            var node = Envoy_Config_Core_V3_Node()
            node.id = id
            return node
        }

        static let goodNode = node("sidecar~127.21.0.2~server-1.errors~errors.svc.cluster.local")

        func status(_ mesh: MeshHarness, token: String? = nil, _ body: @escaping @Sendable (ADSConversation) async throws -> Void) async throws -> RPCError? {
            let metadata: Metadata = token.map { ["authorization": "Bearer \($0)"] } ?? [:]
            return try await ADSTestClient.withStream(to: mesh.xdsAddress, security: mesh.security, metadata: metadata) { conversation in
                try await body(conversation)
                do {
                    _ = try await conversation.receive()
                    return nil
                } catch let error as RPCError {
                    return error
                }
            }
        }

        @Test("missing node, unknown workload, delta and garbage each get their status; a type meshd does not serve leaves the stream serving")
        func statuses() async throws {
            try await MeshHarness("xds-errors", files: Self.files).run { mesh in
                let token = try mesh.token("errors", "server")
                let noNode = try await status(mesh, token: token) { $0.request(XDSTypeURL.cluster) }
                #expect(noNode?.code == .invalidArgument)
                #expect(noNode?.message.contains("must carry the node") == true)

                let unknown = try await status(mesh, token: token) { $0.request(XDSTypeURL.cluster, node: Self.node("sidecar~127.21.0.9~ghost.errors~errors.svc.cluster.local")) }
                #expect(unknown?.code == .notFound)
                #expect(unknown?.message.contains("no WorkloadEntry errors/ghost") == true)

                let unnamed = try await status(mesh, token: token) { $0.request(XDSTypeURL.cluster, node: Self.node("not-an-istio-node-id")) }
                #expect(unnamed?.code == .invalidArgument)

                // A type meshd does not serve is left unanswered; the same stream still gets CDS.
                let runtime = "type.googleapis.com/envoy.service.runtime.v3.Runtime"
                let afterRuntime = try await ADSTestClient.withStream(to: mesh.xdsAddress, security: mesh.security, metadata: ["authorization": "Bearer \(token)"]) { conversation in
                    conversation.request(runtime, names: ["rtds"], node: Self.goodNode)
                    #expect(await conversation.receivesNothing(within: .milliseconds(300)))
                    conversation.request(XDSTypeURL.cluster)
                    return try await conversation.receive().typeURL
                }
                #expect(afterRuntime == XDSTypeURL.cluster)
                let afterRuntimeDelta = try await ADSTestClient.withDeltaStream(to: mesh.xdsAddress, security: mesh.security, metadata: ["authorization": "Bearer \(token)"]) { conversation in
                    conversation.request(runtime, subscribe: ["rtds"], node: Self.goodNode)
                    #expect(await conversation.receivesNothing(within: .milliseconds(300)))
                    conversation.request(XDSTypeURL.cluster)
                    return try await conversation.receive().typeURL
                }
                #expect(afterRuntimeDelta == XDSTypeURL.cluster)

                // A 20 MB request: RESOURCE_EXHAUSTED with the reason, not a bare stream reset.
                let huge = try await status(mesh, token: token) { $0.request(XDSTypeURL.cluster, names: [String(repeating: "x", count: 20_000_000)], node: Self.goodNode) }
                #expect(huge?.code == .resourceExhausted && huge?.message.contains("over meshd's limit") == true, "\(String(describing: huge))")

                let garbage = try await rawStream(mesh, bytes: [0xff, 0xff, 0xff, 0xff, 0x0f])
                #expect(garbage?.code == .invalidArgument, "\(String(describing: garbage))")

                let delta = try await deltaStatus(mesh)
                #expect(delta?.code == .invalidArgument, "a delta stream whose first request has no node: \(String(describing: delta))")

                // After all that, a good proxy is still served.
                let clusters = try await ADSTestClient.withStream(to: mesh.xdsAddress, security: mesh.security, metadata: ["authorization": "Bearer \(token)"]) { conversation in
                    conversation.request(XDSTypeURL.cluster, node: Self.goodNode)
                    return try await conversation.receive().resources.count
                }
                #expect(clusters == 3, "inbound, the service and PassthroughCluster")
                #expect(try await mesh.admin("/metrics").body.contains("meshd_xds_refused_streams_total 2"))
            }
        }

        @Test("a stream without a token, with another identity's token, an admin-API token or a revoked token is refused")
        func authentication() async throws {
            try await MeshHarness("xds-auth", files: Self.files).run { mesh in
                let none = try await status(mesh) { $0.request(XDSTypeURL.cluster, node: Self.goodNode) }
                #expect(none?.code == .unauthenticated)

                let other = try await status(mesh, token: try mesh.token("errors", "someone-else")) { $0.request(XDSTypeURL.cluster, node: Self.goodNode) }
                #expect(other?.code == .permissionDenied)
                #expect(other?.message.contains("runs as errors/server") == true)

                let otherNamespace = try await status(mesh, token: try mesh.token("elsewhere", "server")) { $0.request(XDSTypeURL.cluster, node: Self.goodNode) }
                #expect(otherNamespace?.code == .permissionDenied)

                // Admin-API tokens, the admin token among them, are known but not for ADS.
                let reader = try mesh.controlPlane.tokens.mint(namespace: "", serviceAccount: "", ttl: nil, role: "reader").token
                let asReader = try await status(mesh, token: reader) { $0.request(XDSTypeURL.cluster, node: Self.goodNode) }
                let asAdmin = try await status(mesh, token: mesh.adminToken) { $0.request(XDSTypeURL.cluster, node: Self.goodNode) }
                #expect(asReader?.code == .permissionDenied && asAdmin?.code == .permissionDenied, "reader: \(String(describing: asReader)), admin: \(String(describing: asAdmin))")
                #expect(asAdmin?.message.contains("admin token is for the admin API") == true)

                let lying = {
                    var node = Self.goodNode
                    node.metadata.fields["SERVICE_ACCOUNT"] = Google_Protobuf_Value(stringValue: "admin")
                    return node
                }()
                let disagreeing = try await status(mesh, token: try mesh.token("errors", "server")) { $0.request(XDSTypeURL.cluster, node: lying) }
                #expect(disagreeing?.code == .permissionDenied)

                // Revoking a token closes the streams that use it.
                let minted = try mesh.controlPlane.tokens.mint(namespace: "errors", serviceAccount: "server", ttl: nil)
                let closed = try await ADSTestClient.withStream(to: mesh.xdsAddress, security: mesh.security, metadata: ["authorization": "Bearer \(minted.token)"]) { conversation -> RPCError? in
                    conversation.request(XDSTypeURL.cluster, node: Self.goodNode)
                    _ = try await conversation.receive()
                    try mesh.controlPlane.tokens.revoke(id: minted.record.id)
                    do {
                        _ = try await conversation.receive()
                        return nil
                    } catch let error as RPCError {
                        return error
                    }
                }
                #expect(closed?.code == .unauthenticated)
                let revoked = try await status(mesh, token: minted.token) { $0.request(XDSTypeURL.cluster, node: Self.goodNode) }
                #expect(revoked?.message.contains("revoked") == true)
            }
        }

        @Test("plaintext xDS is refused beyond loopback, and a plaintext meshd admits unauthenticated proxies only with the development flag")
        func plaintextAndDevelopmentFlag() async throws {
            try await MeshHarness("xds-dev", files: Self.files, configure: { $0.xdsPlaintext = true; $0.allowUnauthenticatedProxies = true }).run { mesh in
                let clusters = try await ADSTestClient.withStream(to: mesh.xdsAddress, security: .plaintext) { conversation in
                    conversation.request(XDSTypeURL.cluster, node: Self.goodNode)
                    return try await conversation.receive().resources.count
                }
                #expect(clusters == 3, "inbound, the service and PassthroughCluster")
            }
            var options = ControlPlaneOptions(dataDirectory: try TestTools.temporaryDirectory("plaintext-external"), xdsAddress: HostPort(host: "10.0.0.1", port: 0), allowExternalListeners: true, xdsPlaintext: true)
            options.configDirectory = TestTools.packageRoot + "/examples/tai-system"
            #expect(throws: ControlPlane.StartupError.self) { try ControlPlane(options: options, logger: Logger(label: "test")) }
        }

        /// Sends bytes that are not a DiscoveryRequest.
        func rawStream(_ mesh: MeshHarness, bytes: [UInt8]) async throws -> RPCError? {
            try await mesh.security.withClient(mesh.xdsAddress) { client in
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
            try await mesh.security.withClient(mesh.xdsAddress) { client in
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
