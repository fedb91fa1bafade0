import EnvoyAPI
import Foundation
import MeshModel
import MeshTranslation
import SwiftProtobuf
import Testing
import XDSCache
import XDSTesting

@Suite("Gateways in the generated config")
struct GatewayTranslatorTests {
    static let mesh = """
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata: {name: httpbin, namespace: web}
        spec:
          hosts: [httpbin.web.svc.cluster.local]
          location: MESH_INTERNAL
          resolution: STATIC
          ports: [{number: 8000, name: http}, {number: 9000, name: tcp}]
          workloadSelector: {labels: {app: httpbin}}
        ---
        apiVersion: networking.istio.io/v1
        kind: WorkloadEntry
        metadata: {name: httpbin-1, namespace: web}
        spec: {address: 127.0.0.20, labels: {app: httpbin}, serviceAccount: httpbin}
        ---
        apiVersion: networking.istio.io/v1
        kind: WorkloadEntry
        metadata: {name: ingress, namespace: istio-system}
        spec: {address: 127.0.0.10, labels: {istio: ingressgateway}, serviceAccount: ingress}
        ---
        apiVersion: networking.istio.io/v1
        kind: WorkloadEntry
        metadata: {name: client, namespace: web}
        spec: {address: 127.0.0.30, labels: {app: client}, serviceAccount: client}
        ---
        apiVersion: networking.istio.io/v1
        kind: Gateway
        metadata: {name: gw, namespace: web}
        spec:
          selector: {istio: ingressgateway}
          servers:
          - {port: {number: 80, name: http, protocol: HTTP}, hosts: ["./httpbin.example.com", "other/*.other.example.com"]}
          - {port: {number: 8081, name: redirect, protocol: HTTP}, hosts: ["secure.example.com"], tls: {httpsRedirect: true}}
          - {port: {number: 443, name: https, protocol: HTTPS}, hosts: ["secure.example.com"], tls: {mode: SIMPLE, serverCertificate: /c/s.pem, privateKey: /c/s.key, minProtocolVersion: TLSV1_3}}
          - {port: {number: 443, name: mesh, protocol: HTTPS}, hosts: ["*"], tls: {mode: ISTIO_MUTUAL}}
          - {port: {number: 9000, name: tcp, protocol: TCP}, hosts: ["*"]}
        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: httpbin, namespace: web}
        spec:
          hosts: ["httpbin.example.com", "secure.example.com", "*.other.example.com"]
          gateways: [gw, edge]
          http:
          - name: status
            match: [{uri: {prefix: /status}}, {uri: {prefix: /edge-only}, gateways: [edge]}]
            route: [{destination: {host: httpbin, port: {number: 8000}}}]
          tcp:
          - route: [{destination: {host: httpbin, port: {number: 9000}}}]
        """

    static func translate(_ extra: String = "") throws -> XDSResourceSet {
        let snapshot = try snapshot(mesh + extra)
        let workload = try #require(snapshot.registry.workload(.init(namespace: "istio-system", name: "ingress")))
        #expect(ProxyKind.of(workload, in: snapshot) == .router)
        let resources = GatewayTranslator.translate(snapshot, workload: workload).resources
        expectPrintable(resources)
        return resources
    }

