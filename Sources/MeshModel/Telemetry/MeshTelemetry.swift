/// The telemetry part of Istio's MeshConfig, read from `mesh.yaml` in the config directory:
/// `enableTracing`, `defaultConfig.tracing.sampling`, `extensionProviders`, `defaultProviders`,
/// `defaultConfig.gatewayTopology.numTrustedProxies`, `outboundTrafficPolicy` and
/// `protocolDetectionTimeout` (the fields here that are not telemetry), and the access-log settings `accessLogFile`, `accessLogEncoding`,
/// `accessLogFormat`.
public struct MeshTelemetry: Hashable, Sendable {
    /// How access log lines are written.
    public enum AccessLogEncoding: String, Hashable, Sendable {
        case TEXT
        case JSON
    }

    /// The MeshConfig fields meshd reads.
    public var config: MeshConfig
    /// Where the built-in `envoy` access-log provider writes (Istio: empty = off unless a Telemetry
    /// turns it on, then `/dev/stdout`). `{namespace}` and `{workload}` are replaced per sidecar.
    public var accessLogFile: String?
    /// TEXT (Istio's default) or JSON.
    public var accessLogEncoding: AccessLogEncoding
    /// A custom format (text, or for JSON a JSON object of Envoy format strings).
    public var accessLogFormat: String?
    /// What sidecars do with a host outside the registry unless their Sidecar says otherwise
    /// (`outboundTrafficPolicy.mode`; Istio's default ALLOW_ANY).
    public var outboundTrafficMode: OutboundTrafficPolicy.Mode = .ALLOW_ANY
    /// How long a sidecar waits for a connection's first bytes on a port whose protocol is
    /// detected before it takes the connection as TCP (`protocolDetectionTimeout`; zero waits for
    /// ever, as Istio's own default does). meshd's default is 5 s (Istio's before 1.12), so that a
    /// server-first protocol on an undeclared port still works, late; see docs/PROTOCOLS.md.
    public var protocolDetectionTimeout: IstioDuration = Self.defaultProtocolDetectionTimeout

    /// meshd's default ``protocolDetectionTimeout``.
    public static let defaultProtocolDetectionTimeout = IstioDuration.seconds(5)

    /// Istio's defaults: tracing on at 1 % with no provider, no access log.
    public static let `default` = MeshTelemetry(config: MeshConfig(), accessLogFile: nil, accessLogEncoding: .TEXT, accessLogFormat: nil)

    /// A value from its parts.
    public init(config: MeshConfig, accessLogFile: String?, accessLogEncoding: AccessLogEncoding, accessLogFormat: String?) {
        self.config = config
        self.accessLogFile = accessLogFile
        self.accessLogEncoding = accessLogEncoding
        self.accessLogFormat = accessLogFormat
    }

    /// The provider types meshd translates.
    public static let supportedProviderTypes = ["zipkin", "opentelemetry", "envoyFileAccessLog", "prometheus", "envoyExtAuthzHttp", "envoyExtAuthzGrpc"]

