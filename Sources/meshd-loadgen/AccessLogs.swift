import ArgumentParser
import ControlPlane
import EnvoyAPI
import Foundation
import GRPCCore
import MeshModel
import MeshTranslation
import SwiftProtobuf
import XDSTesting

/// What Istio's standard metrics cost meshd: access log entries streamed to its access log
/// service as sidecars send them (batches per message, one stream per proxy), timed against
/// meshd's CPU and memory.
struct AccessLogs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "access-logs", abstract: "Stream access log entries to meshd as sidecars do; meshd's CPU per entry and memory per series.")
    @Option(help: "meshd's xDS address (plaintext).") var target = "127.0.0.1:15012"
    @Option(help: "nodes.json from `meshd-loadgen mesh`.") var nodes: String
    @Option(name: .customLong("data-dir"), help: "meshd's data directory (for the workloads' report keys).") var dataDirectory: String
    @Option(help: "How many proxies stream (one stream each, nodes round-robin).") var streams = 100
    @Option(help: "Entries each proxy sends.") var entries = 2000
    @Option(help: "Entries per message (Envoy sends what it buffered: up to 16 KiB, about 40 entries, or a second's worth).") var batch = 40
    @Option(help: "Destinations per proxy (its namespace's services): the label sets a proxy reports.") var destinations = 5
    @Option(help: "meshd's process id, for its CPU and memory (from /proc).") var pid: Int32?

    func run() async throws {
        guard let address = HostPort(target) else { throw ValidationError("--target must be host:port") }
        let list = try JSONDecoder().decode([GeneratedMesh.Node].self, from: Data(contentsOf: URL(fileURLWithPath: nodes)))
        guard !list.isEmpty else { throw ValidationError("\(nodes) lists no node") }
        let keys = try MetricsReportKeys(dataDirectory: dataDirectory)
        let byNamespace = Dictionary(grouping: list, by: \.namespace)

        // Every message is made before the clock starts: the load generator's own work stays out.
        var plans: [(key: String, messages: [Envoy_Service_Accesslog_V3_StreamAccessLogsMessage])] = []
        // The label sets the entries make: (source, destination, failed).
        var series = Set<[String]>()
        for index in 0..<streams {
            let node = list[index % list.count]
            let peers = Array((byNamespace[node.namespace] ?? [node]).prefix(destinations))
            var messages: [Envoy_Service_Accesslog_V3_StreamAccessLogsMessage] = []
            var sent = 0
            while sent < entries {
                var message = Envoy_Service_Accesslog_V3_StreamAccessLogsMessage()
                if messages.isEmpty {
                    message.identifier.node.id = NodeIdentity.nodeID(workload: .init(namespace: node.namespace, name: node.name), address: node.address)
                    message.identifier.logName = MetricsReporting.logName(.source)
                }
                let count = min(batch, entries - sent)
                message.httpLogs.logEntry = (0..<count).map { offset in
                    let peer = peers[(sent + offset) % peers.count]
                    let failed = (sent + offset) % 20 == 0
                    series.insert([node.name, node.namespace, peer.name, peer.namespace, failed ? "503" : "200"])
                    return Self.entry(to: peer, failed: failed, milliseconds: UInt32((sent + offset) % 300))
                }
                sent += count
                messages.append(message)
            }
            plans.append((keys.key(for: .init(namespace: node.namespace, name: node.name)), messages))
        }

        let prepared = plans
        let memoryBefore = pid.flatMap(ProcessFigures.residentBytes)
        let cpuBefore = pid.flatMap(ProcessFigures.cpuSeconds)
        let ownBefore = ProcessFigures.cpuSeconds(getpid())
        let clock = ContinuousClock()
        let started = clock.now
        try await XDSClientSecurity.plaintext.withClient(address) { client in
            let service = Envoy_Service_Accesslog_V3_AccessLogService.Client(wrapping: client)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for plan in prepared {
                    group.addTask {
                        var metadata = Metadata()
                        metadata.addString(plan.key, forKey: MetricsReporting.keyHeader)
                        let request = StreamingClientRequest<Envoy_Service_Accesslog_V3_StreamAccessLogsMessage>(metadata: metadata) { writer in
                            try await writer.write(contentsOf: plan.messages)
                        }
                        _ = try await service.streamAccessLogs(request: request)
                    }
                }
                try await group.waitForAll()
            }
        }
        let elapsed = clock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let total = Double(streams * entries)
        print(String(format: "access log entries: %d streams x %d entries in messages of %d: %.0f entries/s (%.2f s)", streams, entries, batch, total / seconds, seconds))
        if let own = ownBefore, let after = ProcessFigures.cpuSeconds(getpid()) {
            print(String(format: "load generator CPU: %.2f µs per entry", (after - own) / total * 1e6))
        }
        if let pid, let before = cpuBefore, let after = ProcessFigures.cpuSeconds(pid) {
            print(String(format: "meshd CPU: %.2f µs per entry (%.2f s for %.0f entries)", (after - before) / total * 1e6, after - before, total))
        }
        if let pid, let before = memoryBefore, let after = ProcessFigures.residentBytes(pid) {
            print(String(format: "meshd memory: %+.1f MiB after the entries (%d request series: %.1f KiB each)", Double(after - before) / 1_048_576, series.count, Double(after - before) / 1024 / Double(series.count)))
        }
    }

    /// A request to `peer`'s service, answered 200 (or 503 when `failed`).
    static func entry(to peer: GeneratedMesh.Node, failed: Bool, milliseconds: UInt32) -> Envoy_Data_Accesslog_V3_HTTPAccessLogEntry {
        var entry = Envoy_Data_Accesslog_V3_HTTPAccessLogEntry()
        entry.commonProperties.upstreamCluster = ResourceNames.outboundCluster(port: 8080, host: "\(peer.serviceAccount).\(peer.namespace).svc.cluster.local")
        var socket = Envoy_Config_Core_V3_SocketAddress()
        socket.address = peer.address
        socket.portValue = 8080
        entry.commonProperties.upstreamRemoteAddress.socketAddress = socket
        entry.commonProperties.timeToLastDownstreamTxByte = Google_Protobuf_Duration(seconds: 0, nanos: Int32(milliseconds) * 1_000_000)
        entry.protocolVersion = .http11
        entry.request.authority = peer.serviceAccount
        entry.request.requestMethod = .get
        entry.request.path = "/"
        entry.request.requestHeadersBytes = 180
        entry.response.responseCode.value = failed ? 503 : 200
        entry.response.responseHeadersBytes = 120
        entry.response.responseBodyBytes = 512
        return entry
    }
}
