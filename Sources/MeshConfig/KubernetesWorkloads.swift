internal import MeshModel
internal import Foundation

/// Services into ServiceEntries and Pods into WorkloadEntries, as Istio reads them on Kubernetes.
extension Conversion {
    /// Annotation and label prefixes of Istio's sidecar injection: Kubernetes-only settings.
    static let injectionPrefixes = ["sidecar.istio.io/", "traffic.sidecar.istio.io/", "proxy.istio.io/", "readiness.status.sidecar.istio.io/", "istio.io/rev"]
    /// Written by the injector itself: a record, not a setting, so not worth a note.
    static let injectionRecords: Set<String> = ["sidecar.istio.io/status"]

    /// Istio's protocol of a Service port: `appProtocol` first, then the name's prefix
    /// (`http-api`); `nil` when neither says (the sidecars detect it per connection).
    static func protocolName(appProtocol: String?, name: String?) -> String? {
        if let declared = appProtocol?.lowercased() {
            let kubernetes = ["kubernetes.io/h2c": "HTTP2", "kubernetes.io/ws": "HTTP", "kubernetes.io/wss": "HTTPS"]
            if let mapped = kubernetes[declared] { return mapped }
            if let known = ServiceProtocol(istioName: declared) { return known.rawValue }
        }
        if let prefix = name?.split(separator: "-", maxSplits: 1).first, let known = ServiceProtocol(istioName: String(prefix)) { return known.rawValue }
        return nil
    }

    // MARK: Services

    mutating func convertServices() {
        for service in services { convert(service: service) }
    }

    mutating func convert(service: ExportedObject) {
        let spec = service.value["spec"]
        let type = spec?["type"]?.stringValue ?? "ClusterIP"
        let selector = ExportedObject.strings(spec?["selector"])
        if service.namespace == "default" && service.name == "kubernetes" { return note(service, "left out: the Kubernetes API server's own service") }
        if service.name == "istiod" || selector["app"] == "istiod" { return note(service, "left out: istiod, whose place meshd takes") }
        if type == "ExternalName" {
            let target = spec?["externalName"]?.stringValue ?? "?"
            return note(service, "left out: an ExternalName service is a DNS alias of \(target); for traffic to it through the mesh, write a MESH_EXTERNAL ServiceEntry with resolution DNS for \(target)")
        }
        if spec?["clusterIP"]?.stringValue == "None" {
            return note(service, "left out: a headless service; its clients reach each pod by a DNS name of its own (pod.service.namespace.svc), which meshd does not serve; write a ServiceEntry with resolution DNS, or one per pod")
        }
        guard !selector.isEmpty else {
            return error(service, "has no selector: Kubernetes keeps its endpoints by hand (Endpoints, EndpointSlices), which meshd does not import; give it a selector, or leave it out of the export and write a ServiceEntry with its endpoints")
        }
        if type == "NodePort" || type == "LoadBalancer" { note(service, "its \(type) exposure belongs to Kubernetes and is not carried; expose it through a Gateway") }
        if spec?["sessionAffinity"]?.stringValue == "ClientIP" { note(service, "sessionAffinity ClientIP is not carried; a DestinationRule with loadBalancer.consistentHash.useSourceIp does the same") }
        var ports: [ConfigValue] = []
        var namedTargets: [(name: String, target: String)] = []
        for (index, port) in (spec?["ports"]?.arrayValue ?? []).enumerated() {
            guard let number = port["port"]?.integer else {
                error(service, "spec.ports[\(index)]: no port number")
                continue
            }
            let transport = port["protocol"]?.stringValue ?? "TCP"
            guard transport == "TCP" else {
                note(service, "port \(number) (\(transport)) left out: the mesh proxies TCP only; its traffic goes directly, as with Istio")
                continue
            }
            let written = port["name"]?.stringValue ?? ""
            let name = written.isEmpty ? "port-\(number)" : written
            let declared = Self.protocolName(appProtocol: port["appProtocol"]?.stringValue, name: written.isEmpty ? nil : written)
            if declared == nil {
                note(service, "port \(number) (\(name)) declares no protocol (appProtocol, or a name such as http-web); its sidecars detect HTTP per connection, as Istio's do, and a server-first protocol on it waits for protocolDetectionTimeout: declare it")
            }
            var entry = ConfigObject([("number", .int(number)), ("name", .string(name))])
            if let declared { entry["protocol"] = .string(declared) }
            switch port["targetPort"] {
            case .string(let text)? where Int64(text) == nil:
                namedTargets.append((name, text))
            case let target?:
                if let target = target.integer, target != number { entry["targetPort"] = .int(target) }
            case nil:
                break
            }
            ports.append(.object(entry))
        }
        guard !ports.isEmpty else { return note(service, "left out: it has no TCP port") }
        servicePorts["\(service.namespace)/\(service.name)"] = (selector, namedTargets)
        let labels = ConfigObject(selector.sorted { $0.key < $1.key }.map { ($0.key, ConfigValue.string($0.value)) })
        add(.object(ConfigObject([
            ("apiVersion", .string("networking.istio.io/v1")), ("kind", .string("ServiceEntry")),
            ("metadata", .object(ConfigObject([("name", .string(service.name)), ("namespace", .string(service.namespace))]))),
            ("spec", .object(ConfigObject([
                ("hosts", .array([.string("\(service.name).\(service.namespace).svc.cluster.local")])),
                ("location", .string("MESH_INTERNAL")), ("resolution", .string("STATIC")),
                ("ports", .array(ports)), ("workloadSelector", .object(ConfigObject([("labels", .object(labels))]))),
            ]))),
        ])), from: service)
    }

