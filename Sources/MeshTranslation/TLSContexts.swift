internal import EnvoyAPI
internal import MeshModel
internal import SwiftProtobuf

typealias TransportSocket = Envoy_Config_Core_V3_TransportSocket
typealias CommonTLS = Envoy_Extensions_TransportSockets_Tls_V3_CommonTlsContext

/// The TLS pieces of Istio's mTLS: SDS secrets `default` (the workload's certificate and key) and
/// `ROOTCA` (the trust bundle), both over ADS.
enum TLSContexts {
    /// The SDS secret with the workload's certificate chain and key.
    static let certificateSecret = "default"
    /// The SDS secret with the trust bundle.
    static let rootSecret = "ROOTCA"

    static func sdsSecret(_ name: String) -> Envoy_Extensions_TransportSockets_Tls_V3_SdsSecretConfig {
        var config = Envoy_Extensions_TransportSockets_Tls_V3_SdsSecretConfig()
        config.name = name
        config.sdsConfig = Envoy.adsConfigSource
        return config
    }

    static func uriMatcher(exact: String? = nil, prefix: String? = nil) -> Envoy_Extensions_TransportSockets_Tls_V3_SubjectAltNameMatcher {
        var matcher = Envoy_Extensions_TransportSockets_Tls_V3_SubjectAltNameMatcher()
        matcher.sanType = .uri
        var string = Envoy_Type_Matcher_V3_StringMatcher()
        if let exact { string.exact = exact } else if let prefix { string.prefix = prefix }
        matcher.matcher = string
        return matcher
    }

    /// TLS 1.2 at least; in FIPS mode also at most 1.3, ``FIPSPolicy``'s TLS 1.2 suites and
    /// curves, and BoringSSL's FIPS 202205 compliance policy (which also limits TLS 1.3 to AES-GCM
    /// and the signature algorithms to approved ones).
    static func parameters(fips: Bool) -> Envoy_Extensions_TransportSockets_Tls_V3_TlsParameters {
        var params = Envoy_Extensions_TransportSockets_Tls_V3_TlsParameters()
        params.tlsMinimumProtocolVersion = .tlsv12
        if fips {
            params.tlsMaximumProtocolVersion = .tlsv13
            params.cipherSuites = FIPSPolicy.tls12CipherSuites
            params.ecdhCurves = FIPSPolicy.ecdhCurves
            params.compliancePolicies = [.fips202205]
        }
        return params
    }

    /// Certificate and trust from SDS, the peer's SAN checked against `sans`.
    static func istioCommon(sans: [Envoy_Extensions_TransportSockets_Tls_V3_SubjectAltNameMatcher], alpn: [String], fips: Bool) -> CommonTLS {
        var common = CommonTLS()
        common.tlsParams = parameters(fips: fips)
        common.alpnProtocols = alpn
        common.tlsCertificateSdsSecretConfigs = [sdsSecret(certificateSecret)]
        var combined = CommonTLS.CombinedCertificateValidationContext()
        var validation = Envoy_Extensions_TransportSockets_Tls_V3_CertificateValidationContext()
        validation.matchTypedSubjectAltNames = sans
        combined.defaultValidationContext = validation
        combined.validationContextSdsSecretConfig = sdsSecret(rootSecret)
        common.combinedValidationContext = combined
        return common
    }

    /// The ALPN a sidecar offers over mTLS toward a port, as Istio's: `istio` (in-mesh), with `h2`
    /// for HTTP/2 and gRPC ports (a proxyless gRPC server requires it); none toward a port whose
    /// protocol is detected, so that HTTP connection pools offer `h2`/`http/1.1` and TCP proxies
    /// nothing (``ProtocolDetection``).
    static func meshALPN(_ serviceProtocol: ServiceProtocol) -> [String] {
        if serviceProtocol.isDetected { return [] }
        return serviceProtocol.usesHTTP2 ? ["istio", "h2"] : ["istio"]
    }

    /// The server side of mTLS on an inbound port: a client certificate from the mesh's trust
    /// domain is required.
    static func downstream(trustDomain: String, http: Bool, fips: Bool) -> TransportSocket {
        var context = Envoy_Extensions_TransportSockets_Tls_V3_DownstreamTlsContext()
        context.commonTlsContext = istioCommon(sans: [uriMatcher(prefix: "spiffe://\(trustDomain)/")], alpn: http ? ["h2", "http/1.1"] : [], fips: fips)
        context.requireClientCertificate = Google_Protobuf_BoolValue(true)
        return transportSocket(context)
    }

