import EnvoyAPI
import Foundation
import MeshClient
import MeshConfig
import MeshModel
import ProxyAgent
import SwiftProtobuf
import Synchronization

/// The agent side of a WorkloadGroup's readiness probe, as Istio's agent runs it: `meshctl proxy
/// run` checks the workload on the probe's schedule and reports each change of verdict to meshd
/// on an ADS stream of its own (with the proxy's node and token), which takes the workload out of
/// every load balancer while the probe fails.
struct ProxyProbe: Sendable {
    let schedule: ProbeSchedule
    let reports: HealthReportStream

    /// The probe a bootstrap made for a WorkloadGroup carries (`MESHD_PROBE` node metadata), with
    /// what reporting needs (meshd's address, trust bundle and the token); nil without a probe.
    static func from(bootstrapJSON data: Data) throws -> ProxyProbe? {
        guard let root = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let node = root["node"] as? [String: Any], let metadata = node["metadata"] as? [String: Any],
              let probeObject = metadata["MESHD_PROBE"]
        else { return nil }
        let probeText = String(decoding: try JSONSerialization.data(withJSONObject: probeObject), as: UTF8.self)
        guard let probeValue = try YAMLDocuments.parse(probeText, source: "bootstrap node.metadata.MESHD_PROBE").first?.value else { return nil }
        let probe = try ReadinessProbe(config: probeValue, at: FieldPath().appending("MESHD_PROBE"))
        let address = (metadata["INSTANCE_IPS"] as? String)?.split(separator: ",").first.map(String.init) ?? "127.0.0.1"
        let check: ProbeSchedule.Check
        if let http = probe.httpGet {
            var headers: [String: String] = [:]
            for header in http.httpHeaders ?? [] { headers[header.name ?? ""] = header.value ?? "" }
            check = .http(host: http.host.flatMap { $0.isEmpty ? nil : $0 } ?? address, port: UInt16(http.port), path: http.path ?? "/", headers: headers)
        } else if let tcp = probe.tcpSocket {
            check = .tcp(host: tcp.host.flatMap { $0.isEmpty ? nil : $0 } ?? address, port: UInt16(tcp.port))
        } else if let exec = probe.exec {
            check = .exec(exec.command)
        } else {
            throw CLIError("the bootstrap's probe has no httpGet, tcpSocket or exec")
        }
        let schedule = ProbeSchedule(
            check: check, initialDelaySeconds: probe.initialDelaySeconds.map(Int.init), timeoutSeconds: probe.timeoutSeconds.map(Int.init),
            periodSeconds: probe.periodSeconds.map(Int.init), successThreshold: probe.successThreshold.map(Int.init),
            failureThreshold: probe.failureThreshold.map(Int.init))

        let nodeData = try JSONSerialization.data(withJSONObject: node)
        var options = JSONDecodingOptions()
        options.ignoreUnknownFields = true
        let envoyNode = try Envoy_Config_Core_V3_Node(jsonUTF8Data: nodeData, options: options)
        guard let clusters = (root["static_resources"] as? [String: Any])?["clusters"] as? [[String: Any]],
              let xds = clusters.first(where: { $0["name"] as? String == "xds-grpc" }),
              let endpoints = (xds["load_assignment"] as? [String: Any])?["endpoints"] as? [[String: Any]],
              let lb = (endpoints.first?["lb_endpoints"] as? [[String: Any]])?.first,
              let socket = (((lb["endpoint"] as? [String: Any])?["address"] as? [String: Any])?["socket_address"] as? [String: Any]),
              let host = socket["address"] as? String,
              let port = (socket["port_value"] as? Int) ?? Int(socket["port_value"] as? String ?? "")
        else { throw CLIError("the bootstrap has no xds-grpc cluster to report probe results to") }
        let tls = (((xds["transport_socket"] as? [String: Any])?["typed_config"] as? [String: Any])?["common_tls_context"] as? [String: Any])
        let trust = ((tls?["validation_context"] as? [String: Any])?["trusted_ca"] as? [String: Any])?["inline_string"] as? String
        let services = ((root["dynamic_resources"] as? [String: Any])?["ads_config"] as? [String: Any])?["grpc_services"] as? [[String: Any]]
        let header = (services?.first?["initial_metadata"] as? [[String: Any]])?.first { $0["key"] as? String == "authorization" }?["value"] as? String
        let token = header.flatMap { $0.hasPrefix("Bearer ") ? String($0.dropFirst("Bearer ".count)) : nil }
        return ProxyProbe(
            schedule: schedule,
            reports: HealthReportStream(address: HostPort(host: host, port: UInt32(port)), trustPEM: trust, token: token, node: envoyNode))
    }

    /// Probes and reports until cancelled.
    func run(log: @escaping @Sendable (String) -> Void) async {
        let latest = Latest()
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await reports.run(latest: { latest.value.withLock { $0 } }, log: log)
            }
            group.addTask {
                try? await Task.sleep(for: schedule.initialDelay)
                var verdict = ProbeVerdict(successThreshold: schedule.successThreshold, failureThreshold: schedule.failureThreshold)
                while !Task.isCancelled {
                    let result = await ProbeRunner.run(schedule.check, timeout: schedule.timeout)
                    if verdict.take(result), let healthy = verdict.healthy {
                        let report = WorkloadHealth(healthy: healthy, message: verdict.lastFailure)
                        latest.value.withLock { $0 = ($0.version + 1, report) }
                        log(healthy ? "the readiness probe passes" : "the readiness probe fails: \(verdict.lastFailure ?? "")")
                    }
                    try? await Task.sleep(for: schedule.period)
                }
            }
        }
    }
}

/// The newest verdict, numbered, shared by the prober and the report stream.
private final class Latest: Sendable {
    let value = Mutex<(version: UInt64, report: WorkloadHealth?)>((0, nil))
}
