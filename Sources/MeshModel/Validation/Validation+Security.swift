extension Checker {
    mutating func check(_ policy: PeerAuthentication) {
        labels(policy.selector?.matchLabels, at: root.appending("selector").appending("matchLabels"))
        let portLevel = policy.portLevelMtls ?? [:]
        if !portLevel.isEmpty && (policy.selector?.matchLabels ?? [:]).isEmpty {
            fail(root.appending("portLevelMtls"), "portLevelMtls requires a workload selector")
        }
        for key in portLevel.keys.sorted() {
            // Written as the port is looked up: "080" would parse but never match port 80.
            guard let number = UInt32(key), number > 0, number <= 65535, String(number) == key else {
                fail(root.appending("portLevelMtls").appending(key), "\"\(key)\" is not a port number (1-65535, no leading zeros)")
                continue
            }
        }
    }

    /// The `when` keys meshd enforces.
    static let authorizationKeys: Set<String> = [
        "source.ip", "remote.ip", "source.namespace", "source.principal", "source.serviceAccount",
        "destination.ip", "destination.port", "connection.sni",
    ]

    /// The `request.auth` keys other than claims: what a RequestAuthentication's JWT says.
    static let requestAuthKeys: Set<String> = ["request.auth.principal", "request.auth.audiences", "request.auth.presenter"]

    /// A RequestAuthentication: each rule names an issuer and where its keys come from. What meshd
    /// cannot translate is refused with its field.
    mutating func check(_ policy: RequestAuthentication) {
        labels(policy.selector?.matchLabels, at: root.appending("selector").appending("matchLabels"))
        var issuers: Set<String> = []
        for (index, rule) in (policy.jwtRules ?? []).enumerated() {
            let path = root.appending("jwtRules").appending(index: index)
            let issuer = rule.issuer ?? ""
            if issuer.isEmpty {
                fail(path.appending("issuer"), "every JWT rule names its issuer (the token's iss claim)")
            } else if !issuers.insert(issuer).inserted {
                fail(path.appending("issuer"), "issuer \"\(issuer)\" has another rule in this RequestAuthentication; write one rule per issuer")
            }
            switch (rule.jwksUri, rule.jwks) {
            case (nil, nil):
                fail(path.appending("jwksUri"), "give jwksUri (meshd fetches it) or jwks (inline); discovering keys from the issuer's OpenID configuration is not supported by meshd yet")
            case (.some, .some):
                fail(path.appending("jwks"), "give jwksUri or jwks, not both")
            case (let uri?, nil):
                if JWKSLocation(uri) == nil {
                    fail(path.appending("jwksUri"), "\"\(uri)\" is not an http(s) URL with a host")
                }
            case (nil, let keys?):
                if let problem = JSONWebKeySet.problem(keys) {
                    fail(path.appending("jwks"), problem)
                }
            }
            for (position, header) in (rule.fromHeaders ?? []).enumerated() where !Self.isHeaderName(header.name) {
                fail(path.appending("fromHeaders").appending(index: position).appending("name"), "\"\(header.name)\" is not an HTTP header name")
            }
            for (position, name) in (rule.fromParams ?? []).enumerated() where name.isEmpty {
                fail(path.appending("fromParams").appending(index: position), "must not be empty")
            }
            for (position, name) in (rule.fromCookies ?? []).enumerated() where name.isEmpty {
                fail(path.appending("fromCookies").appending(index: position), "must not be empty")
            }
            if let header = rule.outputPayloadToHeader, !Self.isHeaderName(header) {
                fail(path.appending("outputPayloadToHeader"), "\"\(header)\" is not an HTTP header name")
            }
            for (position, output) in (rule.outputClaimToHeaders ?? []).enumerated() {
                let outputPath = path.appending("outputClaimToHeaders").appending(index: position)
                if !Self.isHeaderName(output.header) { fail(outputPath.appending("header"), "\"\(output.header)\" is not an HTTP header name") }
                if output.claim.isEmpty { fail(outputPath.appending("claim"), "must not be empty") }
            }
            if let timeout = rule.timeout, timeout.nanoseconds <= 0 {
                fail(path.appending("timeout"), "must be positive")
            }
        }
    }

    /// A header name a proxy can set: a token of letters, digits and `!#$%&'*+-.^_`|~`, not a
    /// pseudo-header.
    static func isHeaderName(_ name: String) -> Bool {
        !name.isEmpty && name.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "!#$%&'*+-.^_`|~".unicodeScalars.contains($0)) }
    }

    /// Unsupported parts of an AuthorizationPolicy are refused, never ignored: ignoring a DENY
    /// rule would open a door.
    mutating func check(_ policy: AuthorizationPolicy) {
        labels(policy.selector?.matchLabels, at: root.appending("selector").appending("matchLabels"))
        if policy.action == .CUSTOM {
            if (policy.provider?.name ?? "").isEmpty {
                fail(root.appending("provider").appending("name"), "a CUSTOM policy names the mesh.yaml extensionProviders entry that decides (envoyExtAuthzHttp or envoyExtAuthzGrpc)")
            }
        } else if policy.provider != nil {
            fail(root.appending("provider"), "a provider is for action CUSTOM only")
        }
        // CUSTOM is decided before the JWT check (Istio's order): the token is not known yet.
        let custom = policy.action == .CUSTOM
        let beforeJWT = "CUSTOM policies are evaluated before RequestAuthentication's JWT check (as in Istio), so request principals and request.auth.* are not known yet"
        for (index, rule) in (policy.rules ?? []).enumerated() {
            let path = root.appending("rules").appending(index: index)
            for (position, from) in (rule.from ?? []).enumerated() {
                let sourcePath = path.appending("from").appending(index: position).appending("source")
                guard let source = from.source else { continue }
                for (field, values) in [("requestPrincipals", source.requestPrincipals), ("notRequestPrincipals", source.notRequestPrincipals)]
                where custom && !(values ?? []).isEmpty {
                    fail(sourcePath.appending(field), beforeJWT)
                }
                for (field, values) in [("ipBlocks", source.ipBlocks), ("notIpBlocks", source.notIpBlocks), ("remoteIpBlocks", source.remoteIpBlocks), ("notRemoteIpBlocks", source.notRemoteIpBlocks)] {
                    for (item, value) in (values ?? []).enumerated() where CIDRBlock(value) == nil {
                        fail(sourcePath.appending(field).appending(index: item), "\"\(value)\" is not an IP address or CIDR block")
                    }
                }
            }
            for (position, to) in (rule.to ?? []).enumerated() {
                let operationPath = path.appending("to").appending(index: position).appending("operation")
                for (field, values) in [("ports", to.operation?.ports), ("notPorts", to.operation?.notPorts)] {
                    for (item, value) in (values ?? []).enumerated() where UInt32(value).map({ $0 == 0 || $0 > 65535 }) ?? true {
                        fail(operationPath.appending(field).appending(index: item), "\"\(value)\" is not a port number")
                    }
                }
            }
            for (position, condition) in (rule.when ?? []).enumerated() {
                let conditionPath = path.appending("when").appending(index: position)
                let key = condition.key
                let isHeader = key.hasPrefix("request.headers[") && key.hasSuffix("]") && key.count > "request.headers[]".count
                if custom && key.hasPrefix("request.auth.") {
                    fail(conditionPath.appending("key"), beforeJWT)
                }
                if key.isEmpty {
                    fail(conditionPath.appending("key"), "condition key must not be empty")
                } else if key.hasPrefix("request.auth.claims") {
                    if JWTClaims.path(ofKey: key) == nil {
                        fail(conditionPath.appending("key"), "\"\(key)\" is not a claim: write request.auth.claims[NAME], or request.auth.claims[OUTER][INNER] for a nested claim")
                    }
                } else if !isHeader && !Self.authorizationKeys.contains(key) && !Self.requestAuthKeys.contains(key) {
                    fail(conditionPath.appending("key"), "unsupported condition key \"\(key)\"; meshd supports \((Self.authorizationKeys.sorted() + Self.requestAuthKeys.sorted() + ["request.auth.claims[NAME]", "request.headers[NAME]"]).joined(separator: ", "))")
                }
                if (condition.values ?? []).isEmpty && (condition.notValues ?? []).isEmpty {
                    fail(conditionPath, "a condition needs values or notValues")
                }
                if key == "source.ip" || key == "remote.ip" || key == "destination.ip" {
                    for (item, value) in ((condition.values ?? []) + (condition.notValues ?? [])).enumerated() where CIDRBlock(value) == nil {
                        fail(conditionPath.appending("values").appending(index: item), "\"\(value)\" is not an IP address or CIDR block")
                    }
                }
                if key == "destination.port" {
                    for (item, value) in ((condition.values ?? []) + (condition.notValues ?? [])).enumerated() where UInt32(value) == nil {
                        fail(conditionPath.appending("values").appending(index: item), "\"\(value)\" is not a port number")
                    }
                }
            }
        }
    }

    /// Telemetry: what meshd translates is checked; what it cannot translate is refused with the
    /// field, never ignored.
    mutating func check(_ telemetry: Telemetry) {
        labels(telemetry.selector?.matchLabels, at: root.appending("selector").appending("matchLabels"))
        for (index, tracing) in (telemetry.tracing ?? []).enumerated() {
            let path = root.appending("tracing").appending(index: index)
            percent(tracing.randomSamplingPercentage, at: path.appending("randomSamplingPercentage"))
            if (tracing.providers ?? []).count > 1 { fail(path.appending("providers"), "one tracing provider per entry, as in Istio") }
            // A BoolValue: false is a setting too (Envoy's default is true), so any value is refused.
            if tracing.useRequestIdForTraceSampling != nil { fail(path.appending("useRequestIdForTraceSampling"), "not supported by meshd yet") }
            if tracing.enableIstioTags == true { fail(path.appending("enableIstioTags"), "Istio's own span tags need Istio's proxy; not supported by meshd") }
            if tracing.disableContextPropagation == true { fail(path.appending("disableContextPropagation"), "not supported by meshd yet") }
        }
        for (index, logging) in (telemetry.accessLogging ?? []).enumerated() {
            let path = root.appending("accessLogging").appending(index: index)
            if let expression = logging.filter?.expression, !Self.isStatusFilter(expression) {
                fail(path.appending("filter").appending("expression"), "meshd translates filters of the form `response.code >= 400` (>=, >, <=, <, ==, !=); \"\(expression)\" is not one")
            }
        }
        for (index, metrics) in (telemetry.metrics ?? []).enumerated() {
            let path = root.appending("metrics").appending(index: index)
            for (position, provider) in (metrics.providers ?? []).enumerated() where provider.name != "prometheus" {
                fail(path.appending("providers").appending(index: position).appending("name"), "meshd's metrics are Envoy's Prometheus stats; only the prometheus provider is supported")
            }
            for (position, override) in (metrics.overrides ?? []).enumerated() {
                let overridePath = path.appending("overrides").appending(index: position)
                if let metric = override.match?.metric, metric != .ALL_METRICS {
                    fail(overridePath.appending("match").appending("metric"), "meshd turns metrics on or off per side (CLIENT, SERVER) for all metrics at once; \(metric.rawValue) alone is not supported")
                }
            }
        }
    }

    /// `response.code <op> <number>`.
    static func isStatusFilter(_ expression: String) -> Bool {
        let text = expression.filter { !$0.isWhitespace }
        guard text.hasPrefix("response.code") else { return false }
        let rest = text.dropFirst("response.code".count)
        for op in [">=", "<=", "!=", "==", ">", "<"] where rest.hasPrefix(op) {
            return UInt32(rest.dropFirst(op.count)) != nil
        }
        return false
    }
}

