import Foundation
import MeshModel
import Testing

/// The Istio field inventory the model is generated from, read as a tree of messages.
struct FieldInventory {
    struct Field {
        var name: String
        /// The message type of the field (of a map's values), fully qualified; nil for scalars,
        /// enums, well-known types and maps of scalars.
        var message: String?
        var isMap: Bool
    }

    var messages: [String: [Field]] = [:]

    static let specMessages: [ResourceKind: String] = [
        .serviceEntry: "istio.networking.v1alpha3.ServiceEntry",
        .workloadEntry: "istio.networking.v1alpha3.WorkloadEntry",
        .workloadGroup: "istio.networking.v1alpha3.WorkloadGroup",
        .virtualService: "istio.networking.v1alpha3.VirtualService",
        .destinationRule: "istio.networking.v1alpha3.DestinationRule",
        .sidecar: "istio.networking.v1alpha3.Sidecar",
        .gateway: "istio.networking.v1alpha3.Gateway",
        .peerAuthentication: "istio.security.v1beta1.PeerAuthentication",
        .authorizationPolicy: "istio.security.v1beta1.AuthorizationPolicy",
        .requestAuthentication: "istio.security.v1beta1.RequestAuthentication",
        .telemetry: "istio.telemetry.v1alpha1.Telemetry",
    ]

    init(path: String) throws {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var package = ""
        var pending: [(owner: String, name: String, type: String)] = []
        for line in text.split(separator: "\n").map(String.init) {
            if line.hasPrefix("=== ") {
                package = line.components(separatedBy: " package ").last ?? ""
                continue
            }
            guard line.hasPrefix("M "), let colon = line.firstIndex(of: ":") else { continue }
            let header = line[line.index(line.startIndex, offsetBy: 2)..<colon]
            let owner = package + "." + (header.split(separator: " ").first.map(String.init) ?? "")
            messages[owner] = []
            var body = String(line[line.index(after: colon)...])
            if let brace = body.firstIndex(of: "{") { body = String(body[..<brace]) }
            for entry in body.split(separator: ";") {
                let words = entry.split(separator: " ").map(String.init)
                guard words.count >= 2, let equals = words[0].firstIndex(of: "=") else { continue }
                var name = String(words[0][..<equals])
                if let paren = name.firstIndex(of: "(") { name = String(name[..<paren]) }
                pending.append((owner, name, words[1]))
            }
            // Types are relative to the section's package unless fully qualified.
            for index in pending.indices where !pending[index].type.contains("istio.") {
                pending[index].type = Self.qualify(pending[index].type, package: package)
            }
            for (owner, name, type) in pending {
                messages[owner, default: []].append(Field(name: name, message: type.isEmpty ? nil : type, isMap: false))
            }
            pending = []
        }
        // Keep message types only; a map keeps its value type.
        for (owner, fields) in messages {
            messages[owner] = fields.map { field in
                guard var type = field.message else { return field }
                var isMap = false
                if type.hasPrefix("map<"), let comma = type.firstIndex(of: ","), let close = type.lastIndex(of: ">") {
                    type = String(type[type.index(after: comma)..<close])
                    isMap = true
                }
                return Field(name: field.name, message: messages[type] != nil ? type : nil, isMap: isMap)
            }
        }
    }

    private static func qualify(_ type: String, package: String) -> String {
        if type.hasPrefix("map<"), let comma = type.firstIndex(of: ","), let close = type.lastIndex(of: ">") {
            let value = String(type[type.index(after: comma)..<close])
            return "map<" + type[type.index(type.startIndex, offsetBy: 4)..<comma] + "," + (value.contains("istio.") ? value : package + "." + value) + ">"
        }
        return package + "." + type
    }

    /// Every field path under `kind`'s spec, in the notation of ``FieldSupport``.
    func paths(of kind: ResourceKind) -> [String] {
        var out: [String] = []
        func walk(_ message: String, prefix: String, seen: Set<String>) {
            for field in messages[message] ?? [] {
                let path = prefix.isEmpty ? field.name : prefix + "." + field.name
                out.append(path)
                guard let child = field.message, !seen.contains(child) else { continue }
                walk(child, prefix: field.isMap ? path + ".*" : path, seen: seen.union([child]))
            }
        }
        let root = Self.specMessages[kind]!
        walk(root, prefix: "", seen: [root])
        return out
    }
}

