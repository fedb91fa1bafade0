import Foundation
@testable import MeshConfig
import MeshModel
import Testing

@Suite("kubectl's List documents, and meshctl import kubernetes")
struct KubernetesImportTests {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("examples/kubernetes-import/tai-system-export.yaml").path

    static func inputs(_ text: String, source: String = "export.yaml") throws -> [KubernetesImport.Input] {
        try ResourceDocuments.documents(text, source: source).map { KubernetesImport.Input(source: source, document: $0) }
    }

    static func item(_ yaml: String) -> String {
        "- " + yaml.split(separator: "\n", omittingEmptySubsequences: false).joined(separator: "\n  ")
    }

    static func list(_ items: [String]) -> String {
        "apiVersion: v1\nkind: List\nmetadata: {resourceVersion: \"\"}\nitems:\n" + items.map(item).joined(separator: "\n") + "\n"
    }

    static let service = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop, uid: 1a}\nspec:\n  selector: {app: web}\n  ports: [{name: http-web, port: 80, targetPort: http, protocol: TCP}]"
    static func pod(_ name: String, ip: String? = "10.0.0.7", phase: String = "Running", ready: String = "True", extra: String = "") -> String {
        """
        apiVersion: v1
        kind: Pod
        metadata: {name: \(name), namespace: shop, labels: {app: web, version: v1}\(extra)}
        spec:
          serviceAccountName: web
          containers: [{name: web, ports: [{name: http, containerPort: 8080}]}]
        status:
          phase: \(phase)\(ip.map { "\n  podIP: \($0)" } ?? "")
          conditions: [{type: Ready, status: "\(ready)"}]
        """
    }

    // MARK: Lists

    @Test("a List's items are documents of their own, numbered by document and item; a typed List too")
    func lists() throws {
        let text = Self.list([Self.service, Self.pod("web-1")]) + "---\napiVersion: networking.istio.io/v1\nkind: VirtualServiceList\nitems: []\n---\n" + Self.service
        let documents = try ResourceDocuments.documents(text, source: "x.yaml")
        #expect(documents.map { "\($0.document)/\($0.item.map(String.init) ?? "-")" } == ["1/1", "1/2", "3/-"])
        #expect(documents[1].value["kind"] == .string("Pod"))
    }

    @Test("a bad List is refused naming the document, the item and the field")
    func badLists() {
        func refusal(_ text: String) -> String {
            do {
                _ = try ResourceDocuments.documents(text, source: "x.yaml")
                return "accepted"
            } catch {
                return error.description
            }
        }
        #expect(refusal("apiVersion: v1\nkind: List\nitems: [3]\n").contains("x.yaml, document 1, item 1: items[0]: each item of a List must be an object"))
        #expect(refusal("apiVersion: v1\nkind: List\nitemz: []\n").contains("itemz: unknown field of a List"))
        #expect(refusal("apiVersion: v1\nkind: List\n").contains("items: a List needs items"))
        #expect(refusal(Self.list(["apiVersion: v1\nkind: List\nitems: []"])).contains("item 1 (List): a List inside a List"))
    }

    @Test("resources in a List load from files and name their item when refused")
    func resourcesInLists() throws {
        let vs = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: a, namespace: shop, uid: 9, resourceVersion: \"77\"}\nspec: {hosts: [web], http: [{route: [{destination: {host: web}}]}]}\nstatus: {}"
        let loaded = try ResourceDocuments.decode(Self.list([vs]), source: "x.yaml")
        #expect(loaded.map(\.origin) == ["x.yaml, document 1, item 1"])
        let broken = vs.replacingOccurrences(of: "host: web}", with: "hots: web}")
        let refusal = #expect(throws: ConfigLoadError.self) {
            try ResourceDocuments.decode(Self.list([vs, broken.replacingOccurrences(of: "name: a", with: "name: b")]), source: "x.yaml")
        }
        #expect(refusal?.description.hasPrefix("x.yaml, document 1, item 2 (VirtualService shop/b): spec.http[0].route[0].destination") == true, "\(String(describing: refusal))")
        let twice = #expect(throws: ConfigLoadError.self) { try ResourceDocuments.checkUnique(try ResourceDocuments.decode(Self.list([vs, vs]), source: "x.yaml")) }
        #expect(twice?.description == "x.yaml, document 1, item 2 (VirtualService shop/a): defined twice: also in x.yaml, document 1, item 1")
    }

    @Test("server-set fields go: status, uid, resourceVersion, managedFields, last-applied; labels and other annotations stay")
    func serverFields() throws {
        let value = try YAMLDocuments.parse("""
            kind: X
            metadata: {name: a, uid: u, resourceVersion: "3", generation: 2, creationTimestamp: t, managedFields: [], labels: {a: b},
              annotations: {kubectl.kubernetes.io/last-applied-configuration: "{}", keep: me}}
            status: {x: 1}
            """, source: "t")[0].value
        #expect(KubernetesImport.isExported(value))
        let clean = KubernetesImport.withoutServerFields(value)
        #expect(clean == (try YAMLDocuments.parse("kind: X\nmetadata: {name: a, labels: {a: b}, annotations: {keep: me}}\n", source: "t")[0].value))
        #expect(!KubernetesImport.isExported(clean))
        // A Secret in a config file, exported: kubectl's last-applied copy (data and all) is gone.
        let secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: cred, namespace: web, uid: u1, annotations: {kubectl.kubernetes.io/last-applied-configuration: '{\"data\": {\"tls.key\": \"S0VZ\"}}'}}\ntype: Opaque\nstringData: {cacert: \"-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n\"}\n"
        let loaded = try ResourceDocuments.decode(secret, source: "s.yaml")[0].resource
        #expect(loaded.metadata.annotations.isEmpty && loaded.metadata.passthrough["uid"] == nil)
    }

    @Test("YAML written for a value reads back as the same value, numbers-as-strings and keywords quoted")
    func yamlRoundTrip() throws {
        let value = ConfigValue.object(ConfigObject([
            ("port", .int(8080)), ("text", .string("8080")), ("flag", .string("true")), ("nothing", .string("null")), ("empty", .string("")),
            ("colon", .string("a: b")), ("list", .array([.bool(false), .double(0.5), .null, .string("- x")])), ("nested", .object(ConfigObject([("k", .string("v"))]))),
        ]))
        let text = try YAMLDocuments.write(value)
        #expect(try YAMLDocuments.parse(text, source: "t")[0].value == value, "\(text)")
    }

    // MARK: Import

    @Test("the ADR's mesh exported from Kubernetes: a ServiceEntry per Service, a WorkloadEntry per Pod, Istio's resources as they were; List and multi-document forms agree")
    func fixture() throws {
        let text = try String(contentsOfFile: Self.fixture, encoding: .utf8)
        let result = KubernetesImport.convert(try Self.inputs(text))
        #expect(result.errors.isEmpty, "\(result.errors)")
        let keys = result.resources.map(\.key.description)
        #expect(keys == [
            "ServiceEntry tai-system/coordinator", "ServiceEntry tai-system/governor", "ServiceEntry tai-system/scheduler",
            "WorkloadEntry tai-system/coordinator-v1-5b8f7d9c6c-q4wnv", "WorkloadEntry tai-system/coordinator-v2-84d6c7b9f8-p7rjd",
            "WorkloadEntry tai-system/governor-v1-7c9d8f6b5d-x2lqp", "WorkloadEntry tai-system/scheduler-v1-6f7b9c8d4f-k8mzt",
            "VirtualService tai-system/coordinator-canary", "DestinationRule tai-system/coordinator", "DestinationRule tai-system/governor-circuit-breaker",
            "PeerAuthentication tai-system/default", "AuthorizationPolicy tai-system/coordinator-authz",
        ], "\(keys)")
        let values = Dictionary(uniqueKeysWithValues: result.resources.map { ($0.key.description, $0.configValue) })
        let entry = try #require(values["ServiceEntry tai-system/coordinator"])
        #expect(entry["spec"]?["hosts"] == .array([.string("coordinator.tai-system.svc.cluster.local")]))
        #expect(entry["spec"]?["ports"] == .array([.object(ConfigObject([("number", .int(8080)), ("protocol", .string("HTTP")), ("name", .string("http"))]))]))
        #expect(entry["spec"]?["workloadSelector"]?["labels"] == .object(ConfigObject([("app", .string("coordinator"))])))
        let workload = try #require(values["WorkloadEntry tai-system/coordinator-v2-84d6c7b9f8-p7rjd"])
        #expect(workload["spec"]?["address"] == .string("127.0.0.5") && workload["spec"]?["serviceAccount"] == .string("coordinator"))
        #expect(workload["spec"]?["labels"]?["version"] == .string("v2") && workload["spec"]?["locality"] == .string("eu-west-1/eu-west-1a"))
        #expect(workload["spec"]?["ports"] == .object(ConfigObject([("http", .int(8080))])), "the named targetPort resolved from the container")
        let policy = try #require(values["AuthorizationPolicy tai-system/coordinator-authz"])
        #expect(policy["metadata"]?["uid"] == nil && policy["status"] == nil)

        // The same objects as separate documents.
        let list = try #require(try YAMLDocuments.parse(text, source: "t").first?.value["items"]?.arrayValue)
        let documents = try list.map { try YAMLDocuments.write($0) }.joined(separator: "---\n")
        #expect(KubernetesImport.convert(try Self.inputs(documents)).resources == result.resources)
    }

    @Test("bad input: an unsupported kind, a Service without a selector, a running Pod without an IP: each named, nothing produced")
    func badInput() throws {
        let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\nspec: {}"
        let bare = "apiVersion: v1\nkind: Service\nmetadata: {name: db, namespace: shop}\nspec: {ports: [{port: 5432}]}"
        let result = KubernetesImport.convert(try Self.inputs(Self.list([Self.service, deployment, bare, Self.pod("web-1", ip: nil)])))
        #expect(result.resources.isEmpty)
        #expect(result.errors.map(\.description) == [
            "export.yaml, document 1, item 2 (Deployment shop/web): meshd does not import Deployment (apps/v1): export Istio's kinds, Services, EndpointSlices (or Endpoints), Pods, ServiceAccounts, Nodes and TLS Secrets, or pass --skip-unsupported to leave the rest out",
            "export.yaml, document 1, item 3 (Service shop/db): has no selector: Kubernetes keeps its endpoints by hand (Endpoints, EndpointSlices), which meshd does not import; give it a selector, or leave it out of the export and write a ServiceEntry with its endpoints",
            "export.yaml, document 1, item 4 (Pod shop/web-1): has no status.podIP: a running pod needs its address; export pods with kubectl get -o yaml, which writes their status",
        ], "\(result.errors)")
        // Gateway API's Gateway shares a kind name with Istio's; it is not Istio's.
        let gatewayAPI = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: edge, namespace: shop}\nspec: {gatewayClassName: istio}"
        let skipping = KubernetesImport.convert(try Self.inputs(Self.list([Self.service, deployment, gatewayAPI, Self.pod("web-1")])), options: .init(skipUnsupported: true))
        #expect(skipping.errors.isEmpty && skipping.resources.count == 2, "\(skipping.errors)")
        #expect(skipping.notes.map(\.description).contains("export.yaml, document 1, item 3 (Gateway shop/edge): left out: meshd does not import Gateway (gateway.networking.k8s.io/v1)"), "\(skipping.notes)")
        #expect(skipping.notes.contains { $0.object == "Deployment shop/web" })
        let invalidIstio = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v, namespace: shop}\nspec: {hosts: [web], http: [{route: [{destination: {hots: web}}]}]}"
        let refused = KubernetesImport.convert(try Self.inputs(Self.list([invalidIstio, "apiVersion: networking.istio.io/v1alpha3\nkind: EnvoyFilter\nmetadata: {name: f, namespace: shop}\nspec: {}"])))
        #expect(refused.errors.count == 2 && refused.errors[0].reason.contains("hots") && refused.errors[1].reason.contains("meshd does not serve EnvoyFilter"), "\(refused.errors)")
    }

    @Test("what is not carried over is said with its reason: headless, ExternalName, UDP, unnamed ports, unready and pending pods, injection settings, system namespaces")
    func notes() throws {
        let objects = [
            "apiVersion: v1\nkind: Service\nmetadata: {name: db, namespace: shop}\nspec: {clusterIP: None, selector: {app: db}, ports: [{port: 5432}]}",
            "apiVersion: v1\nkind: Service\nmetadata: {name: ext, namespace: shop}\nspec: {type: ExternalName, externalName: api.example.com}",
            "apiVersion: v1\nkind: Service\nmetadata: {name: dns, namespace: shop}\nspec: {selector: {app: dns}, ports: [{name: dns, port: 53, protocol: UDP}, {port: 9153, targetPort: 9154}]}",
            Self.pod("web-1", ready: "False"), Self.pod("web-2", ip: nil, phase: "Pending"),
            Self.pod("web-3", ip: "10.0.0.9", extra: ", annotations: {sidecar.istio.io/inject: \"true\", sidecar.istio.io/status: \"{}\"}"),
            "apiVersion: v1\nkind: Service\nmetadata: {name: kube-dns, namespace: kube-system}\nspec: {selector: {k8s-app: kube-dns}, ports: [{port: 53}]}",
            "apiVersion: networking.istio.io/v1\nkind: WorkloadGroup\nmetadata: {name: vm, namespace: shop}\nspec: {template: {serviceAccount: vm}}",
            "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: vm-10.0.0.3, namespace: shop, annotations: {istio.io/autoRegistrationGroup: vm}}\nspec: {address: 10.0.0.3}",
        ]
        let result = KubernetesImport.convert(try Self.inputs(Self.list(objects)))
        #expect(result.errors.isEmpty, "\(result.errors)")
        let notes = result.notes.map(\.description)
        for expected in [
            "(Service shop/db): left out: a headless service", "(Service shop/ext): left out: an ExternalName service is a DNS alias of api.example.com",
            "(Service shop/dns): port 53 (UDP) left out", "(Service shop/dns): port 9153 (port-9153) declares no protocol",
            "(Pod shop/web-1): left out: not ready", "(Pod shop/web-2): left out: the pod is Pending",
            "(Pod shop/web-3): Kubernetes-only settings are not carried: sidecar.istio.io/inject (", "(Service kube-system/kube-dns): namespace kube-system belongs to Kubernetes itself",
            "(WorkloadEntry shop/vm-10.0.0.3): left out: istiod made it for a proxy of WorkloadGroup vm while connected",
        ] {
            #expect(notes.contains { $0.contains(expected) }, "\(expected) in \(notes)")
        }
        #expect(result.resources.map(\.key.description) == ["ServiceEntry shop/dns", "WorkloadEntry shop/web-3", "WorkloadGroup shop/vm"])
        let dns = try #require(result.resources.first?.configValue["spec"]?["ports"])
        #expect(dns == .array([.object(ConfigObject([("number", .int(9153)), ("name", .string("port-9153")), ("targetPort", .int(9154))]))]))
        let only = KubernetesImport.convert(try Self.inputs(Self.list(objects)), options: .init(namespaces: ["kube-system"]))
        #expect(only.resources.map(\.key.description) == ["ServiceEntry kube-system/kube-dns"])
    }

    @Test("Istio's protocol of a port: appProtocol first (Kubernetes' h2c, ws, wss too), then the name's prefix")
    func protocols() {
        #expect(Conversion.protocolName(appProtocol: "kubernetes.io/h2c", name: "web") == "HTTP2")
        #expect(Conversion.protocolName(appProtocol: "GRPC", name: "http") == "GRPC")
        #expect(Conversion.protocolName(appProtocol: "custom", name: "http-api") == "HTTP")
        #expect(Conversion.protocolName(appProtocol: nil, name: "tcp-db") == "TCP")
        #expect(Conversion.protocolName(appProtocol: nil, name: "web") == nil)
    }
}
