import Testing
import MeshModel

@Suite("Checks beyond the schema")
struct ValidationTests {
    func problems(_ kind: String, _ apiVersion: String, spec: ConfigValue) -> [String] {
        let document: ConfigValue = ["apiVersion": .string(apiVersion), "kind": .string(kind), "metadata": ["name": "x", "namespace": "ns"], "spec": spec]
        do {
            let resource = try MeshResource(document: document)
            return Validation.problems(of: resource).map(\.description)
        } catch {
            return error.problems.map(\.description)
        }
    }

    @Test("ServiceEntry: hosts required, port names and numbers unique, known protocols")
    func serviceEntry() {
        #expect(problems("ServiceEntry", "networking.istio.io/v1", spec: ["hosts": []]) == ["spec.hosts: at least one host is required"])
        let ports: ConfigValue = [["number": 80, "name": "http"], ["number": 80, "name": "http", "protocol": "SPDY"]]
        let found = problems("ServiceEntry", "networking.istio.io/v1", spec: ["hosts": ["a.example.com"], "ports": ports])
        #expect(found.contains("spec.ports[1]: duplicate port name \"http\""))
        #expect(found.contains("spec.ports[1]: duplicate port number \"80\""))
        #expect(found.contains { $0.hasPrefix("spec.ports[1].protocol: unknown protocol \"SPDY\"") })
        let both: ConfigValue = ["hosts": ["a.example.com"], "workloadSelector": ["labels": ["app": "a"]], "endpoints": [["address": "10.0.0.1"]]]
        #expect(problems("ServiceEntry", "networking.istio.io/v1", spec: both).contains("spec.workloadSelector: workloadSelector and endpoints cannot both be set"))
        #expect(problems("ServiceEntry", "networking.istio.io/v1", spec: ["hosts": ["bad host!"]]) == ["spec.hosts[0]: \"bad host!\" is not a valid host name"])
    }

    @Test("tcp and tls rules with several destinations need weights (Istio: total destination weight = 0); one destination or HTTP rules do not")
    func routeWeights() {
        let two: ConfigValue = [["destination": ["host": "a", "subset": "v1"]], ["destination": ["host": "a", "subset": "v2"]]]
        #expect(problems("VirtualService", "networking.istio.io/v1", spec: ["hosts": ["a"], "tcp": [["route": two]]]) == ["spec.tcp[0].route: total destination weight = 0: give the destinations weights"])
        #expect(problems("VirtualService", "networking.istio.io/v1", spec: ["hosts": ["a"], "gateways": ["gw"], "tls": [["match": [["sniHosts": ["a"]]], "route": two]]]) == ["spec.tls[0].route: total destination weight = 0: give the destinations weights"])
        let weighted: ConfigValue = [["destination": ["host": "a", "subset": "v1"], "weight": 90], ["destination": ["host": "a", "subset": "v2"]]]
        #expect(problems("VirtualService", "networking.istio.io/v1", spec: ["hosts": ["a"], "tcp": [["route": weighted]]]).isEmpty)
        #expect(problems("VirtualService", "networking.istio.io/v1", spec: ["hosts": ["a"], "tcp": [["route": [["destination": ["host": "a"]]]]]]).isEmpty)
        #expect(problems("VirtualService", "networking.istio.io/v1", spec: ["hosts": ["a"], "http": [["route": two]]]).isEmpty, "HTTP keeps meshd's equal split")
    }

    @Test("WorkloadEntry: an IP address is required")
    func workloadEntry() {
        #expect(problems("WorkloadEntry", "networking.istio.io/v1", spec: ["labels": ["app": "a"]]) == ["spec.address: an address is required: meshd sends traffic for this workload to it"])
        #expect(problems("WorkloadEntry", "networking.istio.io/v1", spec: ["address": "vm.example.com"]) == ["spec.address: \"vm.example.com\" is not an IP address"])
        #expect(problems("WorkloadEntry", "networking.istio.io/v1", spec: ["address": "127.0.0.2", "ports": ["http": 70000]]) == ["spec.ports.http: port 70000 is out of range 1-65535"])
        #expect(problems("WorkloadEntry", "networking.istio.io/v1", spec: ["address": "127.0.0.2", "serviceAccount": "governor"]).isEmpty)
    }

