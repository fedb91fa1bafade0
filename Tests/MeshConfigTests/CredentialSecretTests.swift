import Foundation
import MeshConfig
import MeshModel
import Logging
import MetricsTestKit
import Testing

@Suite("Secrets holding gateway credentials")
struct CredentialSecretTests {
    static let certificate = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    /// PEM-shaped, not a key: the label is put together here so no key block is committed.
    static let pemLabel = ["PRIVATE", "KEY"].joined(separator: " ")
    static let key = "-----BEGIN \(pemLabel)-----\nTOPSECRETKEYBYTES\n-----END \(pemLabel)-----\n"

    static func decode(_ yaml: String) throws(ResourceDecodeError) -> MeshResource {
        try MeshResource(document: try! Self.parse(yaml))
    }

    static func parse(_ yaml: String) throws -> ConfigValue {
        try YAMLDocuments.parse(yaml, source: "test")[0].value
    }

    static func secret(_ body: String, name: String = "cred", namespace: String = "istio-system") -> String {
        #"{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "\#(name)", "namespace": "\#(namespace)"}, \#(body)}"#
    }

    static func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }

    @Test("a kubernetes.io/tls Secret reads data (base64) and stringData, writes data back, and never shows its bytes")
    func decodes() throws {
        let resource = try Self.decode(Self.secret(#""type": "kubernetes.io/tls", "data": {"tls.crt": "\#(Self.base64(Self.certificate))"}, "stringData": {"tls.key": \#(String(reflecting: Self.key))}"#))
        guard case .secret(let secret) = resource.spec else { Issue.record("not a secret"); return }
        #expect(resource.key == ResourceKey(kind: .secret, namespace: "istio-system", name: "cred"))
        #expect(resource.apiVersion == "v1")
        #expect(secret.certificateChain == Array(Self.certificate.utf8))
        #expect(secret.privateKey == Array(Self.key.utf8))
        // Written back: data only, base64, no spec.
        let written = try #require(resource.configValue.objectValue)
        #expect(written["spec"] == nil && written["stringData"] == nil)
        #expect(written["data"]?.objectValue?["tls.key"]?.stringValue == Self.base64(Self.key))
        #expect(try MeshResource(document: resource.configValue) == resource, "round trip")
        // Descriptions, reflection and dumps name the keys, not the bytes.
        var dumped = ""
        dump(resource, to: &dumped)
        for text in ["\(resource)", String(reflecting: resource), dumped, "\(secret)"] {
            #expect(!text.contains("TOPSECRET") && !text.contains(Self.base64(Self.key)), "\(text)")
        }
        #expect("\(secret)".contains("tls.key"))
    }

    @Test("bad Secrets are refused with the field's path, never echoing a value")
    func refusals() throws {
        let cases: [(body: String, path: String, reason: String)] = [
            (#""type": "kubernetes.io/tls", "data": {"tls.crt": "\#(Self.base64(Self.certificate))", "tls.key": "TOPSECRET not base64!"}"#, #"data["tls.key"]"#, "not base64"),
            (#""type": "kubernetes.io/tls", "stringData": {"tls.crt": \#(String(reflecting: Self.certificate)), "tls.key": \#(String(reflecting: Self.key)), "password": "x"}"#, #"stringData.password"#, "meshd reads only"),
            (#""type": "kubernetes.io/basic-auth", "data": {}"#, "type", "TLS credentials only"),
            (#""type": "kubernetes.io/tls", "immutable": true, "data": {}"#, "immutable", "not supported"),
            (#""type": "kubernetes.io/tls", "stringData": {"tls.crt": \#(String(reflecting: Self.certificate))}"#, #"data["tls.key"]"#, "needs tls.crt and tls.key"),
            (#""type": "kubernetes.io/tls", "stringData": {"tls.crt": \#(String(reflecting: Self.certificate)), "tls.key": "TOPSECRET"}"#, #"data["tls.key"]"#, "must be PEM"),
            (#""stringData": {"cert": \#(String(reflecting: Self.certificate))}"#, "data.key", "needs its private key"),
            (#""stringData": {"ca.crt": \#(String(reflecting: Self.certificate)), "cacert": \#(String(reflecting: Self.certificate))}"#, "data.cacert", "keep one"),
            (#""spec": {}"#, "spec", "unknown field"),
        ]
        for item in cases {
            #expect { try Self.decode(Self.secret(item.body)) } throws: { error in
                let problems = (error as! ResourceDecodeError).problems
                return problems.contains { $0.path.description == item.path && $0.reason.contains(item.reason) } && !"\(error)".contains("TOPSECRET")
            }
        }
        // An Opaque Secret with only CA certificates is the `<name>-cacert` shape.
        _ = try Self.decode(Self.secret(#""type": "Opaque", "stringData": {"ca.crt": \#(String(reflecting: Self.certificate))}"#, name: "cred-cacert"))
    }

    static let gateway = """
        {"apiVersion": "networking.istio.io/v1", "kind": "Gateway", "metadata": {"name": "gw", "namespace": "web"},
         "spec": {"selector": {"istio": "ingressgateway"}, "servers": [
           {"port": {"number": 443, "name": "https", "protocol": "HTTPS"}, "hosts": ["a.example.com"], "tls": {"mode": "SIMPLE", "credentialName": "cred"}},
           {"port": {"number": 443, "name": "mutual", "protocol": "HTTPS"}, "hosts": ["b.example.com"], "tls": {"mode": "MUTUAL", "credentialName": "cred"}}]}}
        """
    static let workload = #"{"apiVersion": "networking.istio.io/v1", "kind": "WorkloadEntry", "metadata": {"name": "ingress", "namespace": "istio-system"}, "spec": {"address": "127.0.0.10", "labels": {"istio": "ingressgateway"}}}"#

    static func resources(_ documents: [String]) throws -> [ResourceKey: MeshResource] {
        Dictionary(uniqueKeysWithValues: try documents.map { try Self.decode($0) }.map { ($0.key, $0) })
    }

    @Test("a Gateway's credentials resolve in its workload's namespace (as Istio's), the CA from ca.crt or <name>-cacert")
    func references() throws {
        let pair = #""type": "kubernetes.io/tls", "stringData": {"tls.crt": \#(String(reflecting: Self.certificate)), "tls.key": \#(String(reflecting: Self.key))}"#
        let ca = #""stringData": {"ca.crt": \#(String(reflecting: Self.certificate))}"#
        // None: both servers lack the credential.
        var problems = GatewayCredentials.problems(in: try Self.resources([Self.gateway, Self.workload]))
        let key = ResourceKey(kind: .gateway, namespace: "web", name: "gw")
        #expect(problems[key]?.map(\.path.description) == ["spec.servers[0].tls.credentialName", "spec.servers[1].tls.credentialName", "spec.servers[1].tls.credentialName"])
        #expect(problems[key]?.first?.reason.contains("no Secret istio-system/cred") == true)
        // In the Gateway's namespace only: not where the gateway runs.
        problems = GatewayCredentials.problems(in: try Self.resources([Self.gateway, Self.workload, Self.secret(pair, namespace: "web")]))
        #expect(problems[key]?.count == 3)
        // Where the gateway runs: SIMPLE is served; MUTUAL still needs a CA.
        problems = GatewayCredentials.problems(in: try Self.resources([Self.gateway, Self.workload, Self.secret(pair)]))
        #expect(problems[key]?.map(\.reason).first?.contains("MUTUAL checks client certificates") == true)
        #expect(problems[key]?.count == 1)
        problems = GatewayCredentials.problems(in: try Self.resources([Self.gateway, Self.workload, Self.secret(pair), Self.secret(ca, name: "cred-cacert")]))
        #expect(problems.isEmpty)
        // A Gateway that selects no workload has nothing to deliver.
        #expect(GatewayCredentials.problems(in: try Self.resources([Self.gateway])).isEmpty)
    }

    @Test("credential fields: not beside files, not in ISTIO_MUTUAL, at most two, names that can be Secrets")
    func validation() throws {
        func problems(_ tls: String) -> [String] {
            let yaml = #"{"apiVersion": "networking.istio.io/v1", "kind": "Gateway", "metadata": {"name": "gw", "namespace": "web"}, "spec": {"selector": {"istio": "x"}, "servers": [{"port": {"number": 443, "name": "https", "protocol": "HTTPS"}, "hosts": ["a.example.com"], "tls": \#(tls)}]}}"#
            do {
                _ = try Self.decode(yaml)
                return []
            } catch {
                return error.problems.map(\.description)
            }
        }
        let root = "spec.servers[0].tls"
        #expect(problems(#"{"mode": "SIMPLE", "credentialName": "cred"}"#).isEmpty)
        #expect(problems(#"{"mode": "MUTUAL", "credentialNames": ["rsa", "ecdsa"], "caCertCredentialName": "ca"}"#).isEmpty)
        #expect(problems(#"{"mode": "SIMPLE", "credentialName": "cred", "serverCertificate": "/a.pem"}"#).contains { $0.hasPrefix("\(root).serverCertificate: give either credentialName") })
        #expect(problems(#"{"mode": "SIMPLE", "credentialName": "a", "credentialNames": ["b"]}"#).contains { $0.hasPrefix("\(root).credentialNames: credentialName and credentialNames are exclusive") })
        #expect(problems(#"{"mode": "SIMPLE", "credentialNames": ["a", "b", "c"]}"#).contains { $0.hasPrefix("\(root).credentialNames: at most two") })
        #expect(problems(#"{"mode": "SIMPLE", "credentialName": "Not_A_Name"}"#).contains { $0.hasPrefix("\(root).credentialName: \"Not_A_Name\" is not a valid name") })
        #expect(problems(#"{"mode": "SIMPLE", "credentialName": "a", "caCertCredentialName": "b"}"#).contains { $0.hasPrefix("\(root).caCertCredentialName: SIMPLE checks no client certificate") })
        #expect(problems(#"{"mode": "ISTIO_MUTUAL", "credentialName": "a"}"#).contains { $0.hasPrefix("\(root).credentialName: ISTIO_MUTUAL uses") })
        #expect(problems(#"{"mode": "SIMPLE"}"#).contains { $0.hasPrefix("\(root).privateKey: SIMPLE needs credentialName") })
    }
}

@Suite("Credentials in the configuration store: a Gateway never names a credential no Secret holds")
struct CredentialStoreTests {
    typealias Fixtures = CredentialSecretTests
    let metrics = TestMetrics()

    func resource(_ json: String) throws -> MeshResource {
        try MeshResource(document: try Fixtures.parse(json))
    }

    static let pair = #""type": "kubernetes.io/tls", "stringData": {"tls.crt": \#(String(reflecting: Fixtures.certificate)), "tls.key": \#(String(reflecting: Fixtures.key))}"#
    static let simpleGateway = Fixtures.gateway.replacingOccurrences(of: #""MUTUAL""#, with: #""SIMPLE""#)

    @Test("through the API: a Gateway before its Secret is invalid (with the field), deleting a Secret in use is a conflict, bad material is invalid; nothing is served meanwhile")
    func api() throws {
        // The cryptographic check is injected; here it refuses a marker.
        let store = ConfigStore(resourceStore: MemoryResourceStore(), credentialCheck: { secret in
            secret.privateKey.map { String(decoding: $0, as: UTF8.self).contains("MISMATCH") } == true
                ? [SchemaError(path: FieldPath().appending("data").appending("tls.key"), reason: "this key does not match the certificate")] : []
        }, logger: Logger(label: "test"), metrics: metrics)
        try store.applyAPI(.create(try resource(Fixtures.workload)))
        let gateway = try resource(Self.simpleGateway)
        #expect(throws: ResourceChangeError.invalid(
            "Gateway web/gw: spec.servers[0].tls.credentialName: no Secret istio-system/cred holds this credential; apply the Secret (kubernetes.io/tls, with tls.crt and tls.key) first",
            field: "spec.servers[0].tls.credentialName")) { try store.applyAPI(.create(gateway)) }
        #expect(throws: ResourceChangeError.self) { try store.applyAPI(.create(gateway), dryRun: true) }
        let revision = store.revision
        #expect(store.publisher.current.gateways.isEmpty)

        let mismatched = try resource(Fixtures.secret(Self.pair.replacingOccurrences(of: "TOPSECRETKEYBYTES", with: "MISMATCH")))
        #expect(throws: ResourceChangeError.invalid(#"Secret istio-system/cred: data["tls.key"]: this key does not match the certificate"#, field: #"data["tls.key"]"#)) {
            try store.applyAPI(.create(mismatched))
        }
        #expect(store.revision == revision)

        try store.applyAPI(.create(try resource(Fixtures.secret(Self.pair))))
        try store.applyAPI(.create(gateway))
        #expect(store.publisher.current.gateways.count == 1)
        #expect(store.publisher.current.credential("cred", in: "istio-system")?.privateKey == Array(Fixtures.key.utf8))
        let secretKey = ResourceKey(kind: .secret, namespace: "istio-system", name: "cred")
        #expect { try store.applyAPI(.delete(secretKey, expectedVersion: nil)) } throws: { error in
            guard case .conflict(let message) = error as? ResourceChangeError else { return false }
            return message.hasPrefix("Secret istio-system/cred: this change would leave Gateway web/gw without its credential")
        }
        // A gateway workload in a namespace without the Secret would be served nothing.
        let stray = try resource(Fixtures.workload.replacingOccurrences(of: #""namespace": "istio-system""#, with: #""namespace": "edge""#))
        #expect(throws: ResourceChangeError.self) { try store.applyAPI(.create(stray)) }
        #expect(store.publisher.current.credential("cred", in: "istio-system") != nil)
        // Once the Gateway is gone, so may the Secret be.
        try store.applyAPI(.delete(gateway.key, expectedVersion: nil))
        try store.applyAPI(.delete(secretKey, expectedVersion: nil))
    }

    @Test("in the config directory: a Gateway whose Secret is missing, or a Secret that fails the check, refuses the whole load")
    func files() throws {
        let store = ConfigStore(credentialCheck: { _ in [] }, logger: Logger(label: "test"), metrics: metrics)
        func sourced(_ documents: [String]) throws -> [SourcedResource] {
            try documents.enumerated().map { SourcedResource(resource: try resource($0.element), source: "mesh.yaml", document: $0.offset + 1) }
        }
        #expect(!store.applyFiles(.success(try sourced([Fixtures.workload, Self.simpleGateway]))))
        let rejection = try #require(store.lastRejection)
        #expect(rejection.document == 2 && rejection.path == "spec.servers[0].tls.credentialName", "\(rejection)")
        #expect(store.applyFiles(.success(try sourced([Fixtures.secret(Self.pair), Fixtures.workload, Self.simpleGateway]))))
        #expect(store.publisher.current.gateways.count == 1)

        let checking = ConfigStore(credentialCheck: { _ in [SchemaError(path: FieldPath().appending("data").appending("tls.key"), reason: "does not match")] }, logger: Logger(label: "test"), metrics: metrics)
        #expect(!checking.applyFiles(.success(try sourced([Fixtures.secret(Self.pair)]))))
        #expect(checking.lastRejection?.path == #"data["tls.key"]"#)
    }
}
