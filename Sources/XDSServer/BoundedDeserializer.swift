public import EnvoyAPI
public import GRPCCore
internal import GRPCProtobuf
public import SwiftProtobuf

/// Decodes a request unless it is larger than `limit` bytes, which ends the RPC with
/// RESOURCE_EXHAUSTED and a message saying so (the transport only resets streams that are over
/// its own, larger, limit).
public struct BoundedDeserializer<Message: SwiftProtobuf.Message>: MessageDeserializer {
    /// The largest request accepted, in bytes.
    public let limit: Int

    /// A deserializer refusing requests over `limit` bytes.
    public init(limit: Int) {
        self.limit = limit
    }

    public func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> Message {
        guard serializedMessageBytes.count <= limit else {
            throw RPCError(
                code: .resourceExhausted,
                message: "a request of \(serializedMessageBytes.count) bytes is over meshd's limit of \(limit) bytes")
        }
        return try ProtobufDeserializer<Message>().deserialize(serializedMessageBytes)
    }
}

extension AggregatedDiscoveryService {
    /// The largest discovery request meshd decodes: Envoy's largest (a delta reconnect listing
    /// every resource it holds, or a NACK's error text) stays far below it.
    public static let maximumRequestBytes = 4 * 1024 * 1024

    /// Registers both ADS methods with requests bounded by ``maximumRequestBytes``.
    public func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        typealias Service = Envoy_Service_Discovery_V3_AggregatedDiscoveryService
        router.registerHandler(
            forMethod: Service.Method.StreamAggregatedResources.descriptor,
            deserializer: BoundedDeserializer<Envoy_Service_Discovery_V3_DiscoveryRequest>(limit: Self.maximumRequestBytes),
            serializer: ProtobufSerializer<Envoy_Service_Discovery_V3_DiscoveryResponse>(),
            handler: { request, context in try await self.streamAggregatedResources(request: request, context: context) })
        router.registerHandler(
            forMethod: Service.Method.DeltaAggregatedResources.descriptor,
            deserializer: BoundedDeserializer<Envoy_Service_Discovery_V3_DeltaDiscoveryRequest>(limit: Self.maximumRequestBytes),
            serializer: ProtobufSerializer<Envoy_Service_Discovery_V3_DeltaDiscoveryResponse>(),
            handler: { request, context in try await self.deltaAggregatedResources(request: request, context: context) })
    }
}