    @Test("VirtualService: one action per route, valid destinations")
    func virtualService() {
        let route: ConfigValue = ["route": [["destination": ["host": "a"]]], "redirect": ["uri": "/x"]]
        #expect(problems("VirtualService", "networking.istio.io/v1", spec: ["hosts": ["a"], "http": [route]]) == ["spec.http[0]: only one of route, redirect, directResponse and delegate may be set"])
        #expect(problems("VirtualService", "networking.istio.io/v1", spec: ["hosts": []]) == ["spec.hosts: at least one host is required"])
        let abort: ConfigValue = ["route": [["destination": ["host": "a"]]], "fault": ["abort": ["httpStatus": 700, "percentage": ["value": 150]]]]
        let found = problems("VirtualService", "networking.istio.io/v1", spec: ["hosts": ["a"], "http": [abort]])
        #expect(found.contains("spec.http[0].fault.abort.percentage.value: percentage 150.0 is out of range 0-100"))
        #expect(found.contains("spec.http[0].fault.abort.httpStatus: HTTP status 700 is out of range 200-599"))
    }

    @Test("VirtualService: retryOn takes Envoy's HTTP and gRPC conditions and status codes; grpcStatus a gRPC status name")
    func retryOnAndGRPCStatus() {
        func route(retryOn: String, grpcStatus: String = "UNAVAILABLE") -> ConfigValue {
            ["hosts": ["a"], "http": [["route": [["destination": ["host": "a"]]], "retries": ["attempts": 2, "retryOn": .string(retryOn)], "fault": ["abort": ["grpcStatus": .string(grpcStatus)]]]]]
        }
        #expect(problems("VirtualService", "networking.istio.io/v1", spec: route(retryOn: "cancelled,deadline-exceeded,internal,resource-exhausted,unavailable, 5xx,503")).isEmpty)
        #expect(problems("VirtualService", "networking.istio.io/v1", spec: route(retryOn: "unavailable", grpcStatus: "14")).isEmpty)
        let found = problems("VirtualService", "networking.istio.io/v1", spec: route(retryOn: "unavailable,grpc-unavailable,700", grpcStatus: "NOT_A_STATUS"))
        #expect(found.contains { $0.hasPrefix("spec.http[0].retries.retryOn: \"grpc-unavailable\" is not a retry condition") }, "\(found)")
        #expect(found.contains("spec.http[0].retries.retryOn: 700 is not an HTTP status code"), "\(found)")
        #expect(found.contains { $0.hasPrefix("spec.http[0].fault.abort.grpcStatus: \"NOT_A_STATUS\" is not a gRPC status") }, "\(found)")
    }

    @Test("Sidecar: egress hosts are namespace/host; addresses are IPs")
    func sidecar() {
        let spec: ConfigValue = [
            "egress": [["bind": "localhost", "hosts": ["reviews"]]],
            "ingress": [["port": ["number": 8080, "protocol": "HTTP", "name": "http"], "defaultEndpoint": "app:8080"]],
        ]
        let found = problems("Sidecar", "networking.istio.io/v1", spec: spec)
        #expect(found.contains("spec.egress[0].bind: \"localhost\" is not an IP address"))
        #expect(found.contains { $0.hasPrefix("spec.egress[0].hosts[0]: \"reviews\" must have the form namespace/host") })
        #expect(found.contains { $0.hasPrefix("spec.ingress[0].defaultEndpoint: \"app:8080\" must be IP:PORT") })
    }

    @Test("PeerAuthentication: port-level mTLS needs a selector")
    func peerAuthentication() {
        #expect(problems("PeerAuthentication", "security.istio.io/v1", spec: ["portLevelMtls": ["8080": ["mode": "DISABLE"]]]) == ["spec.portLevelMtls: portLevelMtls requires a workload selector"])
        let ok: ConfigValue = ["selector": ["matchLabels": ["app": "a"]], "portLevelMtls": ["8080": ["mode": "DISABLE"]]]
        #expect(problems("PeerAuthentication", "security.istio.io/v1", spec: ok).isEmpty)
        let padded: ConfigValue = ["selector": ["matchLabels": ["app": "a"]], "portLevelMtls": ["080": ["mode": "DISABLE"]]]
        #expect(problems("PeerAuthentication", "security.istio.io/v1", spec: padded) == ["spec.portLevelMtls[\"080\"]: \"080\" is not a port number (1-65535, no leading zeros)"])
    }

    @Test("DestinationRule: subset names unique, outlier percentages in range")
    func destinationRule() {
        let spec: ConfigValue = [
            "host": "a", "subsets": [["name": "v1"], ["name": "v1"]],
            "trafficPolicy": ["outlierDetection": ["maxEjectionPercent": 120]],
        ]
        let found = problems("DestinationRule", "networking.istio.io/v1", spec: spec)
        #expect(found.contains("spec.subsets[1]: duplicate subset name \"v1\""))
        #expect(found.contains("spec.trafficPolicy.outlierDetection.maxEjectionPercent: must be within 0-100"))
    }
}