@Suite("No field accepted in silence")
struct FieldSupportTests {
    static let inventory = Result { try FieldInventory(path: packageRoot + "/proto/istio/istio-api-fields.txt") }

    static var packageRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }

    /// The field itself or the nearest listed field above it.
    static func treatment(of path: String, in kind: ResourceKind) -> (String, FieldSupport.Treatment)? {
        var steps = path.split(separator: ".").map(String.init)
        while !steps.isEmpty {
            let candidate = steps.joined(separator: ".")
            if let treatment = FieldSupport.treatment(of: candidate, in: kind) { return (candidate, treatment) }
            steps.removeLast()
        }
        return nil
    }

    /// Istio's kinds. (A Secret has four fields, all read by `CredentialSecret`, which refuses
    /// `immutable` and every data key it does not use: CredentialSecretTests.)
    static let istioKinds = ResourceKind.allCases.filter { $0 != .secret }

    @Test("every field of every kind meshd serves is translated, partly translated or refused", arguments: istioKinds)
    func everyFieldIsClassified(kind: ResourceKind) throws {
        let inventory = try Self.inventory.get()
        let paths = inventory.paths(of: kind)
        #expect(paths.count > 3, "the inventory lists \(kind.rawValue)'s fields")
        let parents = Set(paths.flatMap { path in
            let steps = path.split(separator: ".")
            return (1..<max(steps.count, 1)).map { steps.prefix($0).joined(separator: ".") }
        })
        var unclassified: [String] = []
        for path in paths where !parents.contains(path) {
            // A leaf: listed itself, or under a refused field. A listed parent that is translated
            // does not vouch for its fields.
            if FieldSupport.treatment(of: path, in: kind) != nil { continue }
            if let (_, treatment) = Self.treatment(of: path, in: kind), case .refused = treatment { continue }
            unclassified.append(path)
        }
        #expect(unclassified.isEmpty, "\(kind.rawValue): neither translated nor refused: \(unclassified.joined(separator: ", "))")
        let known = Set(paths)
        let stale = FieldSupport.paths(in: kind).filter { !known.contains($0) }
        #expect(stale.isEmpty, "\(kind.rawValue): the table lists fields the inventory does not have: \(stale)")
    }
}

extension FieldSupportTests {
    @Test("docs/CONFIGURATION.md lists every field meshd refuses, always or for some values")
    func documented() throws {
        let doc = try String(contentsOfFile: Self.packageRoot + "/docs/CONFIGURATION.md", encoding: .utf8)
        let policies = ["subsets.trafficPolicy.portLevelSettings.", "subsets.trafficPolicy.", "trafficPolicy.portLevelSettings.", "trafficPolicy."]
        var missing: [String] = []
        for kind in ResourceKind.allCases {
            for path in FieldSupport.paths(in: kind) {
                let treatment = FieldSupport.treatment(of: path, in: kind)
                let when: String
                switch treatment {
                case .refused: when = "when set"
                case .partly: when = "some values"
                default: continue
                }
                var shown = path
                if kind == .destinationRule, let prefix = policies.first(where: { path.hasPrefix($0) }) {
                    shown = "<policy>." + path.dropFirst(prefix.count)
                }
                let row = "| \(kind.rawValue) | `\(shown)` | \(when) |"
                if !doc.contains(row) { missing.append(row) }
            }
        }
        #expect(missing.isEmpty, "add to docs/CONFIGURATION.md: \(missing)")
    }
}

@Suite("Fields meshd refuses, with their paths")
struct FieldRefusalTests {
    func problems(_ kind: String, _ apiVersion: String = "networking.istio.io/v1", spec: ConfigValue) -> [String] {
        let document: ConfigValue = ["apiVersion": .string(apiVersion), "kind": .string(kind), "metadata": ["name": "x", "namespace": "ns"], "spec": spec]
        do {
            return Validation.problems(of: try MeshResource(document: document)).map(\.description)
        } catch {
            return error.problems.map(\.description)
        }
    }

