import EnvoyAPI
import MeshConfig
import MeshModel
import MeshTranslation
import SwiftProtobuf
import Testing
import XDSTesting

@Suite("Telemetry in the generated config")
struct TelemetryTranslationTests {
    /// The mTLS tests' mesh plus a Zipkin collector in istio-system.
    static let base = MutualTLSTranslationTests.base + """

        ---
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata: {name: zipkin, namespace: istio-system}
        spec:
          hosts: [zipkin.istio-system.svc.cluster.local]
          location: MESH_EXTERNAL
          resolution: STATIC
          ports: [{number: 9411, name: http}]
          endpoints: [{address: 127.0.0.50}]
        """

    static let meshYAML = """
        extensionProviders:
        - name: jaeger
          zipkin: {service: zipkin.istio-system.svc.cluster.local, port: 9411}
        - name: otel
          opentelemetry: {service: otel.example.com, port: 4317}
        - name: errors-only
          envoyFileAccessLog: {path: "/var/log/{namespace}/{workload}.errors"}
        defaultConfig: {tracing: {sampling: 2.5}}
        accessLogFile: "/tmp/{workload}.log"
        accessLogEncoding: JSON
        """

    static func mesh(_ text: String = meshYAML) throws -> MeshTelemetry {
        try MeshTelemetry(document: try #require(try YAMLDocuments.parse(text, source: "mesh.yaml").first).value)
    }

    static func telemetry(_ name: String, namespace: String = "shop", selector: String? = nil, _ body: String) -> String {
        """

        ---
        apiVersion: telemetry.istio.io/v1
        kind: Telemetry
        metadata: {name: \(name), namespace: \(namespace)}
        spec:
        \(selector.map { "  selector: {matchLabels: {app: \($0)}}\n" } ?? "")\(body)
        """
    }

    func resources(_ yaml: String, mesh: MeshTelemetry, workload: String) throws -> XDSResourceSet {
        let snapshot = MeshSnapshot(revision: 1, mesh: mesh, resources: try ResourceDocuments.decode(yaml, source: "test.yaml").map(\.resource))
        let resources = try SidecarTranslator.translate(snapshot, workload: .init(namespace: "shop", name: workload)).resources
        expectPrintable(resources)
        return resources
    }

    /// The HTTP connection managers of a workload's inbound (`server`) or outbound listeners.
    func managers(_ resources: XDSResourceSet, inbound: Bool) throws -> [Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager] {
        let listeners = resources.resources(ofType: XDSTypeURL.listener).values.compactMap { $0.unpack(Envoy_Config_Listener_V3_Listener.self) }
        let filters = listeners.filter { ($0.trafficDirection == .inbound) == inbound }.flatMap { $0.filterChains.flatMap(\.filters) }
        return try filters.filter { $0.name == "envoy.filters.network.http_connection_manager" }.map {
            try Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager(unpackingAny: $0.typedConfig)
        }
    }

    func zipkin(_ manager: Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager) throws -> Envoy_Config_Trace_V3_ZipkinConfig {
        #expect(manager.tracing.provider.name == "envoy.tracers.zipkin")
        return try Envoy_Config_Trace_V3_ZipkinConfig(unpackingAny: manager.tracing.provider.typedConfig)
    }

    @Test("the ADR's tai-tracing: every HTTP connection manager traces to jaeger (a zipkin provider) at 100 %, through a tracing|jaeger cluster")
    func adrTracing() throws {
        let snapshot = try exampleSnapshot()
        let workload = try #require(snapshot.registry.workloads.first { $0.value.namespace == "tai-system" })
        let resources = try SidecarTranslator.translate(snapshot, workload: workload.key).resources
        expectPrintable(resources)
        let inbound = try managers(resources, inbound: true), outbound = try managers(resources, inbound: false)
        #expect(!inbound.isEmpty && !outbound.isEmpty)
        for manager in inbound + outbound {
            #expect(manager.tracing.randomSampling.value == 100)
            let settings = try zipkin(manager)
            #expect(settings.collectorCluster == "tracing|jaeger" && settings.collectorEndpoint == "/api/v2/spans" && settings.collectorEndpointVersion == Envoy_Config_Trace_V3_ZipkinConfig.CollectorEndpointVersion.httpJson)
            #expect(settings.traceID128Bit && settings.sharedSpanContext.value == false, "separate client and server spans, 128-bit ids")
        }
        let collector = try #require(resources.resources(ofType: XDSTypeURL.cluster)["tracing|jaeger"]?.unpack(Envoy_Config_Cluster_V3_Cluster.self))
        let ports = collector.loadAssignment.endpoints.flatMap { $0.lbEndpoints.map { $0.endpoint.address.socketAddress.portValue } }
        #expect(ports == [9411])
    }

    @Test("resolution: mesh default, root namespace, namespace, then selector; field by field; match.mode picks the side")
    func resolution() throws {
        let mesh = try Self.mesh()
        // No Telemetry: the mesh's default providers are empty, so no tracer at all.
        #expect(try managers(resources(Self.base, mesh: mesh, workload: "client"), inbound: false).allSatisfy { !$0.hasTracing })
        let yaml = Self.base
            + Self.telemetry("mesh-wide", namespace: "istio-system", """
                  tracing: [{providers: [{name: jaeger}], customTags: {team: {literal: {value: shop}}}}]
                """)
            + Self.telemetry("namespace", """
                  tracing: [{randomSamplingPercentage: 50, customTags: {caller: {header: {name: x-caller, defaultValue: nobody}}}}]
                """)
            + Self.telemetry("client-only", selector: "client", """
                  tracing:
                  - match: {mode: CLIENT}
                    randomSamplingPercentage: 0
                    customTags: {home: {environment: {name: HOME}}}
                """)
        let client = try resources(yaml, mesh: mesh, workload: "client")
        for manager in try managers(client, inbound: false) {
            #expect(manager.tracing.randomSampling.value == 0, "the selector's CLIENT entry wins on the client side")
            #expect(Set(manager.tracing.customTags.map(\.tag)) == ["team", "caller", "home"])
            let tags = Dictionary(uniqueKeysWithValues: manager.tracing.customTags.map { ($0.tag, $0) })
            #expect(tags["team"]?.literal.value == "shop")
            #expect(tags["caller"]?.requestHeader.name == "x-caller" && tags["caller"]?.requestHeader.defaultValue == "nobody")
            #expect(tags["home"]?.environment.name == "HOME")
        }
        for manager in try managers(client, inbound: true) {
            #expect(manager.tracing.randomSampling.value == 50, "the server side keeps the namespace's sampling")
            #expect(Set(manager.tracing.customTags.map(\.tag)) == ["team", "caller"])
        }
        for manager in try managers(resources(yaml, mesh: mesh, workload: "web-1"), inbound: false) {
            #expect(manager.tracing.randomSampling.value == 50, "the selector does not match web")
        }
        // Without any sampling set, the mesh's default applies.
        let defaulted = Self.base + Self.telemetry("namespace", "  tracing: [{providers: [{name: otel}]}]\n")
        for manager in try managers(resources(defaulted, mesh: mesh, workload: "client"), inbound: false) {
            #expect(manager.tracing.randomSampling.value == 2.5)
            #expect(manager.tracing.provider.name == "envoy.tracers.opentelemetry")
        }
        // disableSpanReporting keeps the tracer (context propagates) with nothing sampled.
        let silent = Self.base + Self.telemetry("namespace", "  tracing: [{providers: [{name: jaeger}], randomSamplingPercentage: 100, disableSpanReporting: true}]\n")
        for manager in try managers(resources(silent, mesh: mesh, workload: "client"), inbound: false) {
            #expect(manager.hasTracing && manager.tracing.randomSampling.value == 0)
        }
    }

    @Test("access logs: the mesh's JSON file log with Istio's fields and peer identities; a filter on response codes; disabled per side")
    func accessLogs() throws {
        let mesh = try Self.mesh()
        let managers = try managers(resources(Self.base, mesh: mesh, workload: "client"), inbound: false)
        let log = try #require(managers.first?.accessLog.first)
        let file = try Envoy_Extensions_AccessLoggers_File_V3_FileAccessLog(unpackingAny: log.typedConfig)
        #expect(file.path == "/tmp/client.log")
        let fields = file.logFormat.jsonFormat.fields
        for field in ["start_time", "method", "path", "protocol", "response_code", "response_flags", "bytes_received", "bytes_sent", "duration", "upstream_cluster", "upstream_host", "downstream_peer_identity", "request_id", "authority"] {
            #expect(fields[field] != nil, "\(field)")
        }
        #expect(fields["downstream_peer_identity"]?.stringValue == "%DOWNSTREAM_PEER_URI_SAN%")

        let filtered = Self.base + Self.telemetry("errors", """
              accessLogging:
              - providers: [{name: errors-only}]
                filter: {expression: "response.code >= 400"}
              - match: {mode: SERVER}
                disabled: true
            """)
        let client = try resources(filtered, mesh: mesh, workload: "client")
        let clientLog = try #require(try self.managers(client, inbound: false).first?.accessLog.first)
        let clientFile = try Envoy_Extensions_AccessLoggers_File_V3_FileAccessLog(unpackingAny: clientLog.typedConfig)
        #expect(clientFile.path == "/var/log/shop/client.errors")
        #expect(clientLog.filter.statusCodeFilter.comparison.op == .ge && clientLog.filter.statusCodeFilter.comparison.value.defaultValue == 400)
        #expect(try self.managers(client, inbound: true).allSatisfy { $0.accessLog.isEmpty }, "SERVER disabled")

    }

    @Test("metrics disabled for CLIENT: outbound clusters and managers report under a name the bootstrap drops; the server side still reports")
    func metricsOff() throws {
        let yaml = Self.base + Self.telemetry("quiet", """
              metrics: [{overrides: [{match: {mode: CLIENT}, disabled: true}]}]
            """)
        let resources = try resources(yaml, mesh: .default, workload: "web-1")
        let clusters = resources.resources(ofType: XDSTypeURL.cluster).values.compactMap { $0.unpack(Envoy_Config_Cluster_V3_Cluster.self) }
        let outbound = try #require(clusters.first { $0.name == "outbound|8080||web.shop.svc.cluster.local" })
        let inbound = try #require(clusters.first { $0.name.hasPrefix("inbound|8080") })
        #expect(outbound.altStatName == "meshd_disabled")
        #expect(inbound.altStatName.isEmpty)
        #expect(try managers(resources, inbound: false).allSatisfy { $0.statPrefix == "meshd_disabled" })
        #expect(try managers(resources, inbound: true).allSatisfy { $0.statPrefix != "meshd_disabled" })
    }

    @Test("mesh.yaml and Telemetry refusals name the field: unknown provider types, unknown providers, CEL filters, formatters")
    func refusals() throws {
        #expect { try Self.mesh("extensionProviders: [{name: x, skywalking: {service: a, port: 1}}]") } throws: { error in
            "\(error)".contains("extensionProviders[0]")
        }
        #expect { try Self.mesh("tracingg: {}") } throws: { error in "\(error)".contains("tracingg") }
        // outboundTrafficPolicy: Istio's default ALLOW_ANY, REGISTRY_ONLY, nothing else.
        #expect(try Self.mesh().outboundTrafficMode == .ALLOW_ANY)
        #expect(try Self.mesh("outboundTrafficPolicy: {mode: REGISTRY_ONLY}").outboundTrafficMode == .REGISTRY_ONLY)
        #expect { try Self.mesh("outboundTrafficPolicy: {mode: BLOCK}") } throws: { error in "\(error)".contains("outboundTrafficPolicy.mode") }
        #expect { try Self.mesh("outboundTrafficPolicy: {mode: REGISTRY_ONLY, egressProxy: {host: x}}") } throws: { error in "\(error)".contains("outboundTrafficPolicy") }
        // What meshd cannot translate is refused when the resource is decoded, naming the field.
        for (body, field) in [
            ("  tracing: [{customTags: {x: {formatter: {value: \"%X%\"}}}}]\n", "spec.tracing[0].customTags.x.formatter"),
            ("  tracing: [{providers: [{name: a}, {name: b}]}]\n", "spec.tracing[0].providers"),
            ("  accessLogging: [{filter: {expression: \"request.headers['x'] == 'y'\"}}]\n", "spec.accessLogging[0].filter.expression"),
            ("  metrics: [{overrides: [{match: {metric: REQUEST_COUNT}, disabled: true}]}]\n", "spec.metrics[0].overrides[0].match.metric"),
            ("  metrics: [{overrides: [{tagOverrides: {x: {value: y}}}]}]\n", "spec.metrics[0].overrides[0].tagOverrides"),
        ] {
            #expect { try ResourceDocuments.decode(Self.telemetry("bad", body), source: "t.yaml") } throws: { error in
                "\(error)".contains(field)
            }
        }
        // A provider mesh.yaml does not define, or of the wrong type, is reported (IST0101) as Istio does.
        let yaml = Self.base + Self.telemetry("dangling", """
              tracing: [{providers: [{name: nowhere}]}]
              accessLogging: [{providers: [{name: jaeger}]}]
            """)
        let snapshot = MeshSnapshot(revision: 1, mesh: try Self.mesh(), resources: try ResourceDocuments.decode(yaml, source: "t.yaml").map(\.resource))
        let problems = ReferenceCheck.warnings(in: snapshot).values.flatMap { $0 }.map { "\($0.path): \($0.reason)" }
        #expect(problems.contains { $0.contains("spec.tracing[0].providers[0].name") && $0.contains("nowhere") }, "\(problems)")
        #expect(problems.contains { $0.contains("spec.accessLogging[0].providers[0].name") && $0.contains("zipkin") }, "\(problems)")
    }
}
