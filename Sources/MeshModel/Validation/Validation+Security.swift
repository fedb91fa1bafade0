extension Checker {
    mutating func check(_ policy: PeerAuthentication) {
        labels(policy.selector?.matchLabels, at: root.appending("selector").appending("matchLabels"))
        let portLevel = policy.portLevelMtls ?? [:]
        if !portLevel.isEmpty && (policy.selector?.matchLabels ?? [:]).isEmpty {
            fail(root.appending("portLevelMtls"), "portLevelMtls requires a workload selector")
        }
        for key in portLevel.keys.sorted() {
            guard let number = UInt32(key), number > 0, number <= 65535 else {
                fail(root.appending("portLevelMtls").appending(key), "\"\(key)\" is not a port number")
                continue
            }
        }
    }

    /// The `when` keys meshd enforces.
    static let authorizationKeys: Set<String> = [
        "source.ip", "remote.ip", "source.namespace", "source.principal", "source.serviceAccount",
        "destination.ip", "destination.port", "connection.sni",
    ]

    /// Unsupported parts of an AuthorizationPolicy are refused, never ignored: ignoring a DENY
    /// rule would open a door.
    mutating func check(_ policy: AuthorizationPolicy) {
        labels(policy.selector?.matchLabels, at: root.appending("selector").appending("matchLabels"))
        if policy.action == .CUSTOM || policy.provider != nil {
            fail(root.appending(policy.provider != nil ? "provider" : "action"), "CUSTOM (external authorization) is not supported by meshd yet")
        }
        if policy.targetRef != nil || !(policy.targetRefs ?? []).isEmpty {
            fail(root.appending(policy.targetRef != nil ? "targetRef" : "targetRefs"), "targetRef selects Gateway API resources, which meshd does not serve; use selector")
        }
        for (index, rule) in (policy.rules ?? []).enumerated() {
            let path = root.appending("rules").appending(index: index)
            for (position, from) in (rule.from ?? []).enumerated() {
                let sourcePath = path.appending("from").appending(index: position).appending("source")
                guard let source = from.source else { continue }
                if !(source.requestPrincipals ?? []).isEmpty {
                    fail(sourcePath.appending("requestPrincipals"), "request principals need RequestAuthentication (JWT), which meshd does not support yet")
                }
                if !(source.notRequestPrincipals ?? []).isEmpty {
                    fail(sourcePath.appending("notRequestPrincipals"), "request principals need RequestAuthentication (JWT), which meshd does not support yet")
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
                if key.isEmpty {
                    fail(conditionPath.appending("key"), "condition key must not be empty")
                } else if key.hasPrefix("request.auth.") {
                    fail(conditionPath.appending("key"), "\"\(key)\" needs RequestAuthentication (JWT), which meshd does not support yet")
                } else if !isHeader && !Self.authorizationKeys.contains(key) {
                    fail(conditionPath.appending("key"), "unsupported condition key \"\(key)\"; meshd supports \((Self.authorizationKeys.sorted() + ["request.headers[NAME]"]).joined(separator: ", "))")
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

    mutating func check(_ telemetry: Telemetry) {
        labels(telemetry.selector?.matchLabels, at: root.appending("selector").appending("matchLabels"))
        for (index, tracing) in (telemetry.tracing ?? []).enumerated() {
            percent(tracing.randomSamplingPercentage, at: root.appending("tracing").appending(index: index).appending("randomSamplingPercentage"))
        }
    }
}