    // MARK: Pods

    mutating func convertPods() {
        for pod in pods { convert(pod: pod) }
    }

    mutating func convert(pod: ExportedObject) {
        let labels = pod.labels
        if labels["app"] == "istiod" { return note(pod, "left out: istiod, whose place meshd takes") }
        let status = pod.value["status"]
        let phase = status?["phase"]?.stringValue
        if phase == "Succeeded" || phase == "Failed" { return note(pod, "left out: the pod has ended (\(phase!))") }
        guard let address = status?["podIP"]?.stringValue, !address.isEmpty else {
            if phase == "Pending" || phase == "Unknown" { return note(pod, "left out: the pod is \(phase!) and has no address yet") }
            return error(pod, "has no status.podIP: a running pod needs its address; export pods with kubectl get -o yaml, which writes their status")
        }
        if pod.value["spec"]?["hostNetwork"] == .bool(true) { return note(pod, "left out: it uses its node's network (hostNetwork), outside the mesh") }
        let readyCondition = status?["conditions"]?.arrayValue?.first { $0["type"]?.stringValue == "Ready" }?["status"]?.stringValue
        let ready = readyCondition.map { $0 == "True" }
            ?? endpointReadiness["\(pod.namespace)/\(pod.name)"] ?? endpointReadiness["\(pod.namespace)/\(address)"] ?? true
        guard ready else { return note(pod, "left out: not ready, so Kubernetes sends it no traffic; import again once it is") }

        let isInjection = { (key: String) in Self.injectionPrefixes.contains { key.hasPrefix($0) } }
        let settings = (Array(labels.keys) + Array(pod.annotations.keys)).filter { isInjection($0) && !Self.injectionRecords.contains($0) }
        if !settings.isEmpty {
            note(pod, "Kubernetes-only settings are not carried: \(Set(settings).sorted().joined(separator: ", ")) (sidecar injection; meshd's sidecars are started with meshctl proxy run)")
        }
        let spec = pod.value["spec"]
        var entry = ConfigObject([
            ("address", .string(address)),
            ("labels", .object(ConfigObject(labels.filter { !isInjection($0.key) }.sorted { $0.key < $1.key }.map { ($0.key, ConfigValue.string($0.value)) }))),
            ("serviceAccount", .string(spec?["serviceAccountName"]?.stringValue ?? spec?["serviceAccount"]?.stringValue ?? "default")),
        ])
        if let locality = locality(of: pod) { entry["locality"] = .string(locality) }
        let ports = targetPorts(of: pod)
        if !ports.isEmpty {
            entry["ports"] = .object(ConfigObject(ports.sorted { $0.key < $1.key }.map { ($0.key, ConfigValue.int($0.value)) }))
        }
        add(.object(ConfigObject([
            ("apiVersion", .string("networking.istio.io/v1")), ("kind", .string("WorkloadEntry")),
            ("metadata", .object(ConfigObject([("name", .string(pod.name)), ("namespace", .string(pod.namespace))]))),
            ("spec", .object(entry)),
        ])), from: pod)
    }

    /// Istio's locality of a pod: its `istio-locality` label (`region.zone.subzone`), else its
    /// node's topology labels (region, zone, Istio's subzone) when the export holds the node.
    func locality(of pod: ExportedObject) -> String? {
        if let label = pod.labels["istio-locality"] { return label.replacingOccurrences(of: ".", with: "/") }
        guard let node = pod.value["spec"]?["nodeName"]?.stringValue, let labels = nodeLabels[node],
              let region = labels["topology.kubernetes.io/region"] else { return nil }
        return [region, labels["topology.kubernetes.io/zone"], labels["topology.istio.io/subzone"]].compactMap { $0 }.joined(separator: "/")
    }

    /// The container port numbers behind the named target ports of the services that select
    /// `pod`, by service port name (WorkloadEntry `ports`).
    mutating func targetPorts(of pod: ExportedObject) -> [String: Int64] {
        var containerPorts: [String: Int64] = [:]
        for container in pod.value["spec"]?["containers"]?.arrayValue ?? [] {
            for port in container["ports"]?.arrayValue ?? [] {
                if let name = port["name"]?.stringValue, let number = port["containerPort"]?.integer { containerPorts[name] = number }
            }
        }
        let labels = pod.labels
        var out: [String: Int64] = [:]
        for (key, service) in servicePorts.sorted(by: { $0.key < $1.key }) where key.hasPrefix("\(pod.namespace)/") {
            guard service.selector.allSatisfy({ labels[$0.key] == $0.value }) else { continue }
            for (portName, target) in service.ports {
                guard let number = containerPorts[target] else {
                    note(pod, "has no container port named \(target), which Service \(key) port \(portName) targets; Kubernetes sends it no traffic on that port, meshd would use the service port's number")
                    continue
                }
                if let other = out[portName], other != number {
                    note(pod, "two services name a port \(portName) with different targets (\(other), \(number)); \(other) is kept")
                    continue
                }
                out[portName] = number
            }
        }
        return out
    }
}