    /// The client side of Istio mTLS toward a service: SNI `outbound_.<port>_.<subset>_.<host>`,
    /// the server's SPIFFE IDs checked.
    /// `alpn`: what the client offers (``meshALPN(_:)``).
    static func istioUpstream(sni: String, sans: [String], fips: Bool, alpn: [String] = ["istio"]) -> TransportSocket {
        var context = Envoy_Extensions_TransportSockets_Tls_V3_UpstreamTlsContext()
        context.sni = sni
        context.commonTlsContext = istioCommon(sans: sans.map { uriMatcher(exact: $0) }, alpn: alpn, fips: fips)
        return transportSocket(context)
    }

    /// TLS that a DestinationRule configures with files (SIMPLE, or MUTUAL with a client certificate).
    static func fileUpstream(_ settings: ClientTLSSettings, sni: String?, fips: Bool) -> TransportSocket {
        var context = Envoy_Extensions_TransportSockets_Tls_V3_UpstreamTlsContext()
        if let sni, !sni.isEmpty { context.sni = sni }
        var common = CommonTLS()
        if fips { common.tlsParams = parameters(fips: true) }
        if settings.mode == .MUTUAL, let certificate = settings.clientCertificate, let key = settings.privateKey {
            var pair = Envoy_Extensions_TransportSockets_Tls_V3_TlsCertificate()
            var chain = Envoy_Config_Core_V3_DataSource()
            chain.filename = certificate
            var privateKey = Envoy_Config_Core_V3_DataSource()
            privateKey.filename = key
            pair.certificateChain = chain
            pair.privateKey = privateKey
            common.tlsCertificates = [pair]
        }
        if settings.insecureSkipVerify != true, let authority = settings.caCertificates, !authority.isEmpty {
            var validation = Envoy_Extensions_TransportSockets_Tls_V3_CertificateValidationContext()
            var trusted = Envoy_Config_Core_V3_DataSource()
            trusted.filename = authority
            validation.trustedCa = trusted
            validation.matchTypedSubjectAltNames = sanMatchers(settings.subjectAltNames ?? [])
            common.validationContext = validation
        }
        context.commonTlsContext = common
        return transportSocket(context)
    }

    /// Exact matchers for names a DestinationRule or Gateway lists: SPIFFE IDs as URI SANs, the
    /// rest as DNS SANs.
    static func sanMatchers(_ names: [String]) -> [Envoy_Extensions_TransportSockets_Tls_V3_SubjectAltNameMatcher] {
        names.map { san in
            var matcher = Envoy_Extensions_TransportSockets_Tls_V3_SubjectAltNameMatcher()
            matcher.sanType = san.hasPrefix("spiffe://") ? .uri : .dns
            var string = Envoy_Type_Matcher_V3_StringMatcher()
            string.exact = san
            matcher.matcher = string
            return matcher
        }
    }

    static var rawBuffer: TransportSocket {
        var socket = TransportSocket()
        socket.name = "envoy.transport_sockets.raw_buffer"
        socket.typedConfig = Google_Protobuf_Any(deterministic: Envoy_Extensions_TransportSockets_RawBuffer_V3_RawBuffer())
        return socket
    }

    static func transportSocket(_ context: some SwiftProtobuf.Message) -> TransportSocket {
        var socket = TransportSocket()
        socket.name = "envoy.transport_sockets.tls"
        socket.typedConfig = Google_Protobuf_Any(deterministic: context)
        return socket
    }

    static var tlsInspector: ListenerFilter {
        var filter = ListenerFilter()
        filter.name = "envoy.filters.listener.tls_inspector"
        filter.typedConfig = Google_Protobuf_Any(deterministic: Envoy_Extensions_Filters_Listener_TlsInspector_V3_TlsInspector())
        return filter
    }

    /// The endpoint metadata that selects the mTLS transport socket of an auto-mTLS cluster.
    static var istioEndpointMetadata: Envoy_Config_Core_V3_Metadata {
        var metadata = Envoy_Config_Core_V3_Metadata()
        metadata.filterMetadata["envoy.transport_socket_match"] = tlsModeStruct
        return metadata
    }

    static var tlsModeStruct: Google_Protobuf_Struct {
        Google_Protobuf_Struct(fields: ["tlsMode": Google_Protobuf_Value(stringValue: "istio")])
    }

    /// Auto mTLS: mTLS toward endpoints marked as having a sidecar, plaintext toward the others.
    static func autoMTLSMatches(sni: String, sans: [String], fips: Bool, alpn: [String] = ["istio"]) -> [Envoy_Config_Cluster_V3_Cluster.TransportSocketMatch] {
        var istio = Envoy_Config_Cluster_V3_Cluster.TransportSocketMatch()
        istio.name = "tlsMode-istio"
        istio.match = tlsModeStruct
        istio.transportSocket = istioUpstream(sni: sni, sans: sans, fips: fips, alpn: alpn)
        var plain = Envoy_Config_Cluster_V3_Cluster.TransportSocketMatch()
        plain.name = "tlsMode-disabled"
        plain.match = Google_Protobuf_Struct()
        plain.transportSocket = rawBuffer
        return [istio, plain]
    }
}