    @Test("a refused field is an error at its full path (list indices and map keys included), once, whatever its parent")
    func refusedAtPath() {
        let route: ConfigValue = ["route": [["destination": ["host": "a"]]]]
        let delegate: ConfigValue = ["delegate": ["name": "inner"]]
        let found = problems("VirtualService", spec: [
            "hosts": ["a"], "http": [route, delegate],
            "tls": [["match": [["sniHosts": ["a"]]], "route": [["destination": ["host": "a"]]]]],
            "tcp": [["match": [["destinationSubnets": ["10.0.0.0/8"]]], "route": [["destination": ["host": "a"]]]]],
        ])
        #expect(found.contains { $0.hasPrefix("spec.http[1].delegate: delegate VirtualServices are not supported") }, "\(found)")
        #expect(found.contains { $0.hasPrefix("spec.tls: TLS routes apply to gateways in meshd") }, "\(found)")
        #expect(found.contains { $0.hasPrefix("spec.tcp[0].match[0].destinationSubnets: ") }, "\(found)")
        #expect(!found.contains { $0.hasPrefix("spec.http[0]") }, "\(found)")

        let locality: ConfigValue = ["loadBalancer": ["zoneAwareLbSetting": ["enabled": true]]]
        let rule = problems("DestinationRule", spec: [
            "host": "a", "trafficPolicy": ["portLevelSettings": [["port": ["number": 80], "loadBalancer": ["zoneAwareLbSetting": [:]]]]],
            "subsets": [["name": "v1", "trafficPolicy": locality]],
        ])
        #expect(rule.contains { $0.hasPrefix("spec.trafficPolicy.portLevelSettings[0].loadBalancer.zoneAwareLbSetting: zone-aware") }, "an empty message is set: \(rule)")
        #expect(rule.contains { $0.hasPrefix("spec.subsets[0].trafficPolicy.loadBalancer.zoneAwareLbSetting: zone-aware") }, "\(rule)")
        #expect(rule.count == 2, "\(rule)")

        let telemetry = problems("Telemetry", "telemetry.istio.io/v1", spec: ["tracing": [["customTags": ["my-tag": ["formatter": ["value": "%REQ(x)%"]]]]]])
        #expect(telemetry == ["spec.tracing[0].customTags[\"my-tag\"].formatter: formatter tags are not supported by meshd yet; use literal, header or environment"])
        #expect(problems("WorkloadEntry", spec: ["address": "127.0.0.2", "network": "net-1"]) == ["spec.network: meshd serves one network; multi-network meshes are not supported"])
        #expect(problems("WorkloadEntry", spec: ["address": "127.0.0.2", "network": ""]).isEmpty, "an empty string is unset in proto3")
        // A BoolValue's false is a setting (Envoy's default for this one is true): refused too.
        #expect(problems("Telemetry", "telemetry.istio.io/v1", spec: ["tracing": [["useRequestIdForTraceSampling": false]]]) == ["spec.tracing[0].useRequestIdForTraceSampling: not supported by meshd yet"])
    }

