import Foundation
import Logging
import MeshConfig
import MeshModel
import MetricsTestKit
import Testing

@Suite("FIPS mode in the config store: TLS a Gateway asks for")
struct FIPSConfigTests {
    static let gateway = """
        apiVersion: networking.istio.io/v1
        kind: Gateway
        metadata: {name: gw, namespace: web}
        spec:
          selector: {istio: ingressgateway}
          servers:
          - {port: {number: 443, name: https, protocol: HTTPS}, hosts: ["*"], tls: {mode: SIMPLE, serverCertificate: /c/s.pem, privateKey: /c/s.key, cipherSuites: [ECDHE-RSA-CHACHA20-POLY1305]}}
        """

    static func store(fips: Bool) -> ConfigStore {
        ConfigStore(settings: MeshSettings(fips: fips), resourceStore: MemoryResourceStore(), logger: Logger(label: "test"), metrics: TestMetrics())
    }

    @Test("through the API: refused as invalid with its field in FIPS mode; accepted without")
    func api() throws {
        let gateway = try ResourceDocuments.decode(Self.gateway, source: "t").map(\.resource)[0]
        let store = Self.store(fips: true)
        #expect(throws: ResourceChangeError.invalid(
            "Gateway web/gw: spec.servers[0].tls.cipherSuites[0]: ECDHE-RSA-CHACHA20-POLY1305 is not an approved cipher suite in FIPS mode (meshd --fips); use ECDHE-ECDSA-AES128-GCM-SHA256, ECDHE-RSA-AES128-GCM-SHA256, ECDHE-ECDSA-AES256-GCM-SHA384, ECDHE-RSA-AES256-GCM-SHA384",
            field: "spec.servers[0].tls.cipherSuites[0]")) { try store.applyAPI(.create(gateway)) }
        #expect(store.publisher.current.gateways.isEmpty)
        #expect(throws: Never.self) { try Self.store(fips: false).applyAPI(.create(gateway)) }
    }

    @Test("at start: a Gateway stored through the API before --fips stops the start in FIPS mode, naming it and the way out")
    func stored() throws {
        let gateway = try ResourceDocuments.decode(Self.gateway, source: "t").map(\.resource)[0]
        let resources = MemoryResourceStore()
        try ConfigStore(resourceStore: resources, logger: Logger(label: "test"), metrics: TestMetrics()).applyAPI(.create(gateway))
        let restarted = ConfigStore(settings: MeshSettings(fips: true), resourceStore: resources, logger: Logger(label: "test"), metrics: TestMetrics())
        let refusal = #expect(throws: ResourceChangeError.self) { try restarted.loadStoredResources() }
        #expect("\(String(describing: refusal))".contains("Gateway web/gw, stored through the API: spec.servers[0].tls.cipherSuites[0]") && "\(String(describing: refusal))".contains("without --fips"), "\(String(describing: refusal))")
    }

    @Test("from files: the whole change refused naming file, document and field; the served config unchanged")
    func files() throws {
        let store = Self.store(fips: true)
        #expect(!store.applyFiles(.success(try ResourceDocuments.decode(Self.gateway, source: "gw.yaml"))))
        #expect(store.lastRejection?.description.hasPrefix("gw.yaml, document 1 (Gateway web/gw): spec.servers[0].tls.cipherSuites[0]: ECDHE-RSA-CHACHA20-POLY1305 is not an approved") == true, "\(String(describing: store.lastRejection))")
        #expect(store.revision == 0)
    }
}
