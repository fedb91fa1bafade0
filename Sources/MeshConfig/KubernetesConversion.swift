internal import MeshModel

/// The state of one ``KubernetesImport``: the objects sorted by what they become, then the
/// resources made from them.
struct Conversion {
    let options: KubernetesImport.Options
    var result = KubernetesImport.Result()
    var services: [ExportedObject] = []
    var pods: [ExportedObject] = []
    /// Readiness reported by EndpointSlices and Endpoints, by `namespace/pod` and by `namespace/ip`.
    var endpointReadiness: [String: Bool] = [:]
    /// Node labels by node name.
    var nodeLabels: [String: [String: String]] = [:]
    /// The resources made, with the object each came from.
    var made: [(resource: MeshResource, from: ExportedObject)] = []
    /// What each Service's ports became, by `namespace/service`, for the pods it selects.
    var servicePorts: [String: (selector: [String: String], ports: [(name: String, target: String)])] = [:]
    var skippedNamespaces: Set<String> = []

    init(options: KubernetesImport.Options) {
        self.options = options
    }

    mutating func note(_ object: ExportedObject, _ reason: String) {
        result.notes.append(.init(origin: object.origin, object: object.label, reason: reason))
    }

    mutating func error(_ object: ExportedObject, _ reason: String) {
        result.errors.append(.init(origin: object.origin, object: object.label, reason: reason))
    }

    // MARK: Sorting the export

    mutating func classify(_ input: KubernetesImport.Input) {
        let document = input.document
        let origin = SourceDocument.origin(input.source, document: document.document, item: document.item)
        let kind = document.value["kind"]?.stringValue ?? ""
        let object = ExportedObject(
            origin: origin, apiVersion: document.value["apiVersion"]?.stringValue ?? "", kind: kind,
            name: document.value["metadata"]?["name"]?.stringValue ?? "", namespace: document.value["metadata"]?["namespace"]?.stringValue ?? "default",
            value: document.value)
        guard !kind.isEmpty, !object.name.isEmpty else {
            error(object, "not a Kubernetes object: it needs kind and metadata.name")
            return
        }
        let clusterScoped = kind == "Node" || kind == "Namespace"
        if !clusterScoped {
            if let namespaces = options.namespaces, !namespaces.contains(object.namespace) { return }
            if options.namespaces == nil, KubernetesImport.systemNamespaces.contains(object.namespace) {
                if skippedNamespaces.insert(object.namespace).inserted {
                    note(object, "namespace \(object.namespace) belongs to Kubernetes itself and is left out (name it with --namespace to import it)")
                }
                return
            }
        }
        let isCore = object.apiVersion == "v1" || object.apiVersion == "discovery.k8s.io/v1"
        switch (isCore, kind) {
        case (true, "Service"): services.append(object)
        case (true, "Pod"): pods.append(object)
        case (true, "EndpointSlice"): readEndpointSlice(object)
        case (true, "Endpoints"): readEndpoints(object)
        case (true, "Node"): nodeLabels[object.name] = object.labels
        case (true, "ServiceAccount"), (true, "Namespace"): break  // identities are the pods' serviceAccountName
        case (true, "Secret"): importSecret(object)
        default:
            if kind == ResourceKind.workloadEntry.rawValue, let group = object.annotations[AutoRegistration.groupAnnotation] {
                note(object, "left out: istiod made it for a proxy of WorkloadGroup \(group) while connected; the proxy registers again when it connects to meshd")
            } else if let served = ResourceKind(rawValue: kind), served.accepts(apiVersion: object.apiVersion) {
                add(KubernetesImport.withoutServerFields(object.value), from: object)
            } else if object.apiVersion.contains("istio.io/") {
                error(object, "meshd does not serve \(kind) (\(object.apiVersion)); see docs/CONFIGURATION.md for the kinds it serves")
            } else if options.skipUnsupported {
                note(object, "left out: meshd does not import \(kind) (\(object.apiVersion))")
            } else {
                error(object, "meshd does not import \(kind) (\(object.apiVersion)): export Istio's kinds, Services, EndpointSlices (or Endpoints), Pods, ServiceAccounts, Nodes and TLS Secrets, or pass --skip-unsupported to leave the rest out")
            }
        }
    }

    /// Decodes a resource made or carried over; a problem is an error of the object it came from.
    mutating func add(_ value: ConfigValue, from object: ExportedObject) {
        do throws(ResourceDecodeError) {
            made.append((try MeshResource(document: value), object))
        } catch {
            self.error(object, error.description)
        }
    }

    mutating func importSecret(_ object: ExportedObject) {
        let type = object.value["type"]?.stringValue ?? "Opaque"
        let keys = Set((object.value["data"]?.objectValue?.keys ?? []) + (object.value["stringData"]?.objectValue?.keys ?? []))
        let credentialKeys: Set<String> = ["tls.crt", "tls.key", "ca.crt", "cert", "key", "cacert"]
        guard type == "kubernetes.io/tls" || (type == "Opaque" && !keys.isEmpty && keys.isSubset(of: credentialKeys)) else {
            note(object, "left out: a \(type) Secret is not a gateway credential (meshd holds TLS Secrets only)")
            return
        }
        add(KubernetesImport.withoutServerFields(object.value), from: object)
    }

    mutating func readEndpointSlice(_ object: ExportedObject) {
        for endpoint in object.value["endpoints"]?.arrayValue ?? [] {
            let ready = endpoint["conditions"]?["ready"].map { $0 == .bool(true) } ?? true
            if let pod = endpoint["targetRef"]?["name"]?.stringValue { endpointReadiness["\(object.namespace)/\(pod)"] = ready }
            for address in endpoint["addresses"]?.arrayValue ?? [] {
                if let ip = address.stringValue { endpointReadiness["\(object.namespace)/\(ip)"] = ready }
            }
        }
    }

    mutating func readEndpoints(_ object: ExportedObject) {
        for subset in object.value["subsets"]?.arrayValue ?? [] {
            for (field, ready) in [("addresses", true), ("notReadyAddresses", false)] {
                for address in subset[field]?.arrayValue ?? [] {
                    if let pod = address["targetRef"]?["name"]?.stringValue { endpointReadiness["\(object.namespace)/\(pod)"] = ready }
                    if let ip = address["ip"]?.stringValue { endpointReadiness["\(object.namespace)/\(ip)"] = ready }
                }
            }
        }
    }

    // MARK: The result

    mutating func finish() -> KubernetesImport.Result {
        var seen: [ResourceKey: ExportedObject] = [:]
        for (resource, object) in made {
            if let earlier = seen[resource.key] {
                error(object, "\(resource.key) is made twice: also from \(earlier.origin) (\(earlier.label))")
            }
            seen[resource.key] = object
        }
        if result.errors.isEmpty {
            let order = Dictionary(uniqueKeysWithValues: ResourceKind.allCases.enumerated().map { ($1, $0) })
            result.resources = made.map(\.resource).sorted {
                ($0.metadata.namespace, order[$0.kind]!, $0.metadata.name) < ($1.metadata.namespace, order[$1.kind]!, $1.metadata.name)
            }
        }
        return result
    }
}