    func routes(_ resources: XDSResourceSet, _ name: String) throws -> RouteConfigurationView {
        RouteConfigurationView(try #require(resources.resources(ofType: XDSTypeURL.route)[name]?.unpack(Envoy_Config_Route_V3_RouteConfiguration.self), "route configuration \(name)"))
    }

    struct RouteConfigurationView {
        let config: Envoy_Config_Route_V3_RouteConfiguration
        init(_ config: Envoy_Config_Route_V3_RouteConfiguration) { self.config = config }
        var hosts: [String] { config.virtualHosts.map(\.name) }
        func host(_ name: String) -> Envoy_Config_Route_V3_VirtualHost? { config.virtualHosts.first { $0.name == name } }
    }

    func listener(_ resources: XDSResourceSet, _ name: String) throws -> Envoy_Config_Listener_V3_Listener {
        try #require(resources.resources(ofType: XDSTypeURL.listener)[name]?.unpack(Envoy_Config_Listener_V3_Listener.self), "listener \(name)")
    }

    @Test("Istio's names: a listener per port on the gateway's address, RDS http.<port> and https.<port>.<port name>.<gateway>.<namespace>")
    func names() throws {
        let resources = try Self.translate()
        #expect(resources.sortedResources(ofType: XDSTypeURL.listener).map(\.name) == ["127.0.0.10_443", "127.0.0.10_80", "127.0.0.10_8081", "127.0.0.10_9000"])
        #expect(resources.sortedResources(ofType: XDSTypeURL.route).map(\.name) == ["http.80", "http.8081", "https.443.https.gw.web", "https.443.mesh.gw.web"])
        #expect(resources.resources(ofType: XDSTypeURL.cluster)["outbound|8000||httpbin.web.svc.cluster.local"] != nil, "clusters of the services the gateway reaches")
    }

    @Test("virtual hosts: the hosts VirtualService and server share, server namespaces respected; gateway-bound matches only; httpsRedirect requires TLS")
    func virtualHosts() throws {
        let resources = try Self.translate()
        let http = try routes(resources, "http.80")
        // other/*.other.example.com admits only VirtualServices of namespace other.
        #expect(http.hosts == ["httpbin.example.com:80"])
        let host = try #require(http.host("httpbin.example.com:80"))
        #expect(host.domains == ["httpbin.example.com", "httpbin.example.com:*"])
        #expect(host.routes.map(\.name) == ["status"], "the match bound to another gateway only is left out")
        #expect(host.routes.first?.route.cluster == "outbound|8000||httpbin.web.svc.cluster.local")
        let redirect = try #require(try routes(resources, "http.8081").host("secure.example.com:8081"))
        #expect(redirect.requireTls == .all)
        #expect(try routes(resources, "https.443.https.gw.web").host("secure.example.com:443")?.requireTls == Envoy_Config_Route_V3_VirtualHost.TlsRequirementType.none)
        // A * server takes every host of the VirtualService.
        #expect(try routes(resources, "https.443.mesh.gw.web").hosts == ["*.other.example.com:443", "httpbin.example.com:443", "secure.example.com:443"])
    }

    @Test("HTTPS: a filter chain per server, matched by SNI, TLS from files or the mesh certificate; an edge connection manager")
    func https() throws {
        let listener = try listener(try Self.translate(), "127.0.0.10_443")
        #expect(listener.listenerFilters.map(\.name) == ["envoy.filters.listener.tls_inspector"])
        #expect(listener.filterChains.map(\.filterChainMatch.serverNames) == [["secure.example.com"], []])
        let simple = try Envoy_Extensions_TransportSockets_Tls_V3_DownstreamTlsContext(unpackingAny: listener.filterChains[0].transportSocket.typedConfig)
        #expect(simple.commonTlsContext.tlsCertificates.first?.certificateChain.filename == "/c/s.pem")
        #expect(simple.commonTlsContext.tlsParams.tlsMinimumProtocolVersion == .tlsv13)
        #expect(!simple.requireClientCertificate.value)
        let mesh = try Envoy_Extensions_TransportSockets_Tls_V3_DownstreamTlsContext(unpackingAny: listener.filterChains[1].transportSocket.typedConfig)
        #expect(mesh.commonTlsContext.tlsCertificateSdsSecretConfigs.map(\.name) == ["default"])
        #expect(mesh.commonTlsContext.combinedValidationContext.validationContextSdsSecretConfig.name == "ROOTCA")
        #expect(mesh.requireClientCertificate.value)
        let hcm = try Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager(unpackingAny: listener.filterChains[0].filters[0].typedConfig)
        #expect(hcm.useRemoteAddress.value, "a gateway is the edge")
        #expect(hcm.rds.routeConfigName == "https.443.https.gw.web")
    }

    @Test("TCP: the VirtualService's tcp route; an AuthorizationPolicy selecting the gateway is enforced on it")
    func tcpAndAuthorization() throws {
        let resources = try Self.translate("""

            ---
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: ingress-deny, namespace: istio-system}
            spec:
              selector: {matchLabels: {istio: ingressgateway}}
              action: DENY
              rules: [{from: [{source: {ipBlocks: [10.0.0.0/8]}}]}]
            """)
        let tcp = try listener(resources, "127.0.0.10_9000")
        // The policy's counter, then the DENY engine, then the proxy.
        #expect(tcp.filterChains[0].filters.map(\.name) == ["envoy.filters.network.rbac", "envoy.filters.network.rbac", "envoy.filters.network.tcp_proxy"])
        let proxy = try Envoy_Extensions_Filters_Network_TcpProxy_V3_TcpProxy(unpackingAny: try #require(tcp.filterChains[0].filters.last).typedConfig)
        #expect(proxy.cluster == "outbound|9000||httpbin.web.svc.cluster.local")
        let http = try listener(resources, "127.0.0.10_80")
        let hcm = try Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager(unpackingAny: http.filterChains[0].filters[0].typedConfig)
        #expect(hcm.httpFilters.first?.name == "envoy.filters.http.rbac")
    }

    @Test("PASSTHROUGH: a filter chain per tls rule, by the SNI hosts the server admits, proxying to the rule's destinations")
    func passthrough() throws {
        let resources = try Self.translate("""

            ---
            apiVersion: networking.istio.io/v1
            kind: Gateway
            metadata: {name: pass, namespace: web}
            spec:
              selector: {istio: ingressgateway}
              servers: [{port: {number: 8443, name: tls, protocol: TLS}, hosts: ["*.pass.example.com"], tls: {mode: PASSTHROUGH}}]
            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: pass, namespace: web}
            spec:
              hosts: ["*.pass.example.com", "elsewhere.example.com"]
              gateways: [pass]
              tls:
              - match: [{sniHosts: [a.pass.example.com]}]
                route: [{destination: {host: httpbin, port: {number: 9000}}, weight: 80}, {destination: {host: httpbin, port: {number: 8000}}, weight: 20}]
              - match: [{sniHosts: [elsewhere.example.com]}]
                route: [{destination: {host: httpbin, port: {number: 9000}}}]
              - match: [{sniHosts: [b.pass.example.com], port: 9999}]
                route: [{destination: {host: httpbin, port: {number: 9000}}}]
            """)
        let listener = try listener(resources, "127.0.0.10_8443")
        #expect(listener.listenerFilters.map(\.name) == ["envoy.filters.listener.tls_inspector"])
        #expect(listener.filterChains.map(\.filterChainMatch.serverNames) == [["a.pass.example.com"]], "a host the server does not admit and a match on another port are left out")
        #expect(!listener.filterChains[0].hasTransportSocket, "the TLS passes through")
        let proxy = try Envoy_Extensions_Filters_Network_TcpProxy_V3_TcpProxy(unpackingAny: try #require(listener.filterChains[0].filters.last).typedConfig)
        #expect(proxy.weightedClusters.clusters.map(\.name) == ["outbound|9000||httpbin.web.svc.cluster.local", "outbound|8000||httpbin.web.svc.cluster.local"])
        #expect(proxy.weightedClusters.clusters.map(\.weight) == [80, 20])
        #expect(resources.resources(ofType: XDSTypeURL.route).keys.allSatisfy { !$0.contains("8443") })
    }

    @Test("one port, several Gateways: a server name goes to the first chain that claims it (Envoy refuses two); a passthrough port nothing routes is not opened; a port on two addresses gets a route configuration per address")
    func sharedPorts() throws {
        let snapshot = try snapshot(Self.mesh + """

            ---
            apiVersion: networking.istio.io/v1
            kind: Gateway
            metadata: {name: later, namespace: web}
            spec:
              selector: {istio: ingressgateway}
              servers:
              - {port: {number: 443, name: other, protocol: HTTPS}, hosts: ["secure.example.com", "new.example.com"], tls: {mode: SIMPLE, serverCertificate: /c/n.pem, privateKey: /c/n.key}}
              - {port: {number: 9443, name: idle, protocol: TLS}, hosts: ["idle.example.com"], tls: {mode: PASSTHROUGH}}
              - {port: {number: 80, name: http-other, protocol: HTTP}, bind: 127.0.0.11, hosts: ["httpbin.example.com"]}
            """)
        let workload = try #require(snapshot.registry.workload(.init(namespace: "istio-system", name: "ingress")))
        let configuration = GatewayTranslator.translate(snapshot, workload: workload)
        let https = try listener(configuration.resources, "127.0.0.10_443")
        #expect(https.filterChains.map(\.filterChainMatch.serverNames) == [["secure.example.com"], [], ["new.example.com"]])
        #expect(configuration.resources.resources(ofType: XDSTypeURL.listener)["127.0.0.10_9443"] == nil)
        // Port 80 on two addresses: a route configuration each, Istio's names (the bind added when given).
        #expect(configuration.resources.sortedResources(ofType: XDSTypeURL.route).map(\.name).filter { $0 == "http.80" || $0.hasPrefix("http.80.") } == ["http.80", "http.80.127.0.0.11"])
        let other = try listener(configuration.resources, "127.0.0.11_80")
        let hcm = try Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager(unpackingAny: other.filterChains[0].filters[0].typedConfig)
        #expect(hcm.rds.routeConfigName == "http.80.127.0.0.11")
        #expect(configuration.warnings.contains { $0.contains("port 9443") && $0.contains("not opened") }, "\(configuration.warnings)")
    }

    @Test("ISTIO_MUTUAL admits the clients subjectAltNames names (else the whole trust domain), with SPKI pins; TCP servers take only VirtualServices whose hosts they admit; httpsRedirect covers unrouted hosts")
    func reviewFixes() throws {
        let resources = try Self.translate("""

            ---
            apiVersion: networking.istio.io/v1
            kind: Gateway
            metadata: {name: narrow, namespace: web}
            spec:
              selector: {istio: ingressgateway}
              servers:
              - port: {number: 8444, name: pinned, protocol: HTTPS}
                hosts: ["*"]
                tls: {mode: ISTIO_MUTUAL, subjectAltNames: ["spiffe://cluster.local/ns/web/sa/client"], verifyCertificateSpki: ["abc="]}
              - {port: {number: 9001, name: tcp, protocol: TCP}, hosts: ["other/*"]}
              - {port: {number: 8082, name: redirect, protocol: HTTP}, hosts: ["unrouted.example.com"], tls: {httpsRedirect: true}}
            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: tcp-narrow, namespace: web}
            spec:
              hosts: ["*"]
              gateways: [narrow]
              tcp: [{route: [{destination: {host: httpbin, port: {number: 9000}}}]}]
            """)
        let pinned = try listener(resources, "127.0.0.10_8444")
        let context = try Envoy_Extensions_TransportSockets_Tls_V3_DownstreamTlsContext(unpackingAny: pinned.filterChains[0].transportSocket.typedConfig)
        let validation = context.commonTlsContext.combinedValidationContext.defaultValidationContext
        #expect(validation.matchTypedSubjectAltNames.map(\.matcher.exact) == ["spiffe://cluster.local/ns/web/sa/client"])
        #expect(validation.verifyCertificateSpki == ["abc="])
        // The TCP server admits VirtualServices of namespace other only: this one (web) does not get it.
        let tcp = try listener(resources, "127.0.0.10_9001")
        let proxy = try Envoy_Extensions_Filters_Network_TcpProxy_V3_TcpProxy(unpackingAny: try #require(tcp.filterChains[0].filters.last).typedConfig)
        #expect(proxy.cluster == "BlackHoleCluster")
        #expect(resources.resources(ofType: XDSTypeURL.cluster)["BlackHoleCluster"] != nil)
        // No VirtualService routes unrouted.example.com; the redirect still applies.
        #expect(try routes(resources, "http.8082").host("unrouted.example.com:8082")?.requireTls == .all)
    }

    @Test("sidecars are untouched by gateway-only VirtualServices; a workload no Gateway selects is a sidecar; a router nothing selects serves no listeners")
    func sidecarsAndStrays() throws {
        let snapshot = try snapshot(Self.mesh)
        let client = try #require(snapshot.registry.workload(.init(namespace: "web", name: "client")))
        #expect(ProxyKind.of(client, in: snapshot) == .sidecar)
        let sidecar = try SidecarTranslator.translate(snapshot, workload: client).resources
        let routes = try #require(sidecar.resources(ofType: XDSTypeURL.route)["8000"]?.unpack(Envoy_Config_Route_V3_RouteConfiguration.self))
        #expect(routes.virtualHosts.first?.routes.map(\.name) == ["default"], "the VirtualService is bound to the gateway only")
        let stray = GatewayTranslator.translate(snapshot, workload: client)
        #expect(stray.resources.sortedResources(ofType: XDSTypeURL.listener).isEmpty)
        #expect(stray.warnings.contains { $0.contains("no Gateway selects") })
    }

    static func credentialSecret(_ name: String, namespace: String, keys: [String: String]) -> String {
        """

        ---
        apiVersion: v1
        kind: Secret
        metadata: {name: \(name), namespace: \(namespace)}
        type: \(keys["tls.crt"] == nil ? "Opaque" : "kubernetes.io/tls")
        stringData: {\(keys.keys.sorted().map { "\($0): \(JSONString.quote(keys[$0]!))" }.joined(separator: ", "))}

        """
    }

    @Test("credentials over SDS: kubernetes://<name> with the Secret of the gateway's own namespace inline, kubernetes://<name>-cacert for MUTUAL; a Secret elsewhere is never used")
    func credentials() throws {
        let certificate = "-----BEGIN CERTIFICATE-----\nSERVERCERT\n-----END CERTIFICATE-----\n"
        // PEM-shaped, not a key (the label is put together so no key block is committed).
        let label = ["PRIVATE", "KEY"].joined(separator: " ")
        let key = "-----BEGIN \(label)-----\nSERVERKEY\n-----END \(label)-----\n"
        let ca = "-----BEGIN CERTIFICATE-----\nCLIENTCA\n-----END CERTIFICATE-----\n"
        let gateway = """

            ---
            apiVersion: networking.istio.io/v1
            kind: Gateway
            metadata: {name: creds, namespace: web}
            spec:
              selector: {istio: ingressgateway}
              servers:
              - {port: {number: 8443, name: simple, protocol: HTTPS}, hosts: ["a.example.com"], tls: {mode: SIMPLE, credentialName: cred}}
              - {port: {number: 8443, name: mutual, protocol: HTTPS}, hosts: ["b.example.com"], tls: {mode: MUTUAL, credentialName: cred, subjectAltNames: [client.example.com]}}

            """
        let resources = try Self.translate(gateway
            + Self.credentialSecret("cred", namespace: "istio-system", keys: ["tls.crt": certificate, "tls.key": key])
            + Self.credentialSecret("cred-cacert", namespace: "istio-system", keys: ["ca.crt": ca])
            + Self.credentialSecret("cred", namespace: "web", keys: ["tls.crt": certificate.replacingOccurrences(of: "SERVERCERT", with: "WRONGNAMESPACE"), "tls.key": key]))
        let listener = try listener(resources, "127.0.0.10_8443")
        #expect(listener.filterChains.map(\.filterChainMatch.serverNames) == [["a.example.com"], ["b.example.com"]])
        let simple = try Envoy_Extensions_TransportSockets_Tls_V3_DownstreamTlsContext(unpackingAny: listener.filterChains[0].transportSocket.typedConfig)
        #expect(simple.commonTlsContext.tlsCertificateSdsSecretConfigs.map(\.name) == ["kubernetes://cred"])
        #expect(simple.commonTlsContext.tlsCertificates.isEmpty && !simple.requireClientCertificate.value)
        let mutual = try Envoy_Extensions_TransportSockets_Tls_V3_DownstreamTlsContext(unpackingAny: listener.filterChains[1].transportSocket.typedConfig)
        #expect(mutual.requireClientCertificate.value)
        let combined = mutual.commonTlsContext.combinedValidationContext
        #expect(combined.validationContextSdsSecretConfig.name == "kubernetes://cred-cacert")
        #expect(combined.defaultValidationContext.matchTypedSubjectAltNames.map(\.matcher.exact) == ["client.example.com"])
        let secrets = resources.resources(ofType: XDSTypeURL.secret)
        #expect(secrets.keys.sorted() == ["kubernetes://cred", "kubernetes://cred-cacert"])
        let served = try #require(secrets["kubernetes://cred"]?.unpack(Envoy_Extensions_TransportSockets_Tls_V3_Secret.self))
        #expect(String(decoding: served.tlsCertificate.certificateChain.inlineBytes, as: UTF8.self) == certificate, "the gateway's namespace, not the Gateway's")
        #expect(String(decoding: served.tlsCertificate.privateKey.inlineBytes, as: UTF8.self) == key)
        let trusted = try #require(secrets["kubernetes://cred-cacert"]?.unpack(Envoy_Extensions_TransportSockets_Tls_V3_Secret.self))
        #expect(String(decoding: trusted.validationContext.trustedCa.inlineBytes, as: UTF8.self) == ca)

        // Only the Gateway's namespace holds the Secret: the server is not served, nothing leaks.
        let snapshot = try snapshot(Self.mesh + gateway + Self.credentialSecret("cred", namespace: "web", keys: ["tls.crt": certificate, "tls.key": key]))
        let workload = try #require(snapshot.registry.workload(.init(namespace: "istio-system", name: "ingress")))
        let stray = GatewayTranslator.translate(snapshot, workload: workload)
        #expect(stray.resources.resources(ofType: XDSTypeURL.secret).isEmpty)
        #expect(stray.resources.resources(ofType: XDSTypeURL.listener)["127.0.0.10_8443"] == nil)
        #expect(stray.warnings.contains { $0.contains("no Secret istio-system/cred") })
        // Sidecars never get credentials.
        let client = try #require(snapshot.registry.workload(.init(namespace: "web", name: "client")))
        #expect(try SidecarTranslator.translate(snapshot, workload: client).resources.resources(ofType: XDSTypeURL.secret).isEmpty)
    }
}