    @Test("Gateway servers: protocols, TLS that names its files, no contradicting servers on one port; VirtualServices may bind gateways")
    func gateways() {
        func server(_ port: Int, _ name: String, _ proto: String, hosts: [ConfigValue] = ["a.example.com"], tls: ConfigValue? = nil) -> ConfigValue {
            var object = ConfigObject([("port", ["number": .int(Int64(port)), "name": .string(name), "protocol": .string(proto)]), ("hosts", .array(hosts))])
            if let tls { object["tls"] = tls }
            return .object(object)
        }
        let simple: ConfigValue = ["mode": "SIMPLE", "serverCertificate": "/certs/a.pem", "privateKey": "/certs/a.key"]
        // What each TLS mode does not read is refused.
        let unread = problems("Gateway", spec: ["selector": ["istio": "ingressgateway"], "servers": [
            server(443, "simple", "HTTPS", tls: ["mode": "SIMPLE", "serverCertificate": "/a.pem", "privateKey": "/a.key", "caCertificates": "/ca.pem", "subjectAltNames": ["x"]]),
            server(444, "pass", "TLS", tls: ["mode": "PASSTHROUGH", "minProtocolVersion": "TLSV1_3"]),
            server(445, "mesh", "HTTPS", tls: ["mode": "ISTIO_MUTUAL", "privateKey": "/a.key"]),
            server(80, "http", "HTTP", tls: ["cipherSuites": ["ECDHE-ECDSA-AES128-GCM-SHA256"]]),
            server(9000, "tcp", "TCP", tls: ["httpsRedirect": true]),
        ]])
        for expected in [
            "spec.servers[0].tls.caCertificates: SIMPLE checks no client certificate",
            "spec.servers[0].tls.subjectAltNames: SIMPLE checks no client certificate",
            "spec.servers[1].tls.minProtocolVersion: PASSTHROUGH does not terminate TLS",
            "spec.servers[2].tls.privateKey: ISTIO_MUTUAL uses the gateway's mesh certificate",
            "spec.servers[3].tls.cipherSuites: cipherSuites applies to HTTPS and TLS servers",
            "spec.servers[4].tls.httpsRedirect: httpsRedirect applies to HTTP servers",
        ] {
            #expect(unread.contains { $0.hasPrefix(expected) }, "\(expected) in \(unread)")
        }
        #expect(unread.count == 6, "\(unread)")
        let valid = problems("Gateway", spec: ["selector": ["istio": "ingressgateway"], "servers": [
            server(80, "http", "HTTP", hosts: ["./a.example.com", "*/b.example.com"], tls: ["httpsRedirect": true]),
            server(443, "https-a", "HTTPS", tls: simple),
            server(443, "https-b", "HTTPS", hosts: ["b.example.com"], tls: ["mode": "ISTIO_MUTUAL"]),
            server(9000, "tcp", "TCP", hosts: ["*"]),
            server(443, "tls", "TLS", hosts: ["c.example.com"], tls: ["mode": "PASSTHROUGH"]),
            server(443, "https-c", "HTTPS", hosts: ["d.example.com"], tls: ["mode": "PASSTHROUGH"]),
        ]])
        #expect(valid.isEmpty, "\(valid)")
        let found = problems("Gateway", spec: ["selector": ["istio": "ingressgateway"], "servers": [
            server(443, "a", "HTTPS", tls: simple),
            server(443, "b", "HTTPS", tls: ["mode": "ISTIO_MUTUAL"]),
            server(443, "c", "HTTP"),
            server(8443, "d", "HTTPS", tls: ["mode": "MUTUAL", "serverCertificate": "/certs/a.pem", "privateKey": "/certs/a.key"]),
            server(8444, "e", "HTTPS", tls: ["mode": "AUTO_PASSTHROUGH"]),
            server(8445, "f", "TLS", tls: ["mode": "SIMPLE", "serverCertificate": "/a.pem", "privateKey": "/a.key"]),
            server(8446, "g", "HTTP", tls: ["mode": "SIMPLE"]),
            server(8447, "h", "HTTPS", tls: ["mode": "SIMPLE", "credentialName": "my-secret", "serverCertificate": "/a.pem"]),
            server(8448, "i", "HTTPS", tls: ["mode": "SIMPLE", "serverCertificate": "/a.pem", "privateKey": "/a.key", "httpsRedirect": true]),
        ]])
        for expected in [
            "spec.servers[1].tls: servers[0] serves a.example.com on port 443 with other TLS settings",
            "spec.servers[2].port.protocol: port 443 is HTTPS in servers[0]",
            "spec.servers[3].tls.caCertificates: MUTUAL needs caCertificates",
            "spec.servers[4].tls.mode: AUTO_PASSTHROUGH serves multi-network meshes",
            "spec.servers[5].tls.mode: a TLS server passes TLS through (PASSTHROUGH)",
            "spec.servers[6].tls.mode: TLS mode SIMPLE needs protocol HTTPS or TLS",
            "spec.servers[7].tls.serverCertificate: give either credentialName (a Secret held by meshd) or certificate files",
            "spec.servers[8].tls.httpsRedirect: httpsRedirect applies to HTTP servers",
        ] {
            #expect(found.contains { $0.hasPrefix(expected) }, "\(expected) in \(found)")
        }
        let route: ConfigValue = ["match": [["gateways": ["mesh", "ns/gw"]]], "route": [["destination": ["host": "a"]]]]
        #expect(problems("VirtualService", spec: ["hosts": ["a"], "gateways": ["mesh", "bookinfo-gateway", "ns/gw"], "http": [route]]).isEmpty)
        let tls: ConfigValue = [["match": [["sniHosts": ["a.example.com"]]], "route": [["destination": ["host": "a"]]]]]
        #expect(problems("VirtualService", spec: ["hosts": ["a.example.com"], "gateways": ["ns/gw"], "tls": tls]).isEmpty, "TLS routes on a gateway")
        #expect(problems("VirtualService", spec: ["hosts": ["a.example.com"], "gateways": ["ns/gw", "mesh"], "tls": tls]).first?.hasPrefix("spec.tls: TLS routes apply to gateways in meshd") == true)
        #expect(problems("VirtualService", spec: ["hosts": ["a"], "gateways": ["a/b/c"]]) == ["spec.gateways[0]: \"a/b/c\" is not \"mesh\" or \"namespace/name\" of a Gateway"])
        #expect(problems("Gateway", spec: ["servers": [server(80, "http", "HTTP")]]).first?.hasPrefix("spec.selector: a Gateway needs a selector") == true)
        // A match narrows to gateways the VirtualService is bound to; others would never apply.
        let narrowed = problems("VirtualService", spec: ["hosts": ["a"], "gateways": ["gw"], "http": [route], "tcp": [["match": [["gateways": ["default/gw"]]], "route": [["destination": ["host": "a"]]]]]])
        #expect(narrowed.map { $0.components(separatedBy: ":").first ?? "" } == ["spec.http[0].match[0].gateways[0]", "spec.tcp[0].match[0].gateways[0]"], "ns/gw is gw in ns: \(narrowed)")
        #expect(narrowed.first?.contains("is not among the VirtualService's gateways (gw), so this match would never apply") == true)
        #expect(problems("VirtualService", spec: ["hosts": ["a"], "http": [["match": [["gateways": ["mesh"]]], "route": [["destination": ["host": "a"]]]]]]).isEmpty, "no gateways: mesh")
    }