    /// Decodes `mesh.yaml` strictly; unknown keys and provider types meshd cannot translate are
    /// errors naming the field.
    public init(document: ConfigValue) throws(SchemaError) {
        let root = FieldPath()
        guard case .object(var object) = document else {
            throw SchemaError(path: root, reason: "mesh.yaml must be a mapping of MeshConfig fields")
        }
        var encoding = AccessLogEncoding.TEXT
        if let value = object["accessLogEncoding"] {
            guard case .string(let text) = value, let parsed = AccessLogEncoding(rawValue: text) else {
                throw SchemaError(path: root.appending("accessLogEncoding"), reason: "must be TEXT or JSON")
            }
            encoding = parsed
        }
        func string(_ key: String) throws(SchemaError) -> String? {
            guard let value = object[key] else { return nil }
            guard case .string(let text) = value else { throw SchemaError(path: root.appending(key), reason: "must be a string") }
            return text
        }
        let file = try string("accessLogFile")
        let format = try string("accessLogFormat")
        var outbound = OutboundTrafficPolicy.Mode.ALLOW_ANY
        if let value = object["outboundTrafficPolicy"] {
            let path = root.appending("outboundTrafficPolicy")
            guard case .object(let policy) = value, policy.keys.allSatisfy({ $0 == "mode" }) else {
                throw SchemaError(path: path, reason: "must be {mode: ALLOW_ANY} or {mode: REGISTRY_ONLY}")
            }
            // As in Istio's MeshConfig: a policy without a mode is REGISTRY_ONLY (the enum's zero).
            outbound = .REGISTRY_ONLY
            if let mode = policy["mode"] {
                guard case .string(let text) = mode, let parsed = OutboundTrafficPolicy.Mode(rawValue: text) else {
                    throw SchemaError(path: path.appending("mode"), reason: "must be ALLOW_ANY or REGISTRY_ONLY")
                }
                outbound = parsed
            }
        }
        var detection = Self.defaultProtocolDetectionTimeout
        if let value = object["protocolDetectionTimeout"] {
            let path = root.appending("protocolDetectionTimeout")
            detection = try IstioDuration(config: value, at: path)
            guard detection.nanoseconds == 0 || detection.nanoseconds >= 1_000_000 else {
                throw SchemaError(path: path, reason: "must be at least 1ms, or 0s to wait for the first bytes for ever")
            }
        }
        for key in ["accessLogEncoding", "accessLogFile", "accessLogFormat", "outboundTrafficPolicy", "protocolDetectionTimeout"] { object[key] = nil }
        let config = try MeshConfig(config: .object(object), at: root)
        var seen: Set<String> = []
        for (index, provider) in (config.extensionProviders ?? []).enumerated() {
            let path = root.appending("extensionProviders").appending(index: index)
            guard let name = provider.name, !name.isEmpty else { throw SchemaError(path: path.appending("name"), reason: "every provider needs a name") }
            guard seen.insert(name).inserted else { throw SchemaError(path: path.appending("name"), reason: "provider \(name) is defined twice") }
            guard let type = Self.providerType(provider) else {
                throw SchemaError(path: path, reason: "provider \(name) has no type")
            }
            guard Self.supportedProviderTypes.contains(type) else {
                throw SchemaError(path: path.appending(type), reason: "meshd does not support \(type) providers yet (it supports \(Self.supportedProviderTypes.joined(separator: ", ")))")
            }
            if let zipkin = provider.zipkin, (zipkin.service ?? "").isEmpty || (zipkin.port ?? 0) == 0 {
                throw SchemaError(path: path.appending("zipkin"), reason: "service and port are required")
            }
            if let otel = provider.opentelemetry, (otel.service ?? "").isEmpty || (otel.port ?? 0) == 0 {
                throw SchemaError(path: path.appending("opentelemetry"), reason: "service and port are required")
            }
            if let problem = ExternalAuthorization(provider)?.problem {
                let field = problem.field.split(separator: ".").reduce(path.appending(type)) { $0.appending(String($1)) }
                throw SchemaError(path: field, reason: problem.reason)
            }
        }
        if let sampling = config.defaultConfig?.tracing?.sampling, !(0...100).contains(sampling) {
            throw SchemaError(path: root.appending("defaultConfig").appending("tracing").appending("sampling"), reason: "must be between 0 and 100")
        }
        self.init(config: config, accessLogFile: file, accessLogEncoding: encoding, accessLogFormat: format)
        outboundTrafficMode = outbound
        protocolDetectionTimeout = detection
    }

    /// The type key set on a provider (`zipkin`, `opentelemetry`, ...).
    public static func providerType(_ provider: MeshConfig.ExtensionProvider) -> String? {
        guard case .object(let fields) = provider.configValue else { return nil }
        return fields.keys.first { $0 != "name" }
    }

    /// The provider called `name`; `envoy` is Istio's built-in file access-log provider and
    /// `prometheus` its built-in metrics provider.
    public func provider(named name: String) -> MeshConfig.ExtensionProvider? {
        if let found = config.extensionProviders?.first(where: { $0.name == name }) { return found }
        switch name {
        case "envoy":
            var provider = MeshConfig.ExtensionProvider()
            provider.name = "envoy"
            provider.envoyFileAccessLog = .init(path: accessLogFile.flatMap { $0.isEmpty ? nil : $0 } ?? "/dev/stdout")
            return provider
        case "prometheus":
            var provider = MeshConfig.ExtensionProvider()
            provider.name = "prometheus"
            provider.prometheus = .init()
            return provider
        default:
            return nil
        }
    }

    /// The external authorization provider called `name` (`envoyExtAuthzHttp` or
    /// `envoyExtAuthzGrpc`), if mesh.yaml has one.
    public func authorizationProvider(named name: String) -> ExternalAuthorization? {
        config.extensionProviders?.first(where: { $0.name == name }).flatMap(ExternalAuthorization.init)
    }

    /// Whether tracing is on at all (`enableTracing`, Istio's default true).
    public var tracingEnabled: Bool { config.enableTracing ?? true }
    /// How many proxies in front of a sidecar are trusted to have set `X-Forwarded-For`
    /// (`defaultConfig.gatewayTopology.numTrustedProxies`, default 0: the client address is the
    /// connection's peer and a forged header changes nothing).
    public var numTrustedProxies: UInt32 { config.defaultConfig?.gatewayTopology?.numTrustedProxies ?? 0 }
    /// The sampling percentage when no Telemetry sets one (Istio: 1 %).
    public var defaultSampling: Double { config.defaultConfig?.tracing?.sampling ?? 1 }
}