extension Checker {
    /// The problems of a Secret's body that need no cryptography: the keys its type requires,
    /// each role given once, and PEM where PEM belongs. (That the key matches the certificate is
    /// checked where certificates can be parsed: `ConfigStore`'s credential check.)
    static func problems(of secret: CredentialSecret) -> [SchemaError] {
        var out = Checker(root: .root)
        func path(_ key: String) -> FieldPath { FieldPath().appending("data").appending(key) }
        let roles = [
            ("certificate chain", CredentialSecret.certificateKeys, "-----BEGIN CERTIFICATE-----"),
            ("private key", CredentialSecret.privateKeyKeys, "PRIVATE KEY-----"),
            ("CA certificates", CredentialSecret.caKeys, "-----BEGIN CERTIFICATE-----"),
        ]
        for (role, keys, marker) in roles {
            let present = keys.filter { secret.data[$0] != nil }
            if present.count > 1 {
                out.fail(path(present[1]), "\(present[0]) and \(present[1]) both give the \(role); keep one")
            }
            for key in present where !String(decoding: secret.data[key]!, as: UTF8.self).contains(marker) {
                out.fail(path(key), "the \(role) must be PEM (a block containing \"\(marker)\")")
            }
        }
        if secret.type == "kubernetes.io/tls" {
            for key in ["tls.crt", "tls.key"] where secret.data[key] == nil {
                out.fail(path(key), "a kubernetes.io/tls Secret needs tls.crt and tls.key")
            }
        } else if (secret.certificateChain == nil) != (secret.privateKey == nil) {
            let missing = secret.certificateChain == nil ? "cert" : "key"
            out.fail(path(missing), "a certificate needs its private key and the key its certificate: add \(missing)")
        } else if secret.certificateChain == nil && secret.caCertificates == nil {
            out.fail(FieldPath().appending("data"), "holds neither a certificate with its key nor CA certificates")
        }
        return out.problems
    }
}