    @Test("values meshd cannot act on are refused; the values it acts on pass")
    func partlyRefused() {
        #expect(problems("ServiceEntry", spec: ["hosts": ["a.example.com"], "resolution": "DYNAMIC_DNS"]).contains { $0.hasPrefix("spec.resolution: DYNAMIC_DNS is not supported") })
        let entry = problems("ServiceEntry", spec: [
            "hosts": ["a.example.com"], "addresses": ["10.0.0.7", "10.0.0.0/16"],
            "ports": [["number": 53, "name": "dns", "protocol": "UDP"], ["number": 54, "name": "udp-dns"], ["number": 80, "name": "http"]],
        ])
        #expect(entry.map { $0.components(separatedBy: ":").first ?? "" } == ["spec.addresses[1]", "spec.ports[0].protocol", "spec.ports[1].name"], "\(entry)")
        #expect(entry.first?.contains("a CIDR block selects traffic by its destination address") == true, "\(entry)")
        #expect(entry.last?.contains("UDP is not proxied") == true, "\(entry)")
        let sidecar = problems("Sidecar", spec: [
            "outboundTrafficPolicy": ["egressProxy": ["host": "egress.example.com"]],
            "egress": [["hosts": ["./*"], "captureMode": "IPTABLES", "port": ["number": 80, "protocol": "SPDY", "name": "x"]]],
        ])
        #expect(sidecar.contains { $0.hasPrefix("spec.outboundTrafficPolicy.egressProxy: egress proxies are not supported") }, "\(sidecar)")
        #expect(sidecar.contains { $0.hasPrefix("spec.egress[0].captureMode: meshd does not capture traffic") }, "\(sidecar)")
        #expect(sidecar.contains { $0.hasPrefix("spec.egress[0].port.protocol: unknown protocol \"SPDY\"") }, "\(sidecar)")
        let accepted: ConfigValue = [
            "outboundTrafficPolicy": ["mode": "REGISTRY_ONLY"],
            "egress": [["hosts": ["./*"], "captureMode": "NONE", "port": ["number": 80, "protocol": "HTTP", "name": "http"]]],
        ]
        #expect(problems("Sidecar", spec: accepted).isEmpty)
        let open: ConfigValue = ["outboundTrafficPolicy": ["mode": "ALLOW_ANY"], "egress": [["hosts": ["./*"], "bind": "10.1.2.3"], ["hosts": ["./*"], "bind": "127.0.1.2"]]]
        #expect(problems("Sidecar", spec: open).map { $0.components(separatedBy: ":").first ?? "" } == ["spec.egress[0].bind"], "ALLOW_ANY only on loopback binds")
        let redirect: ConfigValue = ["redirect": ["uri": "/x", "redirectCode": 305]]
        let body: ConfigValue = ["directResponse": ["status": 200, "body": ["bytes": "not base64!"]]]
        let found = problems("VirtualService", spec: ["hosts": ["a"], "http": [redirect, body]])
        #expect(found == ["spec.http[0].redirect.redirectCode: redirect code 305 is not one of 301, 302, 303, 307, 308", "spec.http[1].directResponse.body.bytes: not valid base64"])
    }
}
